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
#include <pageio/engine/error.hpp>
#include <pageio/engine/file_system.hpp>
#include <pageio/wal/reader.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace pageio::wal {

// How a group commit is made durable: plain writes followed by one
// fdatasync (which may cover the next group commit too), or writes carrying
// RWF_DSYNC, or (automatic, the default) the second for small group commits
// (options::dsync_max_bytes) while about one or two committers are at work,
// and the first for large ones and for small ones of a few committers at
// once (why: docs/wal-format.md, "A lone committer or several").
enum class durability { automatic, write_then_fdatasync, dsync_writes };

struct options {
  std::filesystem::path dir;
  // Backend by name ("default", "sync", "aio", "uring"); `make_backend`,
  // when set, builds it instead (tests wrap fault and crash backends).
  std::string backend = "default";
  std::function<std::unique_ptr<io_backend>()> make_backend{};
  // Every file operation that is not a group commit's write or flush:
  // creating, preallocating, renaming and syncing segments, and reading them
  // at recovery. Empty: posix_file_system(). Tests wrap crash_file_system
  // and fault_file_system.
  std::shared_ptr<file_system> fs{};
  // Size of each segment file, a multiple of 4 KiB, at least 2 pages. An
  // existing log keeps the size it was created with.
  std::uint64_t segment_bytes = 64ull << 20;
  // The log buffer: appenders wait while it is full of pages not yet durable.
  std::size_t buffer_bytes = 8u << 20;
  // Upper bound of one group commit (a larger single record is written whole).
  std::size_t max_batch_bytes = 1u << 20;
  durability mode = durability::automatic;
  // automatic: group commits up to this size may go out as RWF_DSYNC writes.
  std::size_t dsync_max_bytes = 64u << 10;
  // Records are packed into pages: the page being filled is written (and
  // its rest padded) only when someone waits for a record in it (flush,
  // commit, when_durable, a full buffer, closing), or at the latest this
  // long after nobody did. Full pages are written as they fill.
  std::uint32_t lazy_flush_ms = 20;
  // Log archiving (docs/wal-format.md, "Archive"). When set, truncate_before()
  // copies each segment it would recycle into this directory, named by its
  // sequence number and the LSNs of the records ending in it
  // (archive_file_name), and makes the copy durable (the file, then the
  // directory) before it recycles the segment. A segment that cannot be
  // archived is not recycled, nor any after it: the log keeps them (and
  // grows) and says why in statistics::archive_error until a later
  // truncate_before() archives them. The directory (and its missing
  // parents) is created when the log opens; it must not be `dir` itself.
  // Nothing in it is ever removed or rewritten by the log.
  std::filesystem::path archive_dir{};
};

// The log failed: code() is errc::log_failed, and cause() the error of the
// write, flush or rename that failed it (EIO, ENOSPC...); or it was closed
// (errc::closed) before the call or before the record was written.
class log_error : public pageio::error {
 public:
  log_error(errc code, const std::string& what, std::error_code cause = {}) : pageio::error(code, what, cause) {}
};

// The log on disk is damaged before its end: nothing was cut. code() is
// errc::corruption; where() says where.
class corruption_error : public pageio::error {
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
  // Opens (or creates, with its missing parent directories, each made
  // durable) the log in opts.dir and recovers it: the next record continues
  // after the last complete group commit, and what recovery read is made
  // durable (segments and directory synced) before durable_lsn() reports it.
  // Throws corruption_error when the log is damaged before its end (a
  // damaged page, a short segment, a missing one), std::system_error when
  // the directory or a file cannot be used, backend_unavailable for the
  // backend.
  explicit log(options opts);
  // Makes everything appended durable (unless the log failed), then stops.
  // Threads still waiting in flush() get their answer (durable, or the
  // error) before it returns; no other call may start once it has begun.
  ~log() override;
  log(const log&) = delete;
  log& operator=(const log&) = delete;

  // Appends one record and returns its LSN. Waits while the buffer is full.
  // Throws log_error once the log has failed, std::invalid_argument for a
  // record larger than a segment or the buffer can hold or than the format's
  // 4 GiB - 1 (checked before the record is read).
  lsn_t append(std::span<const std::byte> record);
  // Returns once every record up to `lsn` is durable; throws log_error if the
  // log failed first.
  void flush(lsn_t lsn);
  // append() then flush(). Records appended while a group commit is in
  // flight share the next one (see docs/wal-format.md, "Group commit").
  lsn_t commit(std::span<const std::byte> record);
  // The same for character data: the record is the string's bytes.
  lsn_t append(std::string_view record) { return append(std::as_bytes(std::span(record))); }
  lsn_t commit(std::string_view record) { return commit(std::as_bytes(std::span(record))); }

  // Calls `done` once every record up to `lsn` is durable (with no error) or
  // the log has failed (with its error), from the flusher thread, or at once
  // on this thread if that is already so. `done` must not block; see
  // pageio/wal/asio.hpp for the Asio completion-token form. A `done` that
  // throws fails the log with that error (the other callbacks still run).
  void when_durable(lsn_t lsn, std::function<void(std::error_code)> done);

  // Checkpoint: records before `lsn` are no longer needed. Every segment
  // that holds only such records (and is not being written) is recycled:
  // renamed to a future segment number, where its old pages read as never
  // written, and reused when the log gets there. The segment holding the
  // newest durable record always stays, so a reopened log numbers on from
  // it. Returns how many were recycled. The records from `lsn` on stay
  // readable. A rename or directory sync that fails fails the log (and
  // throws log_error naming the file): the names on disk are then unknown.
  // With options::archive_dir, each segment is archived first; one that
  // cannot be is kept, with those after it (not an error of the log: see
  // statistics::archive_error). Calls are serialized.
  std::size_t truncate_before(lsn_t lsn);

  lsn_t durable_lsn() const override;
  // durable_log: flush(lsn), for a page cache's write-back.
  void make_durable(lsn_t lsn) override { flush(lsn); }
  lsn_t last_lsn() const;
  // The segments holding durable records, lowest first: what a copy of the
  // log must take (an online backup, with truncate_before() held off).
  std::vector<std::uint64_t> live_segments() const;
  const std::filesystem::path& dir() const noexcept;
  // The largest record append() takes (its segment and buffer sizes bound
  // it: a record fits in one segment, with room to start on a fresh page).
  std::size_t max_record_bytes() const noexcept;
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
    // Of `batches`, sent while the one before was still in flight (written
    // during its flush, or beside its RWF_DSYNC write).
    std::uint64_t overlapped_batches = 0;
    // Waits of committers in flush() or commit() for their record to be
    // durable (one whose record a group commit left to the next waits, and
    // counts, again), and the system calls that woke them once durable: a
    // group commit's committers are woken together, one call for the lot.
    std::uint64_t committer_waits = 0, committer_wakeups = 0;
    // Archiving (options::archive_dir), since the log opened: segments
    // archived, their bytes, the newest LSN archived (0: none yet), the
    // attempts that failed, and why the last one failed (empty once a later
    // attempt archived that segment).
    std::uint64_t archived_segments = 0, archived_bytes = 0;
    lsn_t archived_lsn = 0;
    std::uint64_t archive_failures = 0;
    std::string archive_error;
  };
  statistics stats() const;
  // What recovery found when the log was opened.
  const scan_result& recovered() const noexcept { return recovered_; }
  const std::string& backend_name() const noexcept { return backend_name_; }

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  scan_result recovered_;
  std::string backend_name_;
};

}  // namespace pageio::wal
