// The measurement loop of `pageio-bench io`: one backend, one file, a fixed
// number of requests always in flight.
#pragma once

#include "result.hpp"

#include <cstdint>
#include <filesystem>
#include <string>

namespace pageio::bench {

struct workload_params {
  std::string backend = "uring";
  rw_mode rw = rw_mode::randread;
  std::uint64_t bs = 4096;
  unsigned qd = 1;
  double seconds = 4;
  double warmup_seconds = 0.5;  // run but not counted
  std::filesystem::path file;   // must exist and hold at least size_bytes (see test_file.hpp)
  std::uint64_t size_bytes = 0; // offsets fall in [0, size_bytes)
  bool uring_register = false;  // register the file and the buffers (uring)
  // Completions each reap() waits for before the callbacks' resubmissions go
  // out as one batch: 1 keeps the queue fullest; more trade latency for fewer
  // submit calls. Capped at qd.
  unsigned reap_min = 1;
  std::uint64_t seed = 0x5eed;
};

// Throws usage_error when the parameters cannot work (unknown backend, bs not
// a multiple of the file's direct-I/O alignment, size smaller than bs...),
// std::runtime_error/system_error when the I/O fails (the message describes
// the first failed request).
run_result run_workload(const workload_params& p);

}  // namespace pageio::bench
