// The write-ahead log part of `pageio-bench compare`: group commit against
// RocksDB's synced writes (db_bench) and large records against fio's
// sequential direct write on the same disk.
#pragma once

#include "wal_bench.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pageio::bench {

struct wal_compare_options {
  std::filesystem::path dir;        // data directory (logs and db_bench's database go in subdirectories)
  std::filesystem::path fio_file;   // the test file fio writes sequentially
  std::uint64_t fio_size = 0;
  std::string backend;              // the pageio backend to run the log on
  double seconds = 2;
  bool use_fio = true;
  bool use_db_bench = true;
  int cpu = -1;
};

struct wal_compare_results {
  std::vector<wal_result> runs;                 // 1 x 100 B, 64 x 100 B, 8 x 64 KiB
  std::optional<double> db_bench_1, db_bench_64;  // ops/s of fillrandom --sync=1, 1 and 64 threads
  std::string db_bench_command_64;
  std::optional<double> fio_seq_mib_s;           // 1 MiB sequential O_DIRECT writes at QD8, libaio
  std::string fio_command;
  std::vector<std::string> notes;               // what was skipped and why
};

// Runs the workloads, printing a progress line for each.
wal_compare_results run_wal_compare(const wal_compare_options& o);
void print_wal_compare(std::FILE* out, const wal_compare_results& r);
nlohmann::json wal_compare_json(const wal_compare_results& r);

}  // namespace pageio::bench
