// pageio::pagecache — a buffer pool of 4 KiB frames over an io_backend.
//
//   pageio::pagecache::buffer_pool pool({.frames = 4096, .log = &wal});
//   auto f = pool.add_file("db/table.dat");            // O_DIRECT, read and write
//   {
//     pageio::pagecache::page_ref p = pool.fetch({f, 17});   // pinned until p goes away
//     std::unique_lock w(p.latch());                          // exclusive: a writer
//     std::memcpy(p.data() + 100, "x", 1);
//     p.mark_dirty(lsn);                                      // the WAL record that changed it
//   }
//   pool.flush_all();                                         // checkpoint: every dirty page written
//
// Design (docs/pagecache.md): one aligned arena of frames; a page table of
// hash chains in shards, each with a mutex for misses (a hit takes no lock:
// it counts its pin and its shared latch in its thread's reader stripe, so
// hits on several CPUs write no cache line in common);
// S3-FIFO eviction over Boost.Intrusive lists (a small FIFO that one-time
// pages pass through, a main FIFO with CLOCK-like second chances, and a
// ghost list of recently dropped pages); a dirty list the cleaner writes from
// in batches, each only after the log is durable up to the pages' LSNs.
#pragma once

#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/backend.hpp>
#include <pageio/engine/durable_log.hpp>
#include <pageio/engine/error.hpp>
#include <pageio/engine/file_system.hpp>
#include <pageio/pagecache/page_format.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace pageio::pagecache {

// The bytes of each page the caller owns (page_ref::data()); the pool owns
// the rest, a 32-byte header with the page's LSN and checksum (page_format.hpp).
inline constexpr std::size_t usable_size = format::usable_size;
using file_id = std::uint32_t;

// The largest page number: its last byte is the last one a file offset
// (off_t) can address. A larger one is refused (std::out_of_range).
inline constexpr std::uint64_t max_page = (std::uint64_t{1} << 51) - 1;

struct page_id {
  file_id file = 0;
  std::uint64_t page = 0;  // page number: byte offset / 4096, at most max_page
  friend bool operator==(const page_id&, const page_id&) = default;
};

enum class eviction_policy {
  s3fifo,  // small FIFO (10%) + main FIFO with second chances + ghost list: scan resistant
  clock,   // one CLOCK over every frame: a long scan flushes the working set
};

struct options {
  // Frames of 4 KiB in the arena (at least 8).
  std::size_t frames = 1024;
  // Backends for the pool's own reads and writes, by name, or built by
  // make_backend (tests wrap fault_backend around one). Each thread that
  // misses borrows one from a small pool of them; they are never shared by
  // two threads at once.
  std::string backend = "default";
  std::function<std::unique_ptr<io_backend>()> make_backend{};
  unsigned queue_depth = 64;
  // The backend for a lone request a thread then waits for (a fetch that
  // misses one page, a write-back of one page, a sync): "sync" does it as a
  // plain system call on that thread (docs/pagecache.md, "Lone requests").
  // Empty: `backend` for those too. Not used with make_backend (which
  // builds every lane).
  std::string lone_backend = "sync";
  // The WAL rule: a dirty page is written only once log->durable_lsn() has
  // reached its LSN (log->make_durable() is called first if needed). Null:
  // pages carry no LSN constraint.
  durable_log* log = nullptr;
  eviction_policy policy = eviction_policy::s3fifo;
  // A miss right after the previous page of the same file (a sequential
  // run) reads this many following pages too, in the same readv. 0: off.
  std::size_t readahead_pages = 16;
  // How long a fetch waits for a frame when every frame is pinned before it
  // throws pool_exhausted. Time while a write-back holds frames for its
  // writes (a checkpoint or the cleaner on a slow disk) does not count, as
  // those frames come free when the writes complete, up to
  // stall_wait_factor x pin_wait in all (30 s at the default).
  std::chrono::milliseconds pin_wait{2000};
  // Pages written back per batch (one submission, adjacent pages merged).
  std::size_t write_batch = 64;
  // A background cleaner writes dirty pages ahead of evictions: once more
  // than this fraction of the frames is dirty while fewer than that
  // fraction is free, down to half of it: only pages not used since the
  // replacement scan last passed them (those an eviction takes next), in
  // batches of at least half of write_batch. Pages in use stay dirty, taking
  // more changes, until a checkpoint or until they cool; while free frames
  // remain, nothing needs evicting and every page waits for the checkpoint.
  // 0: no cleaner thread (pages are written by flush_all(), clean(), or an
  // eviction that finds only dirty pages).
  double cleaner_dirty_fraction = 0.25;
  // Torn-write protection (docs/pagecache.md): each write-back batch goes
  // first to the file's double-write area, `<data file>.dwb` (created beside
  // it by add_file), and is synced there before the pages are written in
  // place; opening the file repairs torn pages from it. Turn it off only on
  // a device that writes 4 KiB atomically with O_DIRECT, or when the caller
  // logs full page images itself.
  bool doublewrite = true;
  // Where add_file opens (and creates) data files: a crash_file_system or
  // fault_file_system in tests. Empty: posix_file_system().
  std::shared_ptr<file_system> fs{};
};

