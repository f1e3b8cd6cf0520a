// `pageio-bench wal`: W threads committing records back to back through
// pageio::wal::log, each waiting for its commit to be durable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace pageio::bench {

struct wal_params {
  std::string backend = "default";
  std::filesystem::path dir;  // the log goes in a fresh subdirectory, removed afterwards
  unsigned writers = 1;
  std::size_t record_size = 100;
  double seconds = 4;
  double warmup_seconds = 0.5;
  // "auto" (RWF_DSYNC for small group commits, fdatasync for large ones),
  // "fdatasync" (write, then fdatasync) or "dsync" (RWF_DSYNC writes)
  std::string mode = "auto";
  std::uint64_t segment_bytes = 64ull << 20;
  // A checkpointer thread calls truncate_before(durable LSN) this often, so
  // segments are recycled as in a database's steady state; 0: never, and
  // every segment is a new file the log zero-fills before using it.
  double checkpoint_ms = 50;
};

struct wal_result {
  std::string backend;
  unsigned writers = 0;
  std::size_t record_size = 0;
  double seconds = 0;
  std::uint64_t commits = 0;
  double commits_per_s = 0;
  double mib_s = 0;
  double lat_p50_us = 0, lat_p99_us = 0, lat_p999_us = 0, lat_mean_us = 0;
  double records_per_flush = 0;
  std::uint64_t flushes = 0;
  double cpu_us_per_commit = 0;
  // Of the commits, the share that slept waiting to be durable, and the
  // wake-up system calls per commit that woke them (one per group commit).
  double waits_per_commit = 0, wakeups_per_commit = 0;
  // Per group commit, µs: sealing and writing it, then its fdatasync (0 for
  // an RWF_DSYNC write); and the share made durable by RWF_DSYNC writes.
  double write_us = 0, flush_us = 0, dsync_share = 0;
  std::string mode;
  double checkpoint_ms = 0;
  std::uint64_t segments_created = 0, segments_recycled = 0;  // while measuring
};

wal_result run_wal_bench(const wal_params& p);
nlohmann::json to_json(const wal_result& r);
void print_wal_result(std::FILE* out, const wal_result& r);

}  // namespace pageio::bench
