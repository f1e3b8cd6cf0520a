// The command-line surface of pageio-bench: options as typed, and their
// conversion into checked parameters.
#pragma once

#include "cache_bench.hpp"
#include "compare.hpp"
#include "fio_runner.hpp"
#include "workload.hpp"

#include <CLI/CLI.hpp>

#include <string>

namespace pageio::bench {

// Options of `io` and `fio` as given on the command line (sizes still text).
struct io_cli {
  std::string backend = "default";
  std::string rw = "randread";
  std::string bs = "4k";
  unsigned qd = 1;
  double seconds = 4;
  double warmup_seconds = 0.5;
  std::string file;  // empty: <data dir>/pageio-bench.dat
  std::string size = "1g";
  bool json = false;
  bool uring_register = false;
  unsigned callback_batch = 0;
  long long resubmit_gap_ns = -1;
  bool uring_any_thread = false;
  unsigned fio_batch = 1;
  std::uint64_t seed = 0x5eed;
  int cpu = -1;
  std::string api = "raw";
};

// Options of `cache` as given on the command line.
struct cache_cli {
  std::string backend = "default";
  std::string file;  // empty: <data dir>/pageio-bench.dat
  std::string size = "1g";
  std::uint64_t cache_mb = 16;
  unsigned threads = 1;
  unsigned inflight = 1;
  std::string dist = "uniform";
  double zipf_theta = 0.99;
  double seconds = 4;
  double warmup_seconds = 0.5;
  std::string policy = "s3fifo";
  std::uint64_t readahead = 16;
  double write_fraction = 0;
  bool no_doublewrite = false;
  std::uint64_t seed = 0x5eed;
  bool no_hit_cost = false;
  bool json = false;
};

struct compare_cli {
  std::string dir;  // empty: default_data_dir()
  std::string size = "1g";
  double seconds = 4;
  double warmup_seconds = 0.5;
  unsigned rounds = 1;
  bool no_fio = false;
  bool no_asio = false;
  bool no_wal = false;
  double wal_seconds = 1.5;
  bool no_cache = false;
  double cache_seconds = 2;
  bool no_kv = false;
  double kv_seconds = 3;
  unsigned kv_rounds = 3;
  unsigned callback_batch = 0;
  long long resubmit_gap_ns = -1;
  bool uring_any_thread = false;
  unsigned fio_batch = 1;
  int cpu = -1;
  std::string json_out;
  std::string chart;
  std::string backends;  // comma-separated subset; empty: every available one
};

void add_io_options(CLI::App& cmd, io_cli& o, bool for_fio);
void add_compare_options(CLI::App& cmd, compare_cli& o);
void add_cache_options(CLI::App& cmd, cache_cli& o);

// Throw usage_error when a value makes no sense.
workload_params to_workload(const io_cli& o);
fio_params to_fio(const io_cli& o);
compare_options to_compare(const compare_cli& o);
cache_params to_cache(const cache_cli& o);

}  // namespace pageio::bench