// A fetch waits for a frame at most this many times options::pin_wait, however
// long write-backs hold frames (a disk stalled for longer is reported).
inline constexpr int stall_wait_factor = 15;

// An I/O error reading or writing a page: which file, page, offset, and why.
class io_error : public std::system_error {
 public:
  io_error(std::error_code ec, const std::string& what) : std::system_error(ec, what) {}
};

// A page read from disk did not check (page_format.hpp): torn, damaged,
// misplaced, or not a data page. The message names the file, the page, its
// byte offset and what was wrong. code() is pageio::errc::corruption.
class corruption_error : public io_error {
 public:
  using io_error::io_error;
};

// Every frame stayed pinned for options::pin_wait. code() is
// pageio::errc::pool_exhausted.
class pool_exhausted : public pageio::error {
 public:
  explicit pool_exhausted(const std::string& what) : pageio::error(errc::pool_exhausted, what) {}
};

namespace detail {
// Reader stripes: a pool keeps each frame's pin and shared-latch counts in
// this many separate arrays, and a thread uses one of them, so two threads
// hitting resident pages write no cache line in common (docs/pagecache.md).
inline constexpr std::uint32_t reader_stripes = 16;

// A pool's latch stripes, and which stripes have ever been used in it (a
// writer or an eviction adds up only those). Every hit reads it: a cache
// line of its own, so no lock or counter written on misses sits beside it.
struct alignas(64) reader_stripe_set {
  std::atomic<std::uint32_t> used{0};  // bit s: stripe s has counted something here
  std::uint32_t frames = 0;
  std::atomic<std::uint32_t>* latches = nullptr;  // stripe s of frame i: latches[s * frames + i]

  // Before a thread counts in stripe `s`: its bit in `used`, set once (so
  // afterwards this only reads a line every thread reads).
  void mark_used(std::uint32_t s) noexcept {
    // seq_cst (a plain load on x86): seeing another thread's mark orders
    // this thread's count after it for a writer or an eviction too.
    if ((used.load(std::memory_order_seq_cst) & (1u << s)) == 0) used.fetch_or(1u << s, std::memory_order_seq_cst);
  }
};

// This thread's stripe: threads take them round robin, fixed for their life.
inline thread_local std::uint32_t thread_stripe_plus_one = 0;
std::uint32_t assign_thread_stripe() noexcept;
inline std::uint32_t thread_stripe() noexcept {
  const std::uint32_t s = thread_stripe_plus_one;
  return s != 0 ? s - 1 : assign_thread_stripe();
}
}  // namespace detail

