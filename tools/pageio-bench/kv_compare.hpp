// The key-value part of `pageio-bench compare`: `pageio-kv bench` against
// RocksDB's `db_bench` with the same flags (key 16 B, value 100 B,
// compression none for db_bench), in the same run:
//   - fillrandom --sync=1 with 1 and with 64 threads;
//   - fillseq --sync=0 of 1,000,000 keys (a B-tree against an LSM at bulk load);
//   - readrandom over those keys with a 16 MiB cache (db_bench: direct
//     reads), 1 and 4 threads;
//   - readrandom with everything cached (a readseq first warms both);
// each timed case in several rounds, pageio and db_bench alternating, the
// median of the rounds' ratios reported with their spread;
// and, for pageio alone, the data file's size after 1,000,000 overwrites of
// 100,000 keys against its size after loading them, and each run's peak
// resident size against the cache + the log buffer + 64 MiB.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pageio::bench {

struct kv_compare_options {
  std::filesystem::path dir;  // data directory: the stores go in subdirectories, removed afterwards
  double seconds = 3;         // per timed run (--duration)
  unsigned rounds = 3;        // of each timed case, the tools alternating (the fill at bulk load: once)
  std::uint64_t keys = 1'000'000;
  bool use_db_bench = true;
};

struct kv_case_result {
  std::string label;      // "fillrandom --sync=1, 64 threads"
  std::string target;     // what the issue asks of the ratio, e.g. ">= 2.0x"
  double min_ratio = 0;   // 0: report only
  // Medians over the rounds; `ratios` holds each round's (pageio over
  // db_bench, both from the same round), and `ratio` their median.
  std::optional<double> pageio_ops_s, db_bench_ops_s, ratio;
  std::vector<double> pageio_runs, db_bench_runs, ratios;
  double pageio_p99_us = 0;
  std::uint64_t pageio_max_rss = 0, rss_budget = 0;  // the largest of the rounds
  std::string pageio_command, db_bench_command;
};

struct kv_compare_results {
  std::vector<kv_case_result> cases;
  std::optional<std::uint64_t> loaded_bytes, overwritten_bytes;  // data file sizes
  std::vector<std::string> notes;
};

// Runs the workloads, printing a progress line for each; a failed run is
// noted and `*failed` set.
kv_compare_results run_kv_compare(const kv_compare_options& o, bool* failed);
void print_kv_compare(std::FILE* out, const kv_compare_results& r);
nlohmann::json kv_compare_json(const kv_compare_results& r);

}  // namespace pageio::bench
