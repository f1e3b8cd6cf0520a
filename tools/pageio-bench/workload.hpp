// The measurement loop of `pageio-bench io`: one backend, one file, a fixed
// number of requests always in flight.
#pragma once

#include "result.hpp"

#include <pageio/engine/backend.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace pageio::bench {

struct workload_params : workload_shape {
  std::string backend = "uring";
  bool uring_register = false;  // register the file and the buffers (uring)
  // backend_options::uring_single_thread: this benchmark drives each backend
  // from one thread, and says so, as fio sets up its rings.
  bool uring_single_thread = true;
  // backend_options::callback_batch: resubmissions from completion callbacks
  // go to the kernel in groups of this many. 0 keeps the engine's default.
  unsigned callback_batch = 0;
  // backend_options::resubmit_gap in nanoseconds; negative keeps the engine's default.
  long long resubmit_gap_ns = -1;
  std::uint64_t seed = 0x5eed;
  // Threads, each with its own backend and its own region of the file:
  // job j of N does its I/O in the j-th of N equal parts of [0, size_bytes)
  // (block-aligned), with the seed seed + j. Their IOPS and MiB/s are summed
  // and their latency histograms merged. With api "raw" only.
  unsigned numjobs = 1;
  // Who drives the I/O: "raw" (completion callbacks resubmitting through
  // io_backend), "asio" (one C++20 coroutine per request in flight, through
  // pageio::asio_driver) or "asio-file" (the same coroutines on Boost.Asio's
  // own random_access_file; `backend` is then not used).
  std::string api = "raw";
};

// The options run_workload() builds its backend with.
backend_options backend_options_for(const workload_params& p);

// Builds the backend `p` asks for. Throws usage_error for a bad name or queue
// depth, backend_unavailable when it cannot start here.
std::unique_ptr<io_backend> start_backend(const workload_params& p);

// Throws usage_error when the parameters cannot work (unknown backend, bs not
// a multiple of the file's direct-I/O alignment, size smaller than bs...),
// std::runtime_error/system_error when the I/O fails (the message describes
// the first failed request).
run_result run_workload(const workload_params& p);

}  // namespace pageio::bench
