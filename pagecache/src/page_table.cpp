// The page table: page id -> frame, in shards. Inserts and erases take the
// shard's mutex; a hit takes no lock at all (try_hit): it walks the
// bucket's chain, counts its pin in its thread's reader stripe, then checks
// that the frame still holds that page, ready, and is in the table (no
// pin_free bit). An eviction sets pin_free only by a compare-and-swap from
// zero pins and then adds up the stripes, so a hit that pinned first keeps
// the frame, and one that pinned after sees the bit and lets go. Anything
// unusual (loading, failed, changed hands, a long chain) falls back to the
// locked lookup.

#include <algorithm>

#include "pool_internal.hpp"

namespace pageio::pagecache {

// The shard from the hash's high bits, the bucket within it from its low ones.
buffer_pool::shard& buffer_pool::shard_for(const page_id& id) noexcept {
  return *shards_[(hash_page(id) >> 40) & shard_mask_];
}

void buffer_pool::count_hit() noexcept { hits_[detail::thread_stripe()].n.fetch_add(1, std::memory_order_relaxed); }

std::atomic<std::uint32_t>& buffer_pool::pin_stripe(const frame* f, std::uint32_t stripe) noexcept {
  return pin_stripes_[std::size_t{stripe} * nframes_ + static_cast<std::size_t>(f - frames_.get())];
}

std::uint32_t buffer_pool::striped_pins(const frame* f) noexcept {
  // Modulo 2^32, like the latch's readers; each pin is released in the
  // stripe it was taken in (page_ref keeps it), so each count is exact.
  // Only the stripes used in this pool (a hit marks its stripe used before
  // it counts there, as the latch's readers do).
  std::uint32_t sum = 0;
  const std::uint32_t used = stripes_.used.load(std::memory_order_seq_cst);
  for (std::uint32_t s = 0; s < detail::reader_stripes; ++s) {
    if ((used & (1u << s)) != 0) sum += pin_stripe(f, s).load(std::memory_order_seq_cst);
  }
  return sum;
}

frame* buffer_pool::try_hit(const page_id& id, std::uint32_t* stripe) noexcept {
  const std::uint64_t h = hash_page(id);
  shard& s = *shards_[(h >> 40) & shard_mask_];
  frame* f = s.heads[h & s.mask].load(std::memory_order_acquire);
  for (int steps = 0; f != nullptr && steps < 16; ++steps) {
    if (f->tag_page.load(std::memory_order_relaxed) == id.page &&
        f->tag_file.load(std::memory_order_relaxed) == id.file) {
      const std::uint32_t mine = detail::thread_stripe();
      stripes_.mark_used(mine);
      std::atomic<std::uint32_t>& count = pin_stripe(f, mine);
      // seq_cst both: an eviction's swap of `pins` to pin_free (then its sum
      // of the stripes) and this increment (then this load) are in one
      // order, so either the eviction counts this pin or this sees the bit.
      count.fetch_add(1, std::memory_order_seq_cst);
      if ((f->pins.load(std::memory_order_seq_cst) & (detail::pin_free | detail::pin_failed)) == 0 &&
          f->state.load(std::memory_order_acquire) == detail::st_ready &&
          f->tag_page.load(std::memory_order_relaxed) == id.page &&
          f->tag_file.load(std::memory_order_relaxed) == id.file) {
        *stripe = mine;
        note_access(f);
        count_hit();
        return f;  // pinned while in the table: it cannot be evicted or change hands now
      }
      unpin(f, mine);
      return nullptr;
    }
    f = f->chain.load(std::memory_order_acquire);
  }
  return nullptr;
}

void buffer_pool::insert_loading_locked(shard& s, frame* f, const page_id& id) {
  f->id = id;
  f->tag_file.store(id.file, std::memory_order_relaxed);
  f->tag_page.store(id.page, std::memory_order_relaxed);
  f->freq.store(0, std::memory_order_relaxed);
  f->state.store(detail::st_loading, std::memory_order_release);
  f->dirty.store(false, std::memory_order_relaxed);
  f->lsn.store(0, std::memory_order_relaxed);
  f->sleepers = false;
  f->read_ahead.store(false, std::memory_order_relaxed);
  // Out of pin_free, pinned once for the caller (by adding: the bit is the
  // only thing taken away).
  f->pins.fetch_add(1 - detail::pin_free, std::memory_order_seq_cst);
  s.insert_locked(f);
}

bool buffer_pool::publish_loading(frame* f, const page_id& id) {
  shard& s = shard_for(id);
  {
    std::lock_guard lock(s.mu);
    if (s.find_locked(id) != nullptr) return false;
    insert_loading_locked(s, f, id);
    f->read_ahead.store(true, std::memory_order_relaxed);
  }
  std::lock_guard el(evict_mu_);
  enqueue_new_locked(f);
  return true;
}

frame* buffer_pool::lookup_or_insert(const page_id& id, bool* created, bool* ready, bool count_miss) {
  shard& s = shard_for(id);
  frame* fresh = nullptr;
  for (;;) {
    {
      std::unique_lock lock(s.mu);
      if (frame* f = s.find_locked(id)) {
        f->pins.fetch_add(1, std::memory_order_seq_cst);
        note_access(f);
        *created = false;
        *ready = f->state.load(std::memory_order_acquire) == detail::st_ready;
        if (!*ready) {
          ++s.misses;
          ++s.waits;
        }
        lock.unlock();
        if (*ready) count_hit();
        if (fresh != nullptr) release_frame(fresh);  // lost the race: someone else is reading it
        return f;
      }
      if (fresh != nullptr) {
        insert_loading_locked(s, fresh, id);
        if (count_miss) ++s.misses;
        lock.unlock();
        {
          std::lock_guard el(evict_mu_);
          enqueue_new_locked(fresh);
        }
        *created = true;
        *ready = false;
        return fresh;
      }
    }
    fresh = allocate_frame();  // outside the shard lock; then look again
  }
}

}  // namespace pageio::pagecache
