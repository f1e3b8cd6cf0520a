#include <pageio/pagecache/buffer_pool.hpp>

#include <pageio/engine/detail/futex.hpp>
#include <pageio/engine/file.hpp>

#include <boost/intrusive/list.hpp>
#include <boost/intrusive/unordered_set.hpp>


#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <unordered_map>

namespace pageio::pagecache {

namespace bi = boost::intrusive;

namespace detail {

enum : std::uint32_t { st_free = 0, st_loading = 1, st_ready = 2, st_failed = 3 };
enum : std::uint8_t { q_none = 0, q_free = 1, q_small = 2, q_main = 3 };
// Set in `pins` when a failed read unpublishes the frame: whoever drops the
// last pin sees it in the same atomic step and frees the frame.
constexpr std::uint32_t pin_failed = 1u << 31;

struct frame {
  bi::unordered_set_member_hook<> table_hook;  // in its shard's page table
  bi::list_member_hook<> queue_hook;           // free list, or an eviction FIFO (evict_mu_)
  bi::list_member_hook<> dirty_hook;           // the dirty list (dirty_mu_)
  page_id id;
  std::byte* data = nullptr;
  // The futex word: loading -> ready or failed, changed under the shard lock.
  std::atomic<std::uint32_t> state{st_free};
  std::atomic<std::uint32_t> pins{0};
  std::atomic<std::uint8_t> freq{0};       // accesses since the eviction scan last looked (capped)
  std::uint8_t queue = 0;                  // q_none, q_free, q_small or q_main (evict_mu_)
  std::atomic<bool> dirty{false};          // set and cleared under dirty_mu_
  std::atomic<lsn_t> lsn{0};               // highest LSN it was marked with
  lsn_t rec_lsn = 0;                       // first LSN since it was last clean (dirty_mu_)
  bool sleepers = false;                   // a thread sleeps on `state` (shard lock)
  bool read_ahead = false;                 // read ahead and not asked for yet (shard lock)
  std::vector<std::function<void()>> waiters;  // run when it stops loading (shard lock)
  std::error_code error;                   // why it failed (before state = failed)
  std::string error_what;
  page_latch latch;
};

}  // namespace detail

using detail::frame;

namespace {

std::uint64_t hash_page(const page_id& id) noexcept {
  std::uint64_t h = id.page * 0x9E3779B97F4A7C15ull ^ (std::uint64_t{id.file} + 1) * 0xC2B2AE3D27D4EB4Full;
  h ^= h >> 31;
  h *= 0xD6E8FEB86659FD93ull;
  h ^= h >> 32;
  return h;
}

struct frame_hash {
  std::size_t operator()(const frame& f) const noexcept { return hash_page(f.id); }
  std::size_t operator()(const page_id& id) const noexcept { return hash_page(id); }
};
struct frame_equal {
  bool operator()(const frame& a, const frame& b) const noexcept { return a.id == b.id; }
  bool operator()(const page_id& a, const frame& b) const noexcept { return a == b.id; }
  bool operator()(const frame& a, const page_id& b) const noexcept { return a.id == b; }
};

using table_t = bi::unordered_set<frame, bi::member_hook<frame, bi::unordered_set_member_hook<>, &frame::table_hook>,
                                  bi::hash<frame_hash>, bi::equal<frame_equal>, bi::power_2_buckets<true>>;
using frame_list = bi::list<frame, bi::member_hook<frame, bi::list_member_hook<>, &frame::queue_hook>>;
using dirty_list = bi::list<frame, bi::member_hook<frame, bi::list_member_hook<>, &frame::dirty_hook>>;

std::size_t round_up_pow2(std::size_t n) {
  std::size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

void count_done(io_request& r) noexcept { ++*static_cast<std::size_t*>(r.user_data); }

}  // namespace

struct alignas(64) buffer_pool::shard {
  std::mutex mu;
  // Counted under `mu`, which a lookup holds anyway: no shared counter
  // bounces between the CPUs on the hit path.
  std::uint64_t hits = 0, misses = 0, waits = 0;
  std::vector<table_t::bucket_type> buckets;
  table_t table;
  explicit shard(std::size_t n) : buckets(n), table(table_t::bucket_traits(buckets.data(), buckets.size())) {}
};

struct buffer_pool::queues {
  frame_list free, small, main;
  dirty_list dirty;  // under dirty_mu_, oldest first
  std::size_t small_target = 0;
  std::uint8_t freq_cap = 3;
  // Ghosts: pages recently dropped from the small FIFO without a second
  // access; one that comes back goes straight to the main FIFO.
  std::deque<std::uint64_t> ghost_fifo;
  std::unordered_map<std::uint64_t, std::uint32_t> ghosts;
  std::size_t ghost_cap = 0;
};

struct buffer_pool::lane {
  std::unique_ptr<io_backend> backend;
};

struct buffer_pool::file_entry {
  pageio::file f;
  std::atomic<std::uint64_t> size_pages{0};  // pages that exist on disk (read-ahead stops there)
  std::atomic<std::uint64_t> next_sequential{UINT64_MAX};  // a miss here continues a run
  std::atomic<bool> needs_sync{false};  // written since the last flush_all()'s fdatasync
};

// --- page_latch ------------------------------------------------------------

void page_latch::wait(std::uint32_t seen) noexcept {
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  // Returns at once if the state moved on since `seen` (the futex compares).
  if (state_.load(std::memory_order_seq_cst) == seen) {
    pageio::detail::futex_wait(state_, seen);
  }
  sleepers_.fetch_sub(1, std::memory_order_seq_cst);
}

void page_latch::wake() noexcept {
  pageio::detail::futex_wake(&state_, INT_MAX);
}

// --- page_ref --------------------------------------------------------------

page_ref& page_ref::operator=(page_ref&& o) noexcept {
  if (this != &o) {
    reset();
    pool_ = o.pool_;
    f_ = o.f_;
    o.f_ = nullptr;
  }
  return *this;
}

void page_ref::reset() noexcept {
  if (f_ != nullptr) {
    pool_->unpin(f_);
    f_ = nullptr;
  }
}

page_id page_ref::id() const noexcept { return f_->id; }
std::byte* page_ref::data() const noexcept { return f_->data; }
page_latch& page_ref::latch() const noexcept { return f_->latch; }
lsn_t page_ref::page_lsn() const noexcept { return f_->lsn.load(std::memory_order_acquire); }
bool page_ref::dirty() const noexcept { return f_->dirty.load(std::memory_order_acquire); }

void page_ref::mark_dirty(lsn_t lsn) {
  buffer_pool& p = *pool_;
  bool wake = false;
  {
    std::lock_guard lock(p.dirty_mu_);
    lsn_t cur = f_->lsn.load(std::memory_order_relaxed);
    if (lsn > cur) f_->lsn.store(lsn, std::memory_order_release);
    if (!f_->dirty.load(std::memory_order_relaxed)) {
      f_->rec_lsn = lsn;
      f_->dirty.store(true, std::memory_order_release);
      p.q_->dirty.push_back(*f_);
      ++p.dirty_count_;
      const double frac = p.opts_.cleaner_dirty_fraction;
      wake = frac > 0 && static_cast<double>(p.dirty_count_) > frac * static_cast<double>(p.nframes_);
    }
  }
  if (wake) p.cleaner_cv_.notify_one();
}

// --- construction ----------------------------------------------------------

buffer_pool::buffer_pool(options o) : opts_(std::move(o)) {
  if (opts_.frames < 8) throw std::invalid_argument("pagecache: options::frames must be at least 8");
  if (opts_.write_batch == 0) opts_.write_batch = 1;
  if (opts_.queue_depth == 0) opts_.queue_depth = 1;
  if (!opts_.fs) opts_.fs = posix_file_system();
  nframes_ = opts_.frames;
  void* mem = nullptr;
  if (::posix_memalign(&mem, page_size, nframes_ * page_size) != 0) throw std::bad_alloc();
  arena_ = std::unique_ptr<std::byte, void (*)(void*)>(static_cast<std::byte*>(mem), &std::free);
  std::memset(mem, 0, nframes_ * page_size);
  frames_ = std::make_unique<frame[]>(nframes_);
  q_ = std::make_unique<queues>();
  for (std::size_t i = 0; i < nframes_; ++i) {
    frames_[i].data = arena_.get() + i * page_size;
    frames_[i].queue = detail::q_free;
    q_->free.push_back(frames_[i]);
  }
  const std::size_t nshards = std::min<std::size_t>(64, round_up_pow2(std::max<std::size_t>(1, nframes_ / 64)));
  shard_mask_ = nshards - 1;
  const std::size_t buckets = round_up_pow2(std::max<std::size_t>(8, 2 * nframes_ / nshards));
  for (std::size_t i = 0; i < nshards; ++i) shards_.push_back(std::make_unique<shard>(buckets));
  if (opts_.policy == eviction_policy::s3fifo) {
    q_->small_target = std::max<std::size_t>(1, nframes_ / 10);
    q_->freq_cap = 3;
  } else {
    q_->small_target = 0;
    q_->freq_cap = 1;
  }
  q_->ghost_cap = nframes_ - q_->small_target;
  if (opts_.cleaner_dirty_fraction > 0) cleaner_ = std::thread([this] { cleaner_main(); });
}

buffer_pool::~buffer_pool() {
  {
    std::lock_guard lock(dirty_mu_);
    stop_cleaner_ = true;
  }
  cleaner_cv_.notify_all();
  if (cleaner_.joinable()) cleaner_.join();
  // The page tables' hooks must be unlinked before the frames go.
  for (auto& s : shards_) s->table.clear();
  q_->free.clear();
  q_->small.clear();
  q_->main.clear();
  q_->dirty.clear();
}

file_id buffer_pool::add_file(const std::filesystem::path& path, bool create) {
  auto e = std::make_unique<file_entry>();
  file_system& fs = *opts_.fs;
  open_options oo;
  oo.create = create;
  // Whether this open makes the file: its name must then be made durable.
  // (A file created by someone else between the stat and the open costs one
  // directory sync more; nothing is lost.)
  const bool creating = create && !fs.stat(path).has_value();
  e->f = fs.open(path, oo);
  if (creating) {
    // The open succeeded, so the directory exists; it is never created here.
    const std::filesystem::path abs = path.is_absolute() ? path : std::filesystem::absolute(path);
    fs.sync_directory(abs.parent_path());
  }
  e->size_pages = e->f.size() / page_size;
  std::lock_guard lock(files_mu_);
  files_.push_back(std::move(e));
  return static_cast<file_id>(files_.size() - 1);
}

const buffer_pool::file_entry& buffer_pool::file(file_id f) const {
  std::lock_guard lock(files_mu_);
  if (f >= files_.size()) {
    throw std::out_of_range("pagecache: file id " + std::to_string(f) + " was not returned by add_file (" +
                            std::to_string(files_.size()) + " files added)");
  }
  return *files_[f];
}

int buffer_pool::fd_of(file_id f) const { return file(f).f.fd(); }
std::string buffer_pool::file_path(file_id f) const { return file(f).f.path().string(); }
std::byte* buffer_pool::frame_data(frame* f) const noexcept { return f->data; }
bool buffer_pool::frame_ready(frame* f) const noexcept {
  return f->state.load(std::memory_order_acquire) == detail::st_ready;
}

std::string buffer_pool::describe_page(const page_id& id) const {
  std::string path;
  try {
    path = file_path(id.file);
  } catch (...) {
    path = "file #" + std::to_string(id.file);
  }
  return "page " + std::to_string(id.page) + " of " + path + " (byte offset " + std::to_string(id.page * page_size) +
         ")";
}

buffer_pool::shard& buffer_pool::shard_for(const page_id& id) noexcept {
  return *shards_[(hash_page(id) >> 40) & shard_mask_];
}

// --- pins and frames -------------------------------------------------------

void buffer_pool::unpin(frame* f) noexcept {
  // The last pin of a page whose read failed: nobody can find it any more.
  if (f->pins.fetch_sub(1, std::memory_order_acq_rel) == (detail::pin_failed | 1)) release_frame(f);
}

void buffer_pool::release_frame(frame* f) noexcept {
  std::lock_guard lock(evict_mu_);
  if (f->queue == detail::q_small) q_->small.erase(frame_list::s_iterator_to(*f));
  if (f->queue == detail::q_main) q_->main.erase(frame_list::s_iterator_to(*f));
  f->state.store(detail::st_free, std::memory_order_release);
  f->pins.store(0, std::memory_order_relaxed);
  f->freq.store(0, std::memory_order_relaxed);
  f->error = {};
  f->error_what.clear();
  if (f->queue != detail::q_free) q_->free.push_back(*f);
  f->queue = detail::q_free;
}

void buffer_pool::enqueue_new_locked(frame* f) {
  f->freq.store(0, std::memory_order_relaxed);
  if (opts_.policy == eviction_policy::clock) {
    q_->main.push_back(*f);
    f->queue = detail::q_main;
    return;
  }
  const std::uint64_t h = hash_page(f->id);
  auto it = q_->ghosts.find(h);
  if (it != q_->ghosts.end()) {
    if (--it->second == 0) q_->ghosts.erase(it);
    q_->main.push_back(*f);
    f->queue = detail::q_main;
  } else {
    q_->small.push_back(*f);
    f->queue = detail::q_small;
  }
}

bool buffer_pool::try_evict_locked(frame* f) {
  auto evictable = [&] {
    return f->pins.load(std::memory_order_acquire) == 0 && !f->dirty.load(std::memory_order_acquire) &&
           f->state.load(std::memory_order_acquire) == detail::st_ready;
  };
  if (!evictable()) return false;
  shard& s = shard_for(f->id);
  std::lock_guard lock(s.mu);
  if (!evictable()) return false;  // pinned by a hit meanwhile (pins rise only under this lock)
  s.table.erase(s.table.iterator_to(*f));
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
          if (from_small && q_->ghost_cap > 0) {
            const std::uint64_t h = hash_page(f->id);
            q_->ghost_fifo.push_back(h);
            ++q_->ghosts[h];
            while (q_->ghost_fifo.size() > q_->ghost_cap) {
              auto g = q_->ghosts.find(q_->ghost_fifo.front());
              if (g != q_->ghosts.end() && --g->second == 0) q_->ghosts.erase(g);
              q_->ghost_fifo.pop_front();
            }
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
  const auto deadline = std::chrono::steady_clock::now() + opts_.pin_wait;
  for (;;) {
    if (frame* f = try_allocate_frame(true)) return f;
    if (std::chrono::steady_clock::now() >= deadline) {
      throw pool_exhausted("pagecache: all " + std::to_string(nframes_) + " frames stayed pinned for " +
                           std::to_string(opts_.pin_wait.count()) +
                           " ms, so no page could be read; hold fewer page_refs at once or raise options::frames");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

void buffer_pool::note_access_locked(frame* f) noexcept {
  // A page read ahead is used for the first time: that is its first access,
  // not a second one (or a scan would promote every page it reads ahead).
  if (f->read_ahead) {
    f->read_ahead = false;
    return;
  }
  const std::uint8_t fr = f->freq.load(std::memory_order_relaxed);
  if (fr < q_->freq_cap) f->freq.store(static_cast<std::uint8_t>(fr + 1), std::memory_order_relaxed);
}

void buffer_pool::insert_loading_locked(shard& s, frame* f, const page_id& id) {
  f->id = id;
  f->pins.store(1, std::memory_order_relaxed);
  f->freq.store(0, std::memory_order_relaxed);
  f->state.store(detail::st_loading, std::memory_order_release);
  f->dirty.store(false, std::memory_order_relaxed);
  f->lsn.store(0, std::memory_order_relaxed);
  f->sleepers = false;
  f->read_ahead = false;
  s.table.insert(*f);
}

bool buffer_pool::publish_loading(frame* f, const page_id& id) {
  shard& s = shard_for(id);
  {
    std::lock_guard lock(s.mu);
    if (s.table.find(id, frame_hash{}, frame_equal{}) != s.table.end()) return false;
    insert_loading_locked(s, f, id);
    f->read_ahead = true;
  }
  std::lock_guard el(evict_mu_);
  enqueue_new_locked(f);
  return true;
}

frame* buffer_pool::lookup_or_insert(const page_id& id, bool* created, bool* ready) {
  shard& s = shard_for(id);
  frame* fresh = nullptr;
  for (;;) {
    {
      std::unique_lock lock(s.mu);
      auto it = s.table.find(id, frame_hash{}, frame_equal{});
      if (it != s.table.end()) {
        frame* f = &*it;
        f->pins.fetch_add(1, std::memory_order_acq_rel);
        note_access_locked(f);
        *created = false;
        *ready = f->state.load(std::memory_order_acquire) == detail::st_ready;
        if (*ready) {
          ++s.hits;
        } else {
          ++s.misses;
          ++s.waits;
        }
        lock.unlock();
        if (fresh != nullptr) release_frame(fresh);  // lost the race: someone else is reading it
        return f;
      }
      if (fresh != nullptr) {
        insert_loading_locked(s, fresh, id);
        ++s.misses;
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

void buffer_pool::wait_ready(frame* f) {
  shard& s = shard_for(f->id);
  for (;;) {
    {
      std::lock_guard lock(s.mu);
      if (f->state.load(std::memory_order_acquire) != detail::st_loading) break;
      f->sleepers = true;
    }
    pageio::detail::futex_wait(f->state, detail::st_loading);
  }
  if (f->state.load(std::memory_order_acquire) == detail::st_ready) return;
  std::string what;
  const std::error_code ec = take_failure(f, &what);
  throw io_error(ec, what);
}

std::error_code buffer_pool::take_failure(frame* f, std::string* what) noexcept {
  const std::error_code ec = f->error;
  if (what) *what = f->error_what;
  unpin(f);
  return ec;
}

void buffer_pool::on_ready(frame* f, std::function<void()> fn) {
  shard& s = shard_for(f->id);
  {
    std::lock_guard lock(s.mu);
    if (f->state.load(std::memory_order_acquire) == detail::st_loading) {
      f->waiters.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

void buffer_pool::finish_read(frame* f, std::int64_t result, const std::string& what) noexcept {
  shard& s = shard_for(f->id);
  std::vector<std::function<void()>> waiters;
  bool sleepers;
  {
    std::lock_guard lock(s.mu);
    if (result < 0) {
      // Unpublished before anyone hears: a later fetch reads it afresh.
      s.table.erase(s.table.iterator_to(*f));
      f->error = std::error_code(static_cast<int>(-result), std::system_category());
      f->error_what = what;
      f->state.store(detail::st_failed, std::memory_order_release);
      f->pins.fetch_or(detail::pin_failed, std::memory_order_acq_rel);
    } else {
      f->state.store(detail::st_ready, std::memory_order_release);
    }
    waiters.swap(f->waiters);
    sleepers = f->sleepers;
    f->sleepers = false;
  }
  if (sleepers) pageio::detail::futex_wake(&f->state, INT_MAX);
  for (auto& w : waiters) w();
}

void buffer_pool::complete_async_read(frame* f, std::int64_t result) noexcept {
  if (result >= 0) {
    c_.pages_read.fetch_add(1, std::memory_order_relaxed);
    if (static_cast<std::size_t>(result) < page_size) {
      std::memset(f->data + result, 0, page_size - static_cast<std::size_t>(result));  // past the end: zeros
    }
    finish_read(f, result, {});
  } else {
    c_.read_errors.fetch_add(1, std::memory_order_relaxed);
    finish_read(f, result,
                "pagecache: reading " + describe_page(f->id) + ": " + std::strerror(static_cast<int>(-result)) +
                    " (the page was not cached; the caller may retry)");
  }
}

// --- reading ---------------------------------------------------------------

buffer_pool::lane* buffer_pool::borrow_lane() {
  {
    std::lock_guard lock(lanes_mu_);
    if (!idle_lanes_.empty()) {
      lane* l = idle_lanes_.back();
      idle_lanes_.pop_back();
      return l;
    }
  }
  auto l = std::make_unique<lane>();
  if (opts_.make_backend) {
    l->backend = opts_.make_backend();
  } else {
    backend_options bo;
    bo.queue_depth = opts_.queue_depth;
    l->backend = make_backend(opts_.backend, bo);
  }
  lane* raw = l.get();
  std::lock_guard lock(lanes_mu_);
  all_lanes_.push_back(std::move(l));
  return raw;
}

void buffer_pool::return_lane(lane* l) noexcept {
  std::lock_guard lock(lanes_mu_);
  idle_lanes_.push_back(l);
}

void buffer_pool::run_on_lane(std::span<io_request> reqs) {
  std::size_t done = 0;
  request_list batch;
  for (auto& q : reqs) {
    q.on_complete = &count_done;
    q.user_data = &done;
    batch.push_back(q);
  }
  lane* l = nullptr;
  try {
    l = borrow_lane();  // may fail to build a backend
    l->backend->submit(batch);
    while (done < reqs.size()) l->backend->reap(reqs.size() - done);
  } catch (...) {
    // The backend itself broke (not an I/O error): let it finish what it holds.
    batch.clear();
    if (l != nullptr) {
      try {
        l->backend->drain();
      } catch (...) {
      }
      return_lane(l);
    }
    throw;
  }
  return_lane(l);
}

void buffer_pool::read_frames(std::vector<frame*>& loads) {
  if (loads.empty()) return;
  std::sort(loads.begin(), loads.end(), [](const frame* a, const frame* b) {
    return a->id.file != b->id.file ? a->id.file < b->id.file : a->id.page < b->id.page;
  });
  // Adjacent pages of one file become one readv (at most 64 pages each).
  struct run {
    std::size_t first, count;
  };
  std::vector<run> runs;
  for (std::size_t i = 0; i < loads.size(); ++i) {
    if (!runs.empty()) {
      run& r = runs.back();
      const frame* prev = loads[r.first + r.count - 1];
      if (r.count < 64 && prev->id.file == loads[i]->id.file && prev->id.page + 1 == loads[i]->id.page) {
        ++r.count;
        continue;
      }
    }
    runs.push_back({i, 1});
  }
  std::vector<io_request> reqs(runs.size());
  std::vector<iovec> iovs(loads.size());
  std::vector<int> fds(runs.size());
  try {
    for (std::size_t k = 0; k < runs.size(); ++k) fds[k] = fd_of(loads[runs[k].first]->id.file);
  } catch (const std::exception& e) {
    for (frame* f : loads) {
      finish_read(f, -EBADF, std::string("pagecache: ") + e.what());
    }
    throw;
  }
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const run& r = runs[k];
    io_request& q = reqs[k];
    const std::uint64_t off = loads[r.first]->id.page * page_size;
    if (r.count == 1) {
      q.prep_read(fds[k], loads[r.first]->data, page_size, off);
    } else {
      for (std::size_t j = 0; j < r.count; ++j) iovs[r.first + j] = {loads[r.first + j]->data, page_size};
      q.prep_readv(fds[k], &iovs[r.first], static_cast<std::uint32_t>(r.count), off);
    }
  }
  try {
    run_on_lane(reqs);
  } catch (const std::exception& e) {
    for (frame* f : loads) {
      finish_read(f, -EIO, "pagecache: reading " + describe_page(f->id) + ": the backend failed: " + e.what());
    }
    throw;
  }
  c_.reads.fetch_add(reqs.size(), std::memory_order_relaxed);
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const run& r = runs[k];
    const std::int64_t res = reqs[k].result;
    if (res < 0) {
      c_.read_errors.fetch_add(r.count, std::memory_order_relaxed);
      const std::string why = std::strerror(static_cast<int>(-res));
      for (std::size_t j = 0; j < r.count; ++j) {
        frame* f = loads[r.first + j];
        finish_read(f, res,
                    "pagecache: reading " + describe_page(f->id) + ": " + why +
                        " (the page was not cached; the caller may retry)");
      }
      continue;
    }
    c_.pages_read.fetch_add(r.count, std::memory_order_relaxed);
    for (std::size_t j = 0; j < r.count; ++j) {
      frame* f = loads[r.first + j];
      const std::int64_t start = static_cast<std::int64_t>(j * page_size);
      if (res < start + static_cast<std::int64_t>(page_size)) {
        const std::size_t have = res > start ? static_cast<std::size_t>(res - start) : 0;
        std::memset(f->data + have, 0, page_size - have);  // past the end of the file: zeros
      }
      finish_read(f, static_cast<std::int64_t>(page_size), {});
    }
  }
}

page_ref buffer_pool::try_fetch(page_id id) {
  shard& s = shard_for(id);
  std::lock_guard lock(s.mu);
  auto it = s.table.find(id, frame_hash{}, frame_equal{});
  if (it == s.table.end() || it->state.load(std::memory_order_acquire) != detail::st_ready) return {};
  frame* f = &*it;
  f->pins.fetch_add(1, std::memory_order_acq_rel);
  note_access_locked(f);
  ++s.hits;
  return page_ref(this, f);
}

page_ref buffer_pool::fetch(page_id id) {
  bool created = false, ready = false;
  frame* f = lookup_or_insert(id, &created, &ready);
  if (ready) return page_ref(this, f);
  page_ref ref(this, f);
  if (!created) {
    ref.f_ = nullptr;  // wait_ready drops the pin itself on failure
    wait_ready(f);
    return page_ref(this, f);
  }
  // This fetch reads it. A miss that continues a sequential run reads the
  // next pages too, in the same readv.
  std::vector<frame*> loads{f};
  std::vector<page_ref> ahead;
  loads.reserve(1 + opts_.readahead_pages);  // nothing below throws once frames are published
  ahead.reserve(opts_.readahead_pages);
  file_entry* fe;
  try {
    fe = const_cast<file_entry*>(&file(id.file));
  } catch (...) {
    ref.f_ = nullptr;
    finish_read(f, -EBADF, "pagecache: unknown file");
    unpin(f);
    throw;
  }
  std::uint64_t next = id.page + 1;
  if (opts_.readahead_pages > 0 && fe->next_sequential.load(std::memory_order_relaxed) == id.page) {
    const std::uint64_t end = std::min<std::uint64_t>(fe->size_pages.load(std::memory_order_relaxed),
                                                     id.page + 1 + opts_.readahead_pages);
    for (std::uint64_t p = id.page + 1; p < end; ++p) {
      const page_id pid{id.file, p};
      {
        shard& s = shard_for(pid);
        std::lock_guard lock(s.mu);
        if (s.table.find(pid, frame_hash{}, frame_equal{}) != s.table.end()) break;  // cached: the run ends
      }
      frame* g = try_allocate_frame(false);  // read-ahead never waits for a frame
      if (g == nullptr) break;
      if (!publish_loading(g, pid)) {
        release_frame(g);
        break;
      }
      loads.push_back(g);
      ahead.push_back(page_ref(this, g));
      next = p + 1;
    }
    c_.readahead.fetch_add(ahead.size(), std::memory_order_relaxed);
  }
  fe->next_sequential.store(next, std::memory_order_relaxed);
  read_frames(loads);
  if (f->state.load(std::memory_order_acquire) != detail::st_ready) {
    ref.f_ = nullptr;
    std::string what;
    const std::error_code ec = take_failure(f, &what);
    throw io_error(ec, what);
  }
  return ref;
}

std::vector<page_ref> buffer_pool::fetch_batch(std::span<const page_id> ids) {
  std::vector<page_ref> out(ids.size());
  std::vector<frame*> loads;
  std::vector<std::size_t> waiting;
  try {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      bool created = false, ready = false;
      frame* f = lookup_or_insert(ids[i], &created, &ready);
      out[i] = page_ref(this, f);
      if (ready) continue;
      if (created) {
        loads.push_back(f);
      } else {
        waiting.push_back(i);
      }
    }
  } catch (const std::exception& e) {
    // No frame for a later page (pool_exhausted): the pages this batch
    // already published as loading must not stay so, or their waiters
    // would sleep forever. They fail; a later fetch reads them afresh.
    for (frame* f : loads) {
      finish_read(f, -EAGAIN,
                  "pagecache: the batch fetch reading " + describe_page(f->id) + " gave up: " + e.what());
    }
    throw;
  }
  std::exception_ptr first;
  try {
    read_frames(loads);
  } catch (...) {
    first = std::current_exception();
  }
  for (frame* f : loads) {
    if (f->state.load(std::memory_order_acquire) == detail::st_ready) continue;
    waiting.push_back(static_cast<std::size_t>(std::find_if(out.begin(), out.end(), [&](const page_ref& r) {
                                                  return r.f_ == f;
                                                }) - out.begin()));
  }
  for (std::size_t i : waiting) {
    frame* f = out[i].f_;
    out[i].f_ = nullptr;
    try {
      wait_ready(f);
      out[i].f_ = f;
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
  return out;
}

buffer_pool::begin_result buffer_pool::begin_fetch(page_id id) {
  bool created = false, ready = false;
  frame* f = lookup_or_insert(id, &created, &ready);
  if (ready) return {begin_result::kind::ready, f};
  if (!created) return {begin_result::kind::loading, f};
  c_.reads.fetch_add(1, std::memory_order_relaxed);
  return {begin_result::kind::must_read, f};
}

// --- writing back ----------------------------------------------------------

std::size_t buffer_pool::write_back(std::size_t max_pages, bool may_block) {
  // Without may_block (an eviction, the cleaner, clean()), nothing here
  // waits: not for another write-back, not for a page's latch. The thread
  // asking may itself hold a page's latch exclusively, and wait for a frame.
  std::unique_lock wlock(write_mu_, std::defer_lock);
  if (may_block) {
    wlock.lock();
  } else if (!wlock.try_lock()) {
    return 0;
  }
  struct item {
    frame* f;
    lsn_t lsn, rec_lsn;
  };
  std::vector<item> items;
  {
    std::lock_guard lock(dirty_mu_);
    for (auto it = q_->dirty.begin(); it != q_->dirty.end() && items.size() < max_pages; ++it) {
      frame* f = &*it;
      f->pins.fetch_add(1, std::memory_order_acq_rel);  // dirty pages are never evicted: safe without the shard lock
      items.push_back({f, 0, f->rec_lsn});
    }
  }
  if (items.empty()) return 0;
  std::sort(items.begin(), items.end(), [](const item& a, const item& b) {
    return a.f->id.file != b.f->id.file ? a.f->id.file < b.f->id.file : a.f->id.page < b.f->id.page;
  });
  // Snapshot each page under its shared latch (no writer can be changing
  // it), and mark it clean at that moment: a change after the copy marks it
  // dirty again.
  void* mem = nullptr;
  if (::posix_memalign(&mem, page_size, items.size() * page_size) != 0) {
    for (auto& it : items) unpin(it.f);
    throw std::bad_alloc();
  }
  std::unique_ptr<std::byte, void (*)(void*)> copy(static_cast<std::byte*>(mem), &std::free);
  lsn_t max_lsn = 0;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    frame* f = items[i].f;
    std::shared_lock latch(f->latch, std::defer_lock);
    if (may_block) {
      latch.lock();
    } else if (!latch.try_lock()) {
      unpin(f);  // being changed: it stays dirty for a later batch
      continue;
    }
    items[kept] = items[i];
    const std::size_t i_out = kept++;
    std::memcpy(copy.get() + i_out * page_size, f->data, page_size);
    std::lock_guard lock(dirty_mu_);
    items[i_out].lsn = f->lsn.load(std::memory_order_acquire);
    max_lsn = std::max(max_lsn, items[i_out].lsn);
    if (f->dirty.load(std::memory_order_relaxed)) {
      q_->dirty.erase(dirty_list::s_iterator_to(*f));
      f->dirty.store(false, std::memory_order_release);
      --dirty_count_;
    }
  }
  items.resize(kept);
  if (items.empty()) return 0;
  auto redirty = [&](const item& it) {
    std::lock_guard lock(dirty_mu_);
    if (it.f->dirty.load(std::memory_order_relaxed)) {
      // Changed again meanwhile: its first unwritten change is still this one.
      it.f->rec_lsn = std::min(it.f->rec_lsn, it.rec_lsn);
    } else {
      it.f->rec_lsn = it.rec_lsn;
      it.f->dirty.store(true, std::memory_order_release);
      q_->dirty.push_front(*it.f);
      ++dirty_count_;
    }
  };
  // The WAL rule: the log first.
  try {
    if (opts_.log != nullptr && max_lsn > opts_.log->durable_lsn()) opts_.log->make_durable(max_lsn);
  } catch (...) {
    for (auto& it : items) {
      redirty(it);
      unpin(it.f);
    }
    throw;
  }
  // Adjacent pages (adjacent in the copy too) go out as one write.
  struct run {
    std::size_t first, count;
  };
  std::vector<run> runs;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!runs.empty()) {
      run& r = runs.back();
      const frame* prev = items[r.first + r.count - 1].f;
      if (prev->id.file == items[i].f->id.file && prev->id.page + 1 == items[i].f->id.page) {
        ++r.count;
        continue;
      }
    }
    runs.push_back({i, 1});
  }
  std::vector<io_request> reqs(runs.size());
  std::exception_ptr broke;
  try {
    for (std::size_t k = 0; k < runs.size(); ++k) {
      const run& r = runs[k];
      reqs[k].prep_write(fd_of(items[r.first].f->id.file), copy.get() + r.first * page_size, r.count * page_size,
                         items[r.first].f->id.page * page_size);
    }
    run_on_lane(reqs);
  } catch (...) {
    broke = std::current_exception();
    for (auto& q : reqs) {
      if (q.result == 0 && q.length > 0) q.result = -EIO;
    }
  }
  c_.writes.fetch_add(reqs.size(), std::memory_order_relaxed);
  std::string first_error;
  std::error_code first_ec;
  std::size_t written = 0;
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const run& r = runs[k];
    const frame* f0 = items[r.first].f;
    // A short write (fewer bytes than asked, none included) did not write
    // the pages: an error like a negative result, never a success.
    const std::size_t asked = r.count * page_size;
    const bool short_write = reqs[k].result >= 0 && static_cast<std::uint64_t>(reqs[k].result) < asked;
    if (reqs[k].result < 0 || short_write) {
      c_.write_errors.fetch_add(r.count, std::memory_order_relaxed);
      for (std::size_t j = 0; j < r.count; ++j) redirty(items[r.first + j]);
      if (first_error.empty()) {
        first_ec = short_write ? std::error_code(EIO, std::system_category()) : reqs[k].error();
        const std::string why = short_write ? "short write: " + std::to_string(reqs[k].result) + " of " +
                                                  std::to_string(asked) + " bytes written (" + first_ec.message() + ")"
                                            : first_ec.message();
        first_error = "pagecache: writing back " + std::to_string(r.count) + " page(s) from " + describe_page(f0->id) +
                      ": " + why + " (the pages stay dirty and will be written again)";
      }
      continue;
    }
    written += r.count;
    c_.pages_written.fetch_add(r.count, std::memory_order_relaxed);
    try {
      file_entry& fe = const_cast<file_entry&>(file(f0->id.file));
      const std::uint64_t end = f0->id.page + r.count;
      std::uint64_t cur = fe.size_pages.load(std::memory_order_relaxed);
      while (cur < end && !fe.size_pages.compare_exchange_weak(cur, end)) {
      }
      fe.needs_sync.store(true, std::memory_order_release);
    } catch (...) {
    }
  }
  for (auto& it : items) unpin(it.f);
  if (broke) std::rethrow_exception(broke);
  if (!first_error.empty()) throw io_error(first_ec, first_error);
  return written;
}

std::size_t buffer_pool::clean(std::size_t max_pages) {
  std::size_t total = 0;
  while (total < max_pages) {
    const std::size_t n = write_back(std::min(opts_.write_batch, max_pages - total), false);
    if (n == 0) break;
    total += n;
  }
  return total;
}

void buffer_pool::flush_all() {
  std::size_t target;
  {
    std::lock_guard lock(dirty_mu_);
    target = dirty_count_;
  }
  std::size_t written = 0;
  // Pages dirty when the checkpoint began are written (and pages dirtied
  // meanwhile, until there are none or as many again were written).
  while (written < 2 * target + opts_.write_batch) {
    const std::size_t n = write_back(opts_.write_batch, true);
    if (n == 0) break;
    written += n;
  }
  // Every file written since the last checkpoint, by whichever path.
  std::vector<file_entry*> to_sync;
  {
    std::lock_guard lock(files_mu_);
    for (auto& fe : files_) {
      if (fe->needs_sync.exchange(false, std::memory_order_acq_rel)) to_sync.push_back(fe.get());
    }
  }
  if (to_sync.empty()) return;
  std::vector<io_request> reqs(to_sync.size());
  for (std::size_t i = 0; i < to_sync.size(); ++i) reqs[i].prep_fdatasync(to_sync[i]->f.fd());
  auto unsynced = [&] {
    for (auto* fe : to_sync) fe->needs_sync.store(true, std::memory_order_release);
  };
  try {
    run_on_lane(reqs);
  } catch (...) {
    unsynced();
    throw;
  }
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (reqs[i].result < 0) {
      unsynced();
      throw io_error(reqs[i].error(), "pagecache: fdatasync of " + to_sync[i]->f.path().string() +
                                          " after writing back: " + reqs[i].error().message() +
                                          " (the written pages may not be durable; do not trust this checkpoint)");
    }
  }
}

std::optional<lsn_t> buffer_pool::oldest_dirty_lsn() const {
  std::lock_guard lock(dirty_mu_);
  if (q_->dirty.empty()) return std::nullopt;
  lsn_t m = UINT64_MAX;
  for (const frame& f : q_->dirty) m = std::min(m, f.rec_lsn);
  return m;
}

void buffer_pool::cleaner_main() {
  const double high = opts_.cleaner_dirty_fraction * static_cast<double>(nframes_);
  std::unique_lock lock(dirty_mu_);
  for (;;) {
    cleaner_cv_.wait_for(lock, std::chrono::milliseconds(50),
                         [&] { return stop_cleaner_ || static_cast<double>(dirty_count_) > high; });
    if (stop_cleaner_) return;
    while (!stop_cleaner_ && static_cast<double>(dirty_count_) > high / 2) {
      lock.unlock();
      bool failed = false;
      try {
        if (write_back(opts_.write_batch, false) == 0) failed = true;
      } catch (...) {
        failed = true;  // counted in the statistics; the pages stay dirty
      }
      lock.lock();
      if (failed) {
        cleaner_cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return stop_cleaner_; });
        break;
      }
    }
  }
}

pool_stats buffer_pool::stats() const {
  pool_stats s;
  for (const auto& sh : shards_) {
    std::lock_guard lock(sh->mu);
    s.hits += sh->hits;
    s.misses += sh->misses;
    s.waits += sh->waits;
  }
  s.reads = c_.reads.load(std::memory_order_relaxed);
  s.pages_read = c_.pages_read.load(std::memory_order_relaxed);
  s.readahead_pages = c_.readahead.load(std::memory_order_relaxed);
  s.writes = c_.writes.load(std::memory_order_relaxed);
  s.pages_written = c_.pages_written.load(std::memory_order_relaxed);
  s.evictions = c_.evictions.load(std::memory_order_relaxed);
  s.read_errors = c_.read_errors.load(std::memory_order_relaxed);
  s.write_errors = c_.write_errors.load(std::memory_order_relaxed);
  std::lock_guard lock(dirty_mu_);
  s.dirty = dirty_count_;
  return s;
}

}  // namespace pageio::pagecache