// A page's reader-writer latch: std::shared_lock / std::unique_lock work on
// it. A thread that must wait sleeps on a futex. No writer preference: a
// steady stream of readers can hold a writer off.
//
// In a pool, a reader counts itself in its thread's stripe (a cache line
// other threads' readers do not write), so shared locking scales with
// threads; a writer sets its bit, then waits until the stripes' counts add
// up to zero. Like std::shared_mutex, the latch is released by the thread
// that took it (a shared hold released elsewhere is still counted right:
// the writer adds the stripes up, it does not check each one). A latch
// outside a pool counts readers in its own word.
class page_latch {
 public:
  void lock() noexcept {
    std::uint32_t s = 0;
    while (!state_.compare_exchange_weak(s, writer, std::memory_order_seq_cst, std::memory_order_relaxed)) {
      if (s != 0) {
        wait(s);
        s = 0;
      }
    }
    if (stripes_ != nullptr) drain();
  }
  bool try_lock() noexcept {
    std::uint32_t s = 0;
    if (!state_.compare_exchange_strong(s, writer, std::memory_order_seq_cst, std::memory_order_relaxed)) return false;
    if (stripes_ != nullptr && striped_readers() != 0) {
      unlock();
      return false;
    }
    return true;
  }
  void unlock() noexcept {
    state_.store(0, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) != 0) wake();
  }
  void lock_shared() noexcept {
    if (stripes_ != nullptr) {
      std::atomic<std::uint32_t>& mine = my_count();
      for (;;) {
        // seq_cst both: a writer that set its bit before this load sees the
        // count in its sum, or this load sees its bit.
        mine.fetch_add(1, std::memory_order_seq_cst);
        const std::uint32_t s = state_.load(std::memory_order_seq_cst);
        if ((s & writer) == 0) return;
        leave(mine);
        wait(s);
      }
    }
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      if (s & writer) {
        wait(s);
        s = state_.load(std::memory_order_relaxed);
        continue;
      }
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed)) return;
    }
  }
  bool try_lock_shared() noexcept {
    if (stripes_ != nullptr) {
      std::atomic<std::uint32_t>& mine = my_count();
      mine.fetch_add(1, std::memory_order_seq_cst);
      if ((state_.load(std::memory_order_seq_cst) & writer) == 0) return true;
      leave(mine);
      return false;
    }
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while (!(s & writer)) {
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed)) return true;
    }
    return false;
  }
  void unlock_shared() noexcept {
    if (stripes_ != nullptr) {
      leave(my_count());
      return;
    }
    if (state_.fetch_sub(1, std::memory_order_seq_cst) == 1 && sleepers_.load(std::memory_order_seq_cst) != 0) wake();
  }

 private:
  friend class buffer_pool;
  static constexpr std::uint32_t writer = 1u << 31;
  // This thread's count in its stripe (marked used first).
  std::atomic<std::uint32_t>& my_count() noexcept {
    const std::uint32_t s = detail::thread_stripe();
    stripes_->mark_used(s);
    return stripes_->latches[std::size_t{s} * stripes_->frames + index_];
  }
  // A reader drops its count; a writer waiting for the readers to drain is
  // told (it writes nothing shared while no writer is there).
  void leave(std::atomic<std::uint32_t>& mine) noexcept {
    mine.fetch_sub(1, std::memory_order_seq_cst);
    if ((state_.load(std::memory_order_seq_cst) & writer) != 0) reader_left();
  }
  void wait(std::uint32_t seen) noexcept;  // sleeps unless the state is no longer `seen`
  void wake() noexcept;
  void reader_left() noexcept;               // bumps drain_ and wakes a draining writer
  void drain() noexcept;                     // with the writer bit set: until no reader is counted
  std::uint32_t striped_readers() const noexcept;  // the stripes' counts, added up (mod 2^32)
  std::atomic<std::uint32_t> state_{0};     // `writer`, and outside a pool the reader count
  std::atomic<std::uint32_t> sleepers_{0};  // threads in wait()
  std::atomic<std::uint32_t> drain_{0};     // bumped by a reader leaving while a writer is in
  std::uint32_t index_ = 0;                 // its frame's: its counts in stripes_->latches
  detail::reader_stripe_set* stripes_ = nullptr;  // its pool's, or none
};

class buffer_pool;
namespace detail {
struct frame;
}

// A pinned page: while it exists the frame keeps this page. Its content is
// guarded by latch(): shared to read, exclusive to change (then mark_dirty).
class page_ref {
 public:
  page_ref() = default;
  page_ref(page_ref&& o) noexcept : pool_(o.pool_), f_(o.f_), stripe_(o.stripe_) { o.f_ = nullptr; }
  page_ref& operator=(page_ref&& o) noexcept;
  page_ref(const page_ref&) = delete;
  page_ref& operator=(const page_ref&) = delete;
  ~page_ref() { reset(); }

