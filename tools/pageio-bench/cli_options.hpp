// The command-line surface of pageio-bench: each command's options as typed.
// Every value is checked while CLI11 parses (tools/common/validators.hpp),
// so a bad one is refused before anything touches the disk; cli_convert.hpp
// turns the checked text into each workload's parameters.
//
// The same names mean the same things in every command: -f/--file is a
// file, -d/--dir a directory, --json prints JSON on stdout instead of the
// table, --json-out FILE also writes the JSON to FILE, --backend takes the
// engine's registry names, and fio's names work beside ours (fio_names.hpp).
#pragma once

#include "cli_fwd.hpp"

#include <cstdint>
#include <string>

namespace pageio::bench {

// Options of `io` and `fio` as given on the command line (sizes still text).
struct io_cli {
  std::string backend = "default";
  std::string rw = "randread";
  std::string bs = "4k";
  unsigned qd = 1;
  unsigned numjobs = 1;  // io only
  double seconds = 4;
  double warmup_seconds = 0.5;
  std::string file;  // empty: <dir>/pageio-bench.dat
  std::string dir;   // empty: the data directory
  std::string size = "1g";
  bool json = false;
  std::string json_out;
  bool uring_register = false;
  unsigned callback_batch = 0;
  long long resubmit_gap_ns = -1;
  bool uring_any_thread = false;
  unsigned fio_batch = 1;
  std::uint64_t seed = 0x5eed;
  int cpu = -1;
  std::string api = "raw";
};

// Options of `wal`.
struct wal_cli {
  std::string backend = "default";
  std::string dir;  // empty: the data directory
  unsigned writers = 1;
  std::string record_size = "100";
  double seconds = 4;
  double warmup_seconds = 0.5;
  std::string mode = "auto";
  double checkpoint_ms = 50;
  std::string segment_size = "64m";
  bool json = false;
  std::string json_out;
};

// Options of `cache` as given on the command line.
struct cache_cli {
  std::string backend = "default";
  std::string file;  // empty: <dir>/pageio-bench.dat
  std::string dir;   // empty: the data directory
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
  std::string json_out;
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
  unsigned wal_rounds = 3;
  bool quick = false;  // --quick: see add_compare_options
  bool no_cache = false;
  double cache_seconds = 2;
  bool no_kv = false;
  double kv_seconds = 3;
  unsigned kv_rounds = 5;
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
void add_wal_options(CLI::App& cmd, wal_cli& o);
void add_cache_options(CLI::App& cmd, cache_cli& o);
void add_compare_options(CLI::App& cmd, compare_cli& o);

}  // namespace pageio::bench
