// The buffer pool part of `pageio-bench compare`: what a hit costs next to a
// buffered pread() of a page the OS has cached, and random reads through a
// pool much smaller than the test file next to the raw backend at the same
// queue depth.
#pragma once

#include "cache_bench.hpp"
#include "result.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace pageio::bench {

struct cache_compare_options {
  std::filesystem::path file;  // compare's test file, already written
  std::uint64_t size_bytes = 0;
  std::string backend;         // the pageio backend under the pool
  double seconds = 3;
  double warmup_seconds = 0.5;
  std::uint64_t cache_mb = 16;
  // compare's --callback-batch, for the raw reference runs (0 = the
  // engine's default); the pool's asio_driver sends what the handlers of
  // one wake-up start as one submission whatever it is.
  unsigned callback_batch = 0;
  // What compare's table measured for this backend (NaN: not measured).
  double table_randread_qd32_iops = not_measured;
  double table_randread_qd1_iops = not_measured;
};

struct cache_compare_results {
  std::string backend;
  std::uint64_t cache_mb = 0, size_bytes = 0;
  unsigned callback_batch = 0;  // as given to the raw runs (0: the default)
  // uniform 1 x 32 in flight (with the hit cost), uniform 1 x 1 (blocking
  // fetch); a failed run is left out and noted.
  std::vector<cache_result> runs;
  std::filesystem::path file;   // compare's test file; the pool and the raw runs read <file>.pool
  // randread on the raw backend over the pool's file: QD32 right before and
  // right after the pool's QD32 run, QD1 right after its blocking run
  std::optional<run_result> raw_qd32_before, raw_qd32, raw_qd1;
  // The pool file read through once before the runs (read_through): its
  // seconds (NaN: not done).
  double read_through_s = not_measured;
  double raw_qd32_mean_iops() const {
    double sum = 0;
    int n = 0;
    for (const auto* x : {&raw_qd32_before, &raw_qd32}) {
      if (*x) {
        sum += (*x)->iops;
        ++n;
      }
    }
    return n ? sum / n : std::numeric_limits<double>::quiet_NaN();
  }
  double table_randread_qd32_iops = not_measured, table_randread_qd1_iops = not_measured;
  std::vector<std::string> notes;

  const cache_result* find(unsigned inflight, const std::string& dist) const;
};

// Runs the workloads, printing a progress line for each. Never throws for a
// failed run: it is noted (and `*failed` set).
cache_compare_results run_cache_compare(const cache_compare_options& o, bool* failed);
void print_cache_compare(std::FILE* out, const cache_compare_results& r);
nlohmann::json cache_compare_json(const cache_compare_results& r);

}  // namespace pageio::bench
