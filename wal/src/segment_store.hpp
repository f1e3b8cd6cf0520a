// The log's segment files: their names, making the next one ahead of use,
// the descriptors the flusher writes through, recycling after a checkpoint,
// and the directory syncs that make all of it durable. Every step goes
// through the log's file_system, so the crash and fault wrappers see it.
//
// The rules (docs/wal-format.md, "Files"):
//   - a segment is made under a temporary name (wal-<seq>.log.tmp), written
//     full-size with zeros, fdatasynced, renamed into place and the directory
//     synced; only then is it ready, and the log writes into no other;
//   - recycling renames one segment at a time to the next unused number and
//     syncs the directory after each, so a crash leaves no gap in the numbers;
//   - any failure that may leave a segment's name or size not durable is
//     thrown to the caller, which fails the log (never retried into success).
#pragma once

#include <pageio/engine/backend.hpp>
#include <pageio/engine/file_system.hpp>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace pageio::wal::detail {

class segment_store {
 public:
  // `existing`: the segments recovery found (all full-size, names durable).
  segment_store(std::shared_ptr<file_system> fs, std::filesystem::path dir, std::uint32_t segment_pages,
                const std::vector<std::uint64_t>& existing);
  ~segment_store();
  segment_store(const segment_store&) = delete;
  segment_store& operator=(const segment_store&) = delete;

  // Starts the thread that makes the next segment ahead of the flusher.
  void start_preparer();
  // The flusher's descriptor of segment `seq` (O_DIRECT, writable), made
  // ready first if it is not; asks for `seq + 1` ahead. Throws
  // std::system_error when the segment cannot be made ready (including an
  // earlier failure of the preparer on it), naming the file.
  const file& writable(std::uint64_t seq);
  // Closes the flusher's descriptors of segments before `keep_from`, telling
  // `backend` to forget them first.
  void release_before(std::uint64_t keep_from, io_backend& backend);
  void release_all(io_backend& backend) { release_before(UINT64_MAX, backend); }

  // Renames each of `victims` (in order) to the next unused number, syncing
  // the directory after each. Returns how many were recycled before a
  // failure; throws std::system_error on the first failure, naming the file.
  std::size_t recycle(const std::vector<std::uint64_t>& victims);

  // Whether segment `seq` is ready (full-size, its name durable).
  bool is_ready(std::uint64_t seq) const;
  std::filesystem::path path_of(std::uint64_t seq) const;
  std::uint64_t segments_created() const;

  // One step of the preparer: makes segment `seq` ready ahead of the
  // flusher, unless the flusher has got there already (it then made it
  // itself, and a checkpoint may have recycled it since: making it again
  // would put an empty segment below the log). A failure is kept for the
  // flusher. Also called by the log as it opens, for the segment it writes
  // first and the one after it, and by tests, without the thread.
  void prepare(std::uint64_t seq);

 private:
  void make_ready(std::uint64_t seq);  // under files_mu_
  void preparer_main();

  std::shared_ptr<file_system> fs_;
  std::filesystem::path dir_;
  std::uint64_t segment_bytes_;

  mutable std::mutex files_mu_;          // creating and renaming segment files
  std::set<std::uint64_t> ready_;         // full-size, names durable
  std::uint64_t highest_ = 0;             // highest number in use or recycled to
  std::uint64_t opened_ = 0;              // highest segment the flusher has opened
  std::uint64_t created_ = 0;
  std::map<std::uint64_t, std::exception_ptr> prep_failed_;  // the preparer's errors, by segment

  std::map<std::uint64_t, file> open_;  // flusher only

  std::mutex prep_mu_;
  std::condition_variable prep_cv_;
  std::uint64_t prep_want_ = 0, prep_done_ = 0;
  bool prep_stop_ = false;
  std::thread preparer_;
};

}  // namespace pageio::wal::detail
