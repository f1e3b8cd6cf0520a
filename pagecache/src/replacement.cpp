// Replacement: the free list, S3-FIFO (or CLOCK) over the resident frames,
// and choosing a victim when a miss needs a frame.

#include <pageio/engine/detail/futex.hpp>

#include <algorithm>
#include <climits>
#include <chrono>
#include <thread>

#include "pool_internal.hpp"

namespace pageio::pagecache {

void buffer_pool::unpin(frame* f) noexcept {
  // seq_cst: ordered with a waiter's frame_waiters_ increment (no lost wake-up).
  const std::uint32_t before = f->pins.fetch_sub(1, std::memory_order_seq_cst);
  if (before == (detail::pin_failed | 1)) {
    // The last pin of a page whose read failed: nobody can find it any more.
    // Exactly one thread frees it: the one whose swap to pin_free succeeds.
    // (Lock-free hits pin in the reader stripes, never here, and let go of
    // a frame that is not ready.)
    std::uint32_t expected = detail::pin_failed;
    if (f->pins.compare_exchange_strong(expected, detail::pin_free, std::memory_order_seq_cst)) release_frame(f);
  } else if (before == 1 && frame_waiters_.load(std::memory_order_seq_cst) != 0) {
    wake_frame_waiters();
  }
}

void buffer_pool::unpin(frame* f, std::uint32_t stripe) noexcept {
  if (stripe == page_ref::shared_pin) {
    unpin(f);
    return;
  }
  // A striped pin is only ever taken on a ready page in the table, which no
  // failed read can unpublish: dropping it never frees the frame.
  pin_stripe(f, stripe).fetch_sub(1, std::memory_order_seq_cst);
  if (frame_waiters_.load(std::memory_order_seq_cst) != 0) wake_frame_waiters();
}

void buffer_pool::wake_frame_waiters() noexcept {
  unpin_gen_.fetch_add(1, std::memory_order_seq_cst);
  pageio::detail::futex_wake(&unpin_gen_, INT_MAX);
}

void buffer_pool::release_frame(frame* f) noexcept {
  std::lock_guard lock(evict_mu_);
  if (f->queue == detail::q_small) q_->small.erase(frame_list::s_iterator_to(*f));
  if (f->queue == detail::q_main) q_->main.erase(frame_list::s_iterator_to(*f));
  f->state.store(detail::st_free, std::memory_order_release);
  // Its pins hold pin_free already: a frame never published (a lost race),
  // or a failed one its last unpin swapped.
  f->freq.store(0, std::memory_order_relaxed);
  f->error = {};
  f->error_what.clear();
  if (f->queue != detail::q_free) {
    q_->free.push_back(*f);
    free_frames_.fetch_add(1, std::memory_order_relaxed);
  }
  f->queue = detail::q_free;
  if (frame_waiters_.load(std::memory_order_seq_cst) != 0) wake_frame_waiters();
}

void buffer_pool::enqueue_new_locked(frame* f) {
  f->freq.store(0, std::memory_order_relaxed);
  if (opts_.policy == eviction_policy::clock) {
    q_->main.push_back(*f);
    f->queue = detail::q_main;
    return;
  }
  const std::uint64_t h = hash_page(f->id);
  std::uint64_t& ghost = q_->ghosts[h & q_->ghost_mask];
  if (ghost == queues::ghost_tag(h)) {
    ghost = 0;
    q_->main.push_back(*f);
    f->queue = detail::q_main;
  } else {
    q_->small.push_back(*f);
    f->queue = detail::q_small;
  }
}

bool buffer_pool::try_evict_locked(frame* f) {
  auto evictable = [&] {
    // seq_cst: ordered with a waiter's registration and an unpin's check of
    // it (allocate_frame), so no wake-up is lost.
    return f->pins.load(std::memory_order_seq_cst) == 0 && !f->dirty.load(std::memory_order_acquire) &&
           f->state.load(std::memory_order_acquire) == detail::st_ready;
  };
  if (!evictable()) return false;
  shard& s = shard_for(f->id);
  std::lock_guard lock(s.mu);  // no locked lookup meanwhile
  if (!evictable()) return false;
  // Against lock-free hits: only from zero pins (a hit that pinned first
  // keeps the page; one that pins after sees pin_free and lets go).
  std::uint32_t zero = 0;
  if (!f->pins.compare_exchange_strong(zero, detail::pin_free, std::memory_order_seq_cst)) return false;
  // Then the hits' pins, counted in the reader stripes: a hit that pinned
  // before the swap is counted here; one after sees pin_free and lets go.
  // And clean still: a writer may have pinned it after the check above,
  // changed it, marked it dirty and let go before the swap (or the sum).
  // Its unpin is what the swap or the sum read, so its mark is seen here;
  // and from here on nobody can pin it to change it.
  if (striped_pins(f) != 0 || f->dirty.load(std::memory_order_seq_cst)) {
    f->pins.fetch_sub(detail::pin_free, std::memory_order_seq_cst);
    return false;
  }
  s.erase_locked(f);
  f->state.store(detail::st_free, std::memory_order_release);
  return true;
}

frame* buffer_pool::try_allocate_frame(bool may_clean) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    {
      std::lock_guard lock(evict_mu_);
      if (!q_->free.empty()) {
        frame* f = &q_->free.front();
        q_->free.pop_front();
        free_frames_.fetch_sub(1, std::memory_order_relaxed);
        f->queue = detail::q_none;
        return f;
      }
      if (frames_.made() < nframes_) {  // one never used
        frame* f = make_frame_locked();
        free_frames_.fetch_sub(1, std::memory_order_relaxed);
        f->queue = detail::q_none;
        return f;
      }
      std::size_t budget = 5 * nframes_ + 8;
      // Frames passed over (pinned, dirty, loading) in each FIFO during this
      // search: once the small FIFO has been gone round, the main one is
      // searched even while the small one is over its share.
      std::size_t small_skips = 0, main_skips = 0;
      while (budget-- > 0 && (!q_->small.empty() || !q_->main.empty())) {
        const bool small_exhausted = small_skips >= q_->small.size();
        const bool main_exhausted = main_skips >= q_->main.size();
        if (small_exhausted && main_exhausted) break;
        const bool from_small = !small_exhausted && !q_->small.empty() &&
                                (q_->small.size() > q_->small_target || q_->main.empty() || main_exhausted);
        frame_list& l = from_small ? q_->small : q_->main;
        frame* f = &l.front();
        l.pop_front();
        const std::uint8_t fr = f->freq.load(std::memory_order_relaxed);
        if (from_small && fr > 0) {  // used again while in the small FIFO: it stays
          f->freq.store(0, std::memory_order_relaxed);
          q_->main.push_back(*f);
          f->queue = detail::q_main;
          continue;
        }
        if (!from_small && fr > 0) {  // a second chance
          f->freq.store(static_cast<std::uint8_t>(fr - 1), std::memory_order_relaxed);
          q_->main.push_back(*f);
          continue;
        }
        if (try_evict_locked(f)) {
          f->queue = detail::q_none;
          c_.evictions.fetch_add(1, std::memory_order_relaxed);
          if (from_small && !q_->ghosts.empty()) {
            const std::uint64_t h = hash_page(f->id);
            q_->ghosts[h & q_->ghost_mask] = queues::ghost_tag(h);
          }
          return f;
        }
        l.push_back(*f);  // pinned, dirty or loading: passed over
        ++(from_small ? small_skips : main_skips);
      }
    }
    // Nothing clean to drop: write dirty pages back, then look again.
    std::size_t dirty;
    {
      std::lock_guard lock(dirty_mu_);
      dirty = dirty_count_;
    }
    if (!may_clean || dirty == 0) break;
    write_back(opts_.write_batch, false);  // never waits for a latch or another write-back
  }
  return nullptr;
}