  explicit operator bool() const noexcept { return f_ != nullptr; }
  page_id id() const noexcept;
  // The caller's usable_size (4064) bytes of the page, after the pool's
  // header; 32-byte aligned. A page never written reads as zeros.
  std::byte* data() const noexcept;
  page_latch& latch() const noexcept;
  // With the latch held exclusively: the page now reflects the log record at
  // `lsn` (0 when no log is used). It is written back only once the log is
  // durable up to the highest LSN it was marked with.
  void mark_dirty(lsn_t lsn);
  // The last log record the page reflects: the highest LSN it was marked
  // with, or the LSN its header carried when it was read from disk (0 for a
  // page never written). Redo skips records at or below it.
  lsn_t page_lsn() const noexcept;
  bool dirty() const noexcept;
  // Unpins now.
  void reset() noexcept;

 private:
  friend class buffer_pool;
  static constexpr std::uint32_t shared_pin = UINT32_MAX;
  page_ref(buffer_pool* pool, detail::frame* f, std::uint32_t stripe = shared_pin) noexcept
      : pool_(pool), f_(f), stripe_(stripe) {}
  buffer_pool* pool_ = nullptr;
  detail::frame* f_ = nullptr;
  // The reader stripe its pin is counted in (a hit), or shared_pin: the
  // frame's own count (a miss, a wait, a batch, an asynchronous miss).
  std::uint32_t stripe_ = shared_pin;
};

struct pool_stats {
  std::uint64_t hits = 0;            // fetches that found the page ready
  std::uint64_t misses = 0;          // fetches that read it (or waited for another's read)
  std::uint64_t waits = 0;           // of the misses: joined a read another fetch had started
  std::uint64_t reads = 0;           // read requests sent (a readv of several pages counts once)
  std::uint64_t pages_read = 0;      // pages those brought in, read-ahead included
  std::uint64_t readahead_pages = 0; // pages read ahead of a sequential run
  std::uint64_t writes = 0;          // write requests sent to data files
  std::uint64_t pages_written = 0;   // pages written in place
  std::uint64_t doublewrite_writes = 0, doublewrite_pages = 0;  // to double-write areas (options::doublewrite)
  std::uint64_t evictions = 0;
  std::uint64_t new_pages = 0;       // fetch_new calls that set up a page without reading it
  std::uint64_t read_errors = 0, write_errors = 0;
  std::size_t dirty = 0;             // dirty pages now
  std::uint64_t syncs = 0;           // fdatasyncs of data files and double-write areas
  std::uint64_t failed_files = 0;    // files whose fdatasync failed (fsyncgate): no longer written
  std::uint64_t corrupt_pages = 0;   // reads that found a page failing its check
  std::uint64_t pages_repaired = 0;  // torn pages add_file repaired from a double-write area
};

class buffer_pool {
 public:
  explicit buffer_pool(options o);
  // Dirty pages are NOT written: call flush_all() first. No page_ref may
  // outlive the pool.
  ~buffer_pool();
  buffer_pool(const buffer_pool&) = delete;
  buffer_pool& operator=(const buffer_pool&) = delete;

  // Opens a data file through options::fs (O_DIRECT, read-write; created
  // empty if `create` and missing) and returns its id. A file it creates has
  // its directory entry made durable (a sync of the directory that holds it)
  // before add_file returns, so a crash right after cannot lose the name.
  // The directory must exist: it is never created (ENOENT). Throws
  // std::system_error naming the path, and a clear error on a file system
  // without O_DIRECT (tmpfs).
  file_id add_file(const std::filesystem::path& path, bool create = true);

  // The page, pinned: from the pool, or read (one read however many threads
  // ask at once). A page past the end of the file reads as zeros. Throws
  // io_error (and so does every thread that waited for the same read; the
  // page is not left in the pool), pool_exhausted, std::out_of_range for an
  // unknown file or a page number past max_page.
  page_ref fetch(page_id id);
  // The page if it is in the pool and ready; empty otherwise (a page number
  // past max_page too). Never reads.
  page_ref try_fetch(page_id id);
  // The page, pinned, for a caller about to overwrite all of it (a page it
  // just allocated): when it is not in the pool it is not read, and its
  // frame holds zeros, as a page past the end of the file reads. A page in
  // the pool comes as it is. Counted in pool_stats::new_pages, not as a miss.
  page_ref fetch_new(page_id id);
  // Several pages: every miss goes to the backend in one submission
  // (adjacent pages of a file merged into one readv). Results in the order
  // asked. Throws the first error after every read has finished.
  std::vector<page_ref> fetch_batch(std::span<const page_id> ids);

