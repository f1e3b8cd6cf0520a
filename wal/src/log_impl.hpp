// The log's state, shared by its three parts: the appenders (log.cpp), the
// flusher that turns appended pages into group commits (flusher.cpp), and
// opening with recovery (log_open.cpp). Segment files are segment_store's.
#pragma once

#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/wal/log.hpp>

#include "segment_store.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pageio::wal {

struct log::impl {
  // One page of the buffer, as the appenders fill it.
  struct ring_page {
    std::uint64_t segment = 0;
    std::uint32_t index = 0;
    std::uint16_t used = 0;
    bool ends_record = true;  // the last fragment in it completes a record
    bool segment_end = false;
    lsn_t last_lsn = 0;       // the last record that completes in it (0: none)
    std::uint32_t records = 0;
  };

  // One group commit on its way to disk.
  struct batch {
    impl* owner = nullptr;
    std::uint64_t first = 0, cut = 0;  // ring positions
    std::uint64_t seg = 0;
    std::uint32_t first_index = 0, n_pages = 0;
    lsn_t lsn = 0;
    std::uint64_t records = 0;
    std::uint64_t seq = 0;  // its number, from 0 at open: its committers' wait group
    int fd = -1;
    io_request write_req, sync_req;
    iovec iov[2]{};
    bool dsync = false;  // an RWF_DSYNC write: durable when written
    bool overlapped = false;  // sent while the batch before was in flight
    bool sync_sent = false;   // its fdatasync is on its way
    // Made durable by the fdatasync of this later batch, which was sent once
    // both writes had completed (one flush for the two).
    batch* covered_by = nullptr;
    bool is_durable() const noexcept { return durable || (covered_by != nullptr && covered_by->durable); }
    bool written = false, durable = false;
    std::error_code ec;
    std::string what;
    std::chrono::steady_clock::time_point started, wrote, synced;
  };

  // The committers waiting for the same group commit sleep on one futex
  // word, and one system call wakes them all once it is durable: a wake-up
  // per committer, each a system call, cost more CPU than the commit's own
  // work (docs/wal-format.md, "Waking committers"). Batch n's group is
  // groups[n % wait_groups]; at most two batches are unacknowledged and one
  // more gathers, so live groups never share a word.
  struct wait_group {
    std::atomic<std::uint32_t> gen{0};  // moves on (under mu) when the batch is acknowledged
    std::uint32_t sleepers = 0;         // under mu: committers that may be asleep on gen
    lsn_t lsn = 0;                      // under mu: once the batch is formed, its last LSN
  };
  static constexpr std::size_t wait_groups = 8;
  // The group of the batch that will make `lsn` durable, as far as is known:
  // a formed batch that holds it, else the next one to be formed (which may
  // not reach that far: its committers then wait again, on the one after).
  wait_group& group_for_locked(lsn_t lsn);
  // Batch `seq` is acknowledged: its sleepers are released (woken later, by
  // tell_acknowledged, once mu is released; marked in groups_to_wake).
  void release_group_locked(std::uint64_t seq);
  // Failed or closed: every sleeper is woken now, to read why under mu.
  void release_all_locked() noexcept;

  explicit impl(options o) : opts(std::move(o)) {}
  ~impl();
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  // --- log_open.cpp
  void open(scan_result& recovered);  // recovers opts.dir; starts nothing

  // --- log.cpp (appenders, under mu)
  std::byte* page_data(std::uint64_t ring_pos) noexcept;
  void open_next_page_locked();  // the open page is full or taken: start the next one
  void close_segment_locked();   // the open page ends its segment
  void fail_locked(std::error_code ec, const std::string& what);
  void wake_flusher_if_idle_locked(std::unique_lock<std::mutex>& lock);
  // How a sleeping flusher is woken: take_flusher_wakeup_locked() says so
  // (and clears the flag) under mu, wake_flusher() does it after.
  enum class flusher_wakeup { none, cv, fd };
  flusher_wakeup take_flusher_wakeup_locked() noexcept;
  void wake_flusher(flusher_wakeup how) noexcept;

