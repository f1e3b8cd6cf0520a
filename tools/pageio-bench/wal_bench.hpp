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
  std::string mode = "fdatasync";  // "fdatasync" (write, then fdatasync) or "dsync" (RWF_DSYNC writes)
  std::uint64_t segment_bytes = 64ull << 20;
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
  // Per group commit, µs: the flusher waiting for committers, writing, flushing.
  double group_wait_us = 0, write_us = 0, flush_us = 0;
  std::string mode;
};

wal_result run_wal_bench(const wal_params& p);
nlohmann::json to_json(const wal_result& r);
void print_wal_result(std::FILE* out, const wal_result& r);

}  // namespace pageio::bench