  // Writes up to `max_pages` dirty pages (oldest first) in batches, each
  // after making the log durable up to its pages' LSNs. Returns how many
  // were written. Never waits: a page whose latch is held, or a write-back
  // already running elsewhere, is left for later. A failed write leaves its
  // page dirty; io_error is thrown once the batch is done.
  std::size_t clean(std::size_t max_pages);
  // A checkpoint: writes every page dirty when it began (waiting for
  // latches; do not hold one while calling it), fdatasyncs every file
  // written since its last good sync, by whichever path, and returns the LSN
  // before which the log may be truncated: every change below it is durable
  // in the data files. Correct while other threads, the cleaner and
  // evictions keep writing pages.
  //
  // `redo` is an LSN such that every record below it that changes a page
  // was marked dirty (mark_dirty) before this call: a caller whose writers
  // append and mark while a checkpoint runs takes it as the log's next LSN
  // while no writer is between an append and its mark_dirty (a lock the
  // writers share around the pair and the checkpointer takes alone for that
  // moment; docs/pagecache.md). The result is never above it. Without it,
  // the pool uses one past the highest LSN marked so far, which is right
  // only when no record is appended and not yet marked as the call begins.
  //
  // Throws io_error if a write or a sync failed, or a file failed earlier
  // (see oldest_dirty_lsn()): the checkpoint did not happen.
  lsn_t checkpoint(lsn_t redo);
  lsn_t checkpoint();
  // checkpoint(), without the LSN.
  void flush_all();
  // The smallest first-dirty LSN of a page whose change is not yet durable:
  // dirty, being written, or written but not yet fdatasync'ed; or of a file
  // whose fdatasync failed (fsyncgate: such a file stays failed, its pages
  // are never reported durable, and the pool writes no more to it; close
  // the pool and recover from the log). The log must be kept from there.
  // Empty when every change is durable.
  std::optional<lsn_t> oldest_dirty_lsn() const;

  pool_stats stats() const;
  std::size_t frames() const noexcept { return nframes_; }
  const options& config() const noexcept { return opts_; }
  std::string file_path(file_id f) const;

  // For async_fetch (pageio/pagecache/asio.hpp).
  struct begin_result;
  begin_result begin_fetch(page_id id);

 private:
  friend class page_ref;
  friend struct detail::frame;
  struct shard;
  struct hit_stripe;
  struct lane;
  struct file_entry;
  struct queues;