  // --- flusher.cpp
  void flusher_main();
  void run_flusher();
  bool open_page_wanted_locked() const;  // someone needs the open page written
  bool work_locked() const;              // a group commit can be formed
  std::unique_ptr<batch> form_batch_locked();
  // How batch b is made durable: an RWF_DSYNC write, or a write and then an
  // fdatasync (shared with the next batch when it comes in time).
  bool choose_dsync(const batch& b);
  void seal(batch& b, const std::vector<ring_page>& pages, bool follows_unacked, std::uint32_t prev_pages);
  void send(batch& b);
  // Acknowledges, in order, the group commits now durable: durable_lsn moves
  // on, and their waiters and callbacks are set aside for tell_acknowledged.
  void acknowledge_locked();
  // Wakes the waiters and runs the callbacks acknowledge_locked set aside
  // (after the next group commit is sent: each wake-up is a system call, and
  // 64 of them took a quarter of a commit's time), and lets go of segments
  // no longer in use. Releases mu meanwhile.
  void tell_acknowledged(std::unique_lock<std::mutex>& lock);
  // With a batch in flight and room for the next: sleeps until an I/O
  // completes or an appender has work (whichever first), then runs what
  // completed. Without, until an I/O completes. Called without mu.
  void wait_for_io_or_work(std::unique_lock<std::mutex>& lock);
  bool may_send_another_locked() const;
  // With no flush in flight, the batch whose fdatasync should go out now,
  // covering every written batch before it (nullptr: none yet).
  batch* flush_due() const;
  void send_flush(batch& b);
  void drain_quietly() noexcept;
  static void batch_io_done(io_request& r) noexcept;

  options opts;
  std::shared_ptr<file_system> fs;
  std::uint32_t seg_pages = 0;
  std::uint64_t writer_id = 0;  // stamped on every page this instance writes
  std::unique_ptr<io_backend> backend;
  std::unique_ptr<detail::segment_store> segments;

  // The buffer: a ring of pages.
  std::size_t ring_pages = 0;
  std::size_t max_batch_pages = 0;
  aligned_buffer arena;  // ring_pages pages, page-aligned for O_DIRECT
  std::vector<ring_page> ring;

  mutable std::mutex mu;
  std::condition_variable work_cv;   // flusher: something to write, or stop
  std::condition_variable space_cv;  // appenders: ring pages freed
  // Ring positions, counted from 0 without wrapping (index = n % ring_pages).
  std::uint64_t tail = 0;   // oldest page not yet durable
  std::uint64_t flushed = 0;  // first page not yet taken by the flusher
  std::uint64_t head = 0;   // the open page
  // The newest closed page whose last fragment ends a record: a place where
  // a group commit may end. UINT64_MAX: none yet.
  std::uint64_t last_cut = UINT64_MAX;
  lsn_t cut_lsn = 0;  // the newest record that completes at or before `last_cut`
  std::chrono::steady_clock::time_point open_since;  // when the open page got its first record
  std::size_t space_waiters = 0;
  lsn_t next_lsn = 1;
  lsn_t durable_lsn = 0;
  std::error_code failure;
  std::string failure_what;
  bool stop = false;
  bool flusher_done = false;  // the flusher has answered every waiter and exited
  bool flusher_idle = false;  // waiting on work_cv: appenders signal only then
  // Waiting in poll() for a completion or for work_fd, with a batch in
  // flight: appenders write work_fd only then.
  bool flusher_polling = false;
  int work_fd = -1;  // an eventfd: work for a polling flusher
  int io_fd = -1;    // the backend's completion eventfd; -1: it has none (reap only)
  statistics stats;
  std::multimap<lsn_t, std::function<void(std::error_code)>> durable_callbacks;
  std::array<wait_group, wait_groups> groups;
  std::uint64_t batches_formed = 0;  // batch numbers handed out (form_batch_locked)
  std::uint64_t batches_acked = 0;   // batches acknowledged, in order
  lsn_t max_waited_lsn = 0;          // the highest LSN a committer has waited for
  // durable_lsn, for a woken committer to read without mu (set before a
  // group's gen moves on).
  std::atomic<lsn_t> durable_seen{0};
  std::map<std::uint64_t, lsn_t> segment_last_lsn;  // segments holding durable records
  // The first record ending in the lowest segment of segment_last_lsn (what
  // an archived copy of it names as its first LSN).
  lsn_t lowest_first_lsn = 1;
  std::mutex truncate_mu;  // one truncate_before() at a time
  std::atomic<int> in_flush{0};  // threads inside flush(): the destructor waits for them

  // Flusher only.
  // Released, not yet woken: bit i for groups[i] (a mask, so marking one
  // needs no allocation on the flusher's path).
  std::uint32_t groups_to_wake = 0;
  static_assert(wait_groups <= 32);
  std::vector<std::function<void(std::error_code)>> acked_callbacks;  // durable, not yet run
  bool acked_untold = false;  // acknowledged since tell_acknowledged last ran
  // `automatic` durability (choose_dsync): a moving average of the records in
  // each batch formed plus those in flight then (about the committers at
  // work), and whether small batches are paired under one fdatasync.
  double recent_load = 1.0;
  bool pairing = false;
  std::deque<std::unique_ptr<batch>> in_flight;  // at most two, acknowledged in order
  std::thread flusher;
  std::thread populator;  // maps the ring's pages in at open (log.cpp)
};

}  // namespace pageio::wal
