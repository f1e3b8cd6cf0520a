// The write-ahead log: appenders on any thread, one flusher that makes
// everything appended so far durable as one group commit.
//
//   pageio::wal::log wal({.dir = "db/wal"});
//   pageio::wal::lsn_t lsn = wal.append(record);   // numbered, buffered
//   wal.flush(lsn);                                // returns once it is durable
//
// A commit is acknowledged (flush returns) only when every page up to its
// record is durable. A failed write or flush puts the log in a failed state:
// every waiter and every later call gets that error, nothing more is
// acknowledged (retrying a failed flush is unsafe: the kernel may have dropped
// the dirty data). Reopening the directory recovers what was durable.
#pragma once

#include <pageio/engine/backend.hpp>
#include <pageio/engine/durable_log.hpp>
#include <pageio/wal/reader.hpp>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace pageio::wal {

// How a group commit is made durable: plain writes followed by one
// fdatasync, or writes carrying RWF_DSYNC, or (automatic, the default) the
// first for large group commits and the second for small ones. Measured here
// (docs/wal-format.md): a small RWF_DSYNC write costs about one write plus
// half a flush, with no second round trip (and, on io_uring, no trip through
// its worker threads, where an fsync op goes); a large group commit does
// better as a write whose fdatasync overlaps the next group's write.
enum class durability { automatic, write_then_fdatasync, dsync_writes };

struct options {
  std::filesystem::path dir;
  // Backend by name ("default", "sync", "aio", "uring"); `make_backend`,
  // when set, builds it instead (tests wrap fault and crash backends).
  std::string backend = "default";
  std::function<std::unique_ptr<io_backend>()> make_backend;
  // Size of each segment file, a multiple of 4 KiB, at least 2 pages. An
  // existing log keeps the size it was created with.
  std::uint64_t segment_bytes = 64ull << 20;
  // The log buffer: appenders wait while it is full of pages not yet durable.
  std::size_t buffer_bytes = 8u << 20;
  // Upper bound of one group commit (a larger single record is written whole).
  std::size_t max_batch_bytes = 1u << 20;
  durability mode = durability::automatic;
  // automatic: group commits up to this size go out as RWF_DSYNC writes.
  std::size_t dsync_max_bytes = 64u << 10;
};

// The log failed (a write or flush error), or was closed.
class log_error : public std::system_error {
 public:
  using std::system_error::system_error;
};

// The log on disk is damaged before its end: nothing was cut.
class corruption_error : public std::runtime_error {
 public:
  explicit corruption_error(damage d);
  const damage& where() const noexcept { return where_; }

 private:
  damage where_;
};

// Implements pageio::durable_log, so a page cache can hold its pages back
// until the log is durable up to their LSN.
class log final : public durable_log {
 public:
  // Opens (or creates) the log in opts.dir and recovers it: the next record
  // continues after the last complete group commit. Throws corruption_error
  // when the log is damaged before its end, std::system_error when the
  // directory or a file cannot be used, backend_unavailable for the backend.
  explicit log(options opts);
  // Makes everything appended durable (unless the log failed), then stops.
  ~log() override;
  log(const log&) = delete;
  log& operator=(const log&) = delete;

  // Appends one record and returns its LSN. Waits while the buffer is full.
  // Throws log_error once the log has failed, std::invalid_argument for a
  // record larger than a segment can hold.
  lsn_t append(std::span<const std::byte> record);
  // Returns once every record up to `lsn` is durable; throws log_error if the
  // log failed first.
  void flush(lsn_t lsn);
  // append() then flush(). Records appended while a group commit is in
  // flight share the next one (see docs/wal-format.md, "Group commit").
  lsn_t commit(std::span<const std::byte> record);

  // Calls `done` once every record up to `lsn` is durable (with no error) or
  // the log has failed (with its error), from the flusher thread, or at once
  // on this thread if that is already so. `done` must not block; see
  // pageio/wal/asio.hpp for the Asio completion-token form.
  void when_durable(lsn_t lsn, std::function<void(std::error_code)> done);

  // Checkpoint: records before `lsn` are no longer needed. Every segment
  // that holds only such records (and is not being written) is recycled:
  // renamed to a future segment number, where its old pages read as never
  // written, and reused when the log gets there. Returns how many were
  // recycled. The records from `lsn` on stay readable.
  std::size_t truncate_before(lsn_t lsn);

  lsn_t durable_lsn() const override;
  // durable_log: flush(lsn), for a page cache's write-back.
  void make_durable(std::uint64_t lsn) override { flush(lsn); }
  lsn_t last_lsn() const;
  // The error that failed the log, or empty.
  std::error_code failure() const;

