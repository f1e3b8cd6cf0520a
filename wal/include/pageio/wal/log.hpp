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
#include <pageio/wal/reader.hpp>

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
// fdatasync, or writes carrying RWF_DSYNC. Measured here (docs/wal-format.md):
// an RWF_DSYNC O_DIRECT write through aio or io_uring completes only after
// ~4 ms (ext4 finishes the sync in a worker), against ~115 µs for write then
// fdatasync; through pwritev2 both cost about the same.
enum class durability { write_then_fdatasync, dsync_writes };

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
  durability mode = durability::write_then_fdatasync;
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

class log {
 public:
  // Opens (or creates) the log in opts.dir and recovers it: the next record
  // continues after the last complete group commit. Throws corruption_error
  // when the log is damaged before its end, std::system_error when the
  // directory or a file cannot be used, backend_unavailable for the backend.
  explicit log(options opts);
  // Makes everything appended durable (unless the log failed), then stops.
  ~log();
  log(const log&) = delete;
  log& operator=(const log&) = delete;

  // Appends one record and returns its LSN. Waits while the buffer is full.
  // Throws log_error once the log has failed, std::invalid_argument for a
  // record larger than a segment can hold.
  lsn_t append(std::span<const std::byte> record);
  // Returns once every record up to `lsn` is durable; throws log_error if the
  // log failed first.
  void flush(lsn_t lsn);
  // append() then flush().
  // Counted as a committer: while committers are about to append, the
  // flusher waits a little for their records so that they share one group
  // commit (see docs/wal-format.md, "Group commit").
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

  lsn_t durable_lsn() const;
  lsn_t last_lsn() const;
  // The error that failed the log, or empty.
  std::error_code failure() const;

  struct statistics {
    std::uint64_t batches = 0;        // group commits written
    std::uint64_t records = 0;        // records they held
    std::uint64_t pages = 0;          // pages written
    std::uint64_t segments_created = 0;
    // Where the flusher's time went, in ns: waiting for committers to join a
    // group commit, writing, and flushing (write_then_fdatasync).
    std::uint64_t group_wait_ns = 0, write_ns = 0, flush_ns = 0;
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
  lsn_t append_impl(std::span<const std::byte> record, bool committer);
  void flush_impl(lsn_t lsn, bool committer);

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
  std::uint64_t untaken_records_ = 0;     // appended, not yet in a batch
  std::uint64_t committers_ = 0;          // threads inside commit()
  std::uint64_t last_batch_records_ = 0;
  std::multimap<lsn_t, std::function<void(std::error_code)>> durable_callbacks_;
  // Threads blocked in flush(), by the LSN they wait for: each is woken once,
  // when its own record is durable (not every waiter at every group commit).
  struct flush_waiter {
    std::condition_variable cv;
    bool woken = false;
  };
  std::multimap<lsn_t, flush_waiter*> flush_waiters_;
  void wake_flush_waiters_locked();  // those now durable; all of them once the log failed or stopped
  std::map<std::uint64_t, lsn_t> segment_last_lsn_;  // segments holding durable records
  std::mutex files_mu_;  // creating and renaming segment files
  std::int64_t last_batch_io_ns_ = 0;

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