frame* buffer_pool::allocate_frame() {
  if (frame* f = try_allocate_frame(true)) return f;
  const auto start = std::chrono::steady_clock::now();
  auto deadline = start + opts_.pin_wait;
  // Write-backs extend the wait, but not past this: a disk stalled for
  // longer is reported rather than waited for without end.
  const auto ceiling = start + stall_wait_factor * opts_.pin_wait;
  bool extended = false;
  // Every frame is pinned (or dirty and being written): sleep until a last
  // pin is dropped, then look again.
  struct waiting {
    std::atomic<std::uint32_t>& n;
    explicit waiting(std::atomic<std::uint32_t>& c) : n(c) { n.fetch_add(1, std::memory_order_seq_cst); }
    ~waiting() { n.fetch_sub(1, std::memory_order_seq_cst); }
  } registered(frame_waiters_);
  for (;;) {
    const std::uint32_t gen = unpin_gen_.load(std::memory_order_seq_cst);
    if (frame* f = try_allocate_frame(true)) return f;
    const auto now = std::chrono::steady_clock::now();
    if (writing_back_.load(std::memory_order_seq_cst) > 0 && now < ceiling) {
      // A write-back holds frames and will let them go: a slow disk, not a
      // caller holding too many pages. pin_wait counts from its end.
      if (now + opts_.pin_wait > deadline) {
        deadline = std::min(ceiling, now + opts_.pin_wait);
        extended = true;
      }
    } else if (now >= deadline) {
      // A write-back that ended since the look above has unpinned its frames.
      if (frame* f = try_allocate_frame(true)) return f;
      const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - start).count();
      const std::string write_backs =
          !extended ? std::string()
                    : std::string(" write-backs held frames for ") +
                          (now >= ceiling ? "all of it (the disk may be stalled: a write or fdatasync has not completed);"
                                          : "part of it;") +
                          " otherwise";
      throw pool_exhausted("pagecache: all " + std::to_string(nframes_) + " frames stayed pinned for " +
                           std::to_string(extended ? waited : opts_.pin_wait.count()) +
                           " ms, so no page could be read;" + write_backs +
                           " hold fewer page_refs at once or raise options::frames");
    }
    // Dirty frames are written by the cleaner or by this loop, not by an
    // unpin: look again at least every few milliseconds.
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now).count();
    pageio::detail::futex_wait_for(unpin_gen_, gen, std::min<std::int64_t>(std::max<std::int64_t>(left, 0), 5'000'000));
  }
}

void buffer_pool::note_access(frame* f) noexcept {
  // A page read ahead is used for the first time: that is its first access,
  // not a second one (or a scan would promote every page it reads ahead).
  if (f->read_ahead.load(std::memory_order_relaxed) && f->read_ahead.exchange(false, std::memory_order_relaxed)) {
    return;
  }
  // Written only while below the cap, so a hot page's hits stop writing it.
  const std::uint8_t fr = f->freq.load(std::memory_order_relaxed);
  if (fr < q_->freq_cap) f->freq.store(static_cast<std::uint8_t>(fr + 1), std::memory_order_relaxed);
}


}  // namespace pageio::pagecache