  struct statistics {
    std::uint64_t batches = 0;        // group commits written
    std::uint64_t records = 0;        // records they held
    std::uint64_t pages = 0;          // pages written
    std::uint64_t segments_created = 0;
    // Where a group commit's time went, in ns: from forming it to its write's
    // completion (sealing, then the write), and then to its fdatasync's
    // (0 for RWF_DSYNC writes).
    std::uint64_t write_ns = 0, flush_ns = 0;
    std::uint64_t dsync_batches = 0;  // of `batches`, made durable by an RWF_DSYNC write
  };
  statistics stats() const;
  // What recovery found when the log was opened.
  const scan_result& recovered() const noexcept { return recovered_; }
  const std::string& backend_name() const noexcept { return backend_name_; }

 private:
  struct ring_page {
    std::uint64_t segment = 0;
    std::uint32_t index = 0;
    std::uint16_t used = 0;
    bool ends_record = true;  // the last fragment in it completes a record
    bool segment_end = false;
    lsn_t last_lsn = 0;       // the last record that completes in it (0: none)
    std::uint32_t records = 0;
  };

  void flusher_main();
  std::byte* page_data(std::size_t ring_index) noexcept;
  void open_next_page_locked();  // the open page is full or taken: start the next one
  void close_segment_locked();   // the open page ends its segment
  void fail_locked(std::error_code ec, const std::string& what);
  int segment_fd(std::uint64_t seq);  // flusher only: opens (creating it if needed) segment `seq`
  void ensure_segment_file(std::uint64_t seq);  // creates it, zero-filled and durable, if missing
  void preparer_main();                          // makes the next segment ahead of the flusher

  options opts_;
  std::uint32_t seg_pages_ = 0;
  std::unique_ptr<io_backend> backend_;
  std::string backend_name_;
  scan_result recovered_;

  // The buffer: a ring of pages.
  std::size_t ring_pages_ = 0;
  std::size_t max_batch_pages_ = 0;
  std::unique_ptr<std::byte, void (*)(void*)> arena_{nullptr, nullptr};
  std::vector<ring_page> ring_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;     // flusher: something to write, or stop
  std::condition_variable space_cv_;    // appenders: ring pages freed
  // Ring positions, counted from 0 without wrapping (index = n % ring_pages_).
  std::uint64_t tail_ = 0;   // oldest page not yet durable
  std::uint64_t flush_ = 0;  // first page not yet taken by the flusher
  std::uint64_t head_ = 0;   // the open page
  lsn_t next_lsn_ = 1;
  lsn_t durable_lsn_ = 0;
  std::error_code failure_;
  std::string failure_what_;
  bool stop_ = false;
  statistics stats_;
  std::multimap<lsn_t, std::function<void(std::error_code)>> durable_callbacks_;
  // Threads blocked in flush(), by the LSN they wait for: each is woken once,
  // when its own record is durable (not every waiter at every group commit).
  // A waiter sleeps on its own futex word, not on mu_: woken, it returns
  // without taking the lock again (state 1: durable; 2: failed or closing,
  // and then it takes the lock to read why).
  struct flush_waiter {
    std::atomic<std::uint32_t> state{0};
  };
  std::multimap<lsn_t, flush_waiter*> flush_waiters_;
  // Those now durable; all of them once the log failed or stopped. With
  // `later`, they are only taken off the list and collected there, to be
  // woken by wake_waiters() once mu_ is released.
  void wake_flush_waiters_locked(std::vector<flush_waiter*>* later = nullptr);
  static void wake_waiters(std::vector<flush_waiter*>& woken, std::uint32_t state);
  // The flusher sleeps on work_cv_ for records: appenders signal only then.
  bool flusher_idle_ = false;
  std::map<std::uint64_t, lsn_t> segment_last_lsn_;  // segments holding durable records
  std::mutex files_mu_;  // creating and renaming segment files

  // Flusher-only state.
  struct batch;
  std::map<std::uint64_t, int> segment_fds_;  // open segments (O_DIRECT), by sequence number
  void release_segment_fds(std::uint64_t keep_from);  // closes those before `keep_from`
  static void batch_io_done(io_request& r) noexcept;

  std::thread flusher_;
  // The segment preparer: writes out the next segment file in the background.
  std::mutex prep_mu_;
  std::condition_variable prep_cv_;
  std::uint64_t prep_want_ = 0, prep_done_ = 0;
  bool prep_stop_ = false;
  std::thread preparer_;
};

}  // namespace pageio::wal
