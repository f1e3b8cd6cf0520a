// `pageio-bench compare`: every available backend against each other and
// against fio's matching engines, on the same file, in the same run.
#pragma once

#include "cache_compare.hpp"
#include "numbers.hpp"
#include "result.hpp"
#include "kv_compare.hpp"
#include "wal_compare.hpp"

#include <pageio/engine/backend.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pageio::bench {

struct compare_options {
  std::filesystem::path dir;
  std::string dir_from;  // where `dir` came from: "--dir", "$PAGEIO_DATA_DIR" or "default"
  std::filesystem::path file;
  std::uint64_t size_bytes = 1ull << 30;
  std::uint64_t bs = 4096;
  double seconds = 4;
  double warmup_seconds = 0.5;
  unsigned rounds = 1;
  bool use_fio = true;
  // randread QD32 also through Asio: each backend under pageio::asio_driver
  // coroutines ("asio" rows), and Boost.Asio's own random_access_file
  // ("asio-file io_uring"), the reference for them.
  bool with_asio = true;
  // The write-ahead log workloads (wal_compare.hpp), each run for wal_seconds.
  bool with_wal = true;
  double wal_seconds = 2;
  unsigned wal_rounds = 3;  // rounds of each log shape and its references, alternating
  double wal_warmup_seconds = 0.5;
  // A regression check (--quick): randread QD32 only, on uring (or the best
  // backend here) and its registered path, against fio.
  bool quick = false;
  // The buffer pool workloads (cache_compare.hpp), each run for cache_seconds.
  bool with_cache = true;
  double cache_seconds = 3;
  // The key-value store workloads (kv_compare.hpp), timed runs of kv_seconds.
  bool with_kv = true;
  double kv_seconds = 3;
  unsigned kv_rounds = 5;  // rounds of each timed key-value case, alternating the two tools
  unsigned fio_batch = 1;       // see fio_params::batch
  int cpu = -1;                 // see workload_shape::cpu
  unsigned callback_batch = 0;  // see workload_params::callback_batch
  long long resubmit_gap_ns = -1;  // see workload_params::resubmit_gap_ns
  bool uring_single_thread = true;  // see workload_params::uring_single_thread
  std::filesystem::path json_out;
  std::filesystem::path chart;
  std::vector<std::string> only_backends;  // empty: all
};

// One workload shape of the comparison.
struct case_spec {
  rw_mode rw;
  unsigned qd;
  std::string label() const;  // "randread QD32"
};

// What runs: a pageio backend or a fio engine.
struct engine_spec {
  // "pageio", "fio", "asio" (pageio under Asio coroutines), "asio-file",
  // or "pageio-reg" and "fio-reg" (uring / io_uring with registered buffers
  // and file: pageio's --uring-register, fio's --fixedbufs --registerfiles)
  std::string tool;
  std::string engine;  // "aio", "libaio", ...
  std::string backend; // the pageio backend it stands for ("aio" for fio libaio)
  std::string label() const { return tool + " " + engine; }
};


// Every run of one engine on one case, and their median.
struct cell {
  case_spec c;
  engine_spec e;
  std::vector<run_result> runs;
  run_result median;  // per metric, over runs
  std::string error;  // set when a run failed; the cell then has no numbers
};

struct compare_results {
  compare_options opts;
  std::vector<backend_status> backends;
  std::string fio_version;  // empty: fio not used
  std::vector<case_spec> cases;
  std::vector<cell> cells;  // by case, then engine
  // Seconds to read the test file through once before the runs (NaN: not
  // done, or it failed: read_through_error says why).
  double read_through_s = not_measured;
  std::string read_through_error;
  std::optional<wal_compare_results> wal;
  std::optional<cache_compare_results> cache;
  std::optional<kv_compare_results> kv;
  double duration_seconds = 0;

  const cell* find(const case_spec& c, const std::string& tool, const std::string& engine) const;
};

// Runs the comparison, printing progress and the table to stdout. Returns the
// exit code: 0, or 1 when a run failed or the data directory is unusable.
int run_compare(const compare_options& opts);

}  // namespace pageio::bench
