// The write-ahead log part of `pageio-bench compare`: group commit against
// RocksDB's synced writes (db_bench), one committer also against fio's
// O_DSYNC writes at QD1 (the device's ceiling for it), and large records against fio's
// durable equivalent (sequential direct writes of the record size, as many
// in flight as there are writers, an fdatasync after every that many) and
// fio's unsynced 1 MiB sequential write on the same disk. Each pair runs
// `rounds` times, alternating which tool goes first. The unsynced
// reference, whose writes the host takes into memory and writes back for a
// long while after, runs last, all its rounds back to back, and the disk's
// write cache is drained before the section and after it (disk_drain.hpp).
#pragma once

#include "disk_drain.hpp"
#include "wal_bench.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pageio::bench {

struct wal_compare_options {
  std::filesystem::path dir;        // data directory (logs and db_bench's database go in subdirectories)
  std::filesystem::path fio_file;   // the test file fio writes sequentially
  std::uint64_t fio_size = 0;
  std::string backend;              // the pageio backend to run the log on
  double seconds = 2;
  double warmup_seconds = 0.5;
  unsigned rounds = 3;
  bool use_fio = true;
  bool use_db_bench = true;
  bool large_records = true;        // the 8 x 64 KiB shape and its fio references
  bool one_writer = true;           // the 1 x 100 B shape and db_bench with 1 thread
  int cpu = -1;
};

// A reference run in each round (NaN where it failed), and their median.
struct wal_reference {
  std::string what;       // "db_bench fillrandom --sync=1, 64 threads"
  std::string unit;       // "ops/s" or "MiB/s"
  std::string command;
  std::vector<double> each_round;
  std::optional<double> median() const;
};

// One shape of the log: each round's run, and what it is held against.
struct wal_shape {
  std::vector<wal_result> each_round;
  wal_result median;                     // the round of the median commits/s
  std::vector<wal_reference> references;  // ratio: commits/s (ops/s) or MiB/s (MiB/s) against each
  // pageio / reference in each round where both ran, and their median.
  std::vector<double> ratio_each_round(const wal_reference& ref) const;
};

struct wal_compare_results {
  unsigned rounds = 0;
  // The drains of the disk's write cache: before the first run, and after
  // the unsynced reference (what the sections after this one start from).
  std::vector<std::pair<std::string, drain_result>> drains;
  std::vector<wal_shape> shapes;  // 1 x 100 B, 64 x 100 B, 8 x 64 KiB (those run)
  std::vector<std::string> notes;  // what was skipped and why
};

// Runs the workloads, printing a progress line for each.
wal_compare_results run_wal_compare(const wal_compare_options& o);
void print_wal_compare(std::FILE* out, const wal_compare_results& r);
nlohmann::json wal_compare_json(const wal_compare_results& r);

}  // namespace pageio::bench
