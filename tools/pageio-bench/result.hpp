// One measured run, from pageio or from fio, in the units every report uses.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace pageio::bench {

inline constexpr double not_measured = std::numeric_limits<double>::quiet_NaN();

// The access patterns both pageio-bench and fio understand (fio's --rw names).
enum class rw_mode { randread, randwrite, read, write };

// What a run does, whoever runs it (pageio or fio): the same file, block
// size, queue depth and duration make the two comparable.
struct workload_shape {
  rw_mode rw = rw_mode::randread;
  std::uint64_t bs = 4096;
  unsigned qd = 1;
  double seconds = 4;
  double warmup_seconds = 0.5;   // run but not counted (fio: --ramp_time)
  std::filesystem::path file;    // must exist and hold at least size_bytes (see test_file.hpp)
  std::uint64_t size_bytes = 0;  // offsets fall in [0, size_bytes)
  // The CPU the thread driving the I/O is pinned to (pageio: the benchmark
  // thread; fio: --cpus_allowed for its job); -1 leaves it to the scheduler.
  int cpu = -1;
};
const char* to_string(rw_mode m) noexcept;
bool is_write(rw_mode m) noexcept;
bool is_random(rw_mode m) noexcept;
std::optional<rw_mode> parse_rw(std::string_view s) noexcept;

struct run_result {
  std::string tool;    // "pageio" or "fio"
  std::string engine;  // pageio backend ("sync", "aio", "uring") or fio ioengine
  rw_mode rw = rw_mode::randread;
  std::uint64_t bs = 0;
  unsigned qd = 0;       // per job
  unsigned numjobs = 1;  // threads, each with its own backend (pageio) or job (fio)
  double seconds = 0;  // measured window, warm-up excluded (the longest job's)
  std::uint64_t ios = 0;
  double iops = 0;   // every job's, summed
  double mib_s = 0;  // every job's, summed
  // Latency from submission to completion, in µs. For fio this is its "lat"
  // (slat + clat); its clat percentiles are kept separately.
  double lat_p50_us = not_measured;
  double lat_p99_us = not_measured;
  double lat_p999_us = not_measured;
  double lat_mean_us = not_measured;
  double lat_max_us = not_measured;
  double clat_p50_us = not_measured;  // fio only
  double clat_p99_us = not_measured;  // fio only
  // User + system CPU time of the process driving the I/O, per I/O, in µs.
  double cpu_us_per_io = not_measured;
  int cpu = -1;         // the CPU the run was pinned to, -1: not pinned
  std::string api;      // pageio only: "raw", "asio" or "asio-file" (see workload_params::api)
  std::string command;  // fio only: the command line that was run
};

// The JSON object `pageio-bench io --json` prints; values not measured are null.
nlohmann::json to_json(const run_result& r);

}  // namespace pageio::bench