  void unpin(detail::frame* f) noexcept;
  void unpin(detail::frame* f, std::uint32_t stripe) noexcept;  // a page_ref's pin, wherever counted
  shard& shard_for(const page_id& id) noexcept;
  detail::frame* allocate_frame();   // free or evicted, not in the table; may write back or wait
  detail::frame* try_allocate_frame(bool may_clean);
  bool try_evict_locked(detail::frame* f);  // evict_mu_ held
  void enqueue_new_locked(detail::frame* f);
  void note_access(detail::frame* f) noexcept;  // a hit, pinned
  void insert_loading_locked(shard& s, detail::frame* f, const page_id& id);  // s.mu held
  bool publish_loading(detail::frame* f, const page_id& id);  // false: the page is there already
  void release_frame(detail::frame* f) noexcept;  // back to the free list
  // Under the shard lock, after try_hit failed: published in the table as
  // loading, pinned once for the caller; or an existing frame, pinned.
  // `created` says which.
  detail::frame* lookup_or_insert(const page_id& id, bool* created, bool* ready, bool count_miss = true);
  void wait_ready(detail::frame* f);  // throws the frame's error
  void finish_read(detail::frame* f, std::int64_t result, const std::string& what) noexcept;
  // A read of the whole page arrived: checks it (page_format.hpp), then
  // finishes the read as ready or as corrupt.
  void finish_checked_read(detail::frame* f) noexcept;
  [[noreturn]] static void throw_failure(std::error_code ec, const std::string& what);
  void read_frames(std::vector<detail::frame*>& loads);  // on a borrowed lane; publishes each
  // cold_only (the cleaner): only pages not accessed since the
  // replacement scan last passed them, the ones an eviction would take next;
  // nothing at all when fewer than min_pages such pages are dirty.
  // With `listed` (a checkpoint's snapshot of the dirty pages, in page
  // order): the batch takes the pages listed from *cursor on that are still
  // dirty, advancing *cursor past what it looked at.
  using listed_pages = std::vector<std::pair<page_id, detail::frame*>>;
  std::size_t write_back(std::size_t max_pages, bool may_block, bool cold_only = false, std::size_t min_pages = 1,
                         const listed_pages* listed = nullptr, std::size_t* cursor = nullptr);
  // fdatasyncs every file with writes not yet synced; throws for a file that
  // failed now or before.
  void sync_files();
  // fsyncgate: the file's sync failed; it stays failed (takes dirty_mu_).
  void fail_file(file_entry& fe, std::error_code ec, const std::string& what);
  std::optional<lsn_t> oldest_unsynced_locked() const;  // dirty_mu_ held
  lane* borrow_lane(bool lone = false);
  void return_lane(lane* l) noexcept;
  // Sends `reqs` as one submission on a borrowed lane and waits for all of
  // them; their results are theirs to read. Throws if the backend itself
  // fails (after it has finished with every request).
  void run_on_lane(std::span<io_request> reqs);
  void cleaner_main();
  // Whether the cleaner has work: more than `share` of the dirty fraction
  // dirty while fewer frames than the fraction are free (dirty_mu_).
  bool cleaning_wanted_locked(double share = 1.0) const noexcept;
  const file_entry& file(file_id f) const;
  std::string describe_page(const page_id& id) const;

 public:
  // Used by async fetches: a load finished elsewhere (driver thread).
  void complete_async_read(detail::frame* f, std::int64_t result) noexcept;
  page_ref make_ref(detail::frame* f, std::uint32_t stripe = page_ref::shared_pin) noexcept {
    return page_ref(this, f, stripe);
  }
  // The error a failed frame carries, and drops the caller's pin.
  std::error_code take_failure(detail::frame* f, std::string* what) noexcept;
  // An async fetch's handler was destroyed unrun: drops its pin, and first
  // ends the read it owned (if `owned_read`) as cancelled.
  void abandon_async_fetch(detail::frame* f, bool owned_read, std::uint32_t stripe = page_ref::shared_pin) noexcept;
  // Runs `fn` (once) when the frame stops loading; at once if it already has.
  void on_ready(detail::frame* f, std::function<void()> fn);
  int fd_of(file_id f) const;
  std::byte* frame_data(detail::frame* f) const noexcept;
  bool frame_ready(detail::frame* f) const noexcept;

 private:
  options opts_;
  std::size_t nframes_ = 0;
  // The frames' memory: mapped from the kernel (aligned_buffer), so that a
  // frame costs resident memory only once it is used (a large pool starts
  // small and fast), in huge pages where the kernel allows.
  aligned_buffer arena_;
  // Room for `n` Ts in memory from aligned_buffer, constructed as they are
  // first used, so that a large one (the frames of a large pool, and their
  // reader stripes) costs resident memory only for what is used; mapped in
  // huge pages where the kernel allows, not faulted in 4 KiB at a time.
  template <class T>
  class mapped_array {
   public:
    mapped_array() = default;
    explicit mapped_array(std::size_t n)
        : mem_(std::max<std::size_t>(1, n) * sizeof(T), alignof(T) < 8 ? 8 : alignof(T)) {}
    mapped_array(mapped_array&& o) noexcept : mem_(std::move(o.mem_)), n_(std::exchange(o.n_, 0)) {}
    mapped_array& operator=(mapped_array&& o) noexcept {
      std::swap(mem_, o.mem_);
      std::swap(n_, o.n_);
      return *this;
    }
    ~mapped_array() {
      for (std::size_t i = n_; i-- > 0;) get()[i].~T();
    }
    // Constructs the next T (elements 0 to made()-1 exist); the caller
    // checks that there is room for it (`n`).
    T* make_next() {
      T* p = new (mem_.data() + n_ * sizeof(T)) T();
      ++n_;
      return p;
    }
    // Constructs element i of a T that needs no destructor, in any order.
    T* make_at(std::size_t i) {
      static_assert(std::is_trivially_destructible_v<T>);
      return new (mem_.data() + i * sizeof(T)) T();
    }
    std::size_t made() const noexcept { return n_; }
    T* get() const noexcept { return reinterpret_cast<T*>(const_cast<std::byte*>(mem_.data())); }
    T& operator[](std::size_t i) const noexcept { return get()[i]; }

   private:
    aligned_buffer mem_;
    std::size_t n_ = 0;  // made by make_next
  };
  mapped_array<detail::frame> frames_;
  std::vector<std::unique_ptr<shard>> shards_;
  std::size_t shard_mask_ = 0;
  std::unique_ptr<hit_stripe[]> hits_;
  void count_hit() noexcept;
  // A hit without any lock: the page's frame if it is in the table and
  // ready, pinned in this thread's reader stripe (`*stripe`), its access
  // noted and counted; null otherwise (the caller then takes the shard
  // lock). It writes nothing another thread's hit writes.
  detail::frame* try_hit(const page_id& id, std::uint32_t* stripe) noexcept;
  // Per reader stripe, a count per frame: pins taken by try_hit, and
  // the frames' shared latch holders (stripes_.latches). Stripe s of frame i
  // is element s * nframes_ + i.
  mapped_array<std::atomic<std::uint32_t>> pin_stripes_, latch_stripes_;
  detail::reader_stripe_set stripes_;
  std::atomic<std::uint32_t>& pin_stripe(const detail::frame* f, std::uint32_t stripe) noexcept;
  std::uint32_t striped_pins(const detail::frame* f) noexcept;  // added up (mod 2^32)

  // Eviction: free list, S3-FIFO queues, ghost list.
  mutable std::mutex evict_mu_;
  // A fetch waiting for a frame sleeps on unpin_gen_; the unpin that drops a
  // frame's last pin bumps it and wakes them, when frame_waiters_ says any.
  std::atomic<std::uint32_t> unpin_gen_{0};
  std::atomic<std::uint32_t> frame_waiters_{0};
  // Write-backs holding pins on their pages (from taking them to letting
  // them go): while one runs, a fetch waiting for a frame does not give up.
  std::atomic<std::uint32_t> writing_back_{0};
  void wake_frame_waiters() noexcept;
  // The next frame never used, made now, with its reader stripes (evict_mu_).
  detail::frame* make_frame_locked();
  std::unique_ptr<queues> q_;

  // Dirty pages, oldest first.
  mutable std::mutex dirty_mu_;
  std::condition_variable cleaner_cv_;
  std::size_t dirty_count_ = 0;
  // Frames free: on the free list or never made (evict_mu_ to change, read
  // by the cleaner's test without it).
  std::atomic<std::size_t> free_frames_{0};
  bool stop_cleaner_ = false;
  std::thread cleaner_;
  std::mutex write_mu_;  // one write-back at a time
  aligned_buffer wb_copy_;  // a write-back's copies of its pages (write_mu_)

  mutable std::mutex files_mu_;
  std::vector<std::unique_ptr<file_entry>> files_;

  std::mutex lanes_mu_;
  std::vector<std::unique_ptr<lane>> all_lanes_;
  std::vector<lane*> idle_lanes_;
  std::vector<lane*> idle_lone_lanes_;  // options::lone_backend

  struct counters {
    std::atomic<std::uint64_t> reads{0}, pages_read{0}, readahead{0}, writes{0},
        pages_written{0}, evictions{0}, read_errors{0}, write_errors{0}, syncs{0}, corrupt_pages{0},
        pages_repaired{0}, dw_writes{0}, dw_pages{0}, new_pages{0};
  };
  mutable counters c_;
  std::mutex sync_mu_;  // one round of data-file syncs at a time (write_mu_ before it)
  std::vector<file_entry*> file_entries() const;
};

struct buffer_pool::begin_result {
  enum class kind { ready, loading, must_read } k;
  detail::frame* f;  // pinned for the caller
  // Where that pin is counted: a hit's reader stripe, or the frame's own
  // count (page_ref::shared_pin). Hand it back to make_ref / abandon_async_fetch.
  std::uint32_t stripe = UINT32_MAX;
};

}  // namespace pageio::pagecache
