// The bookkeeping every workload loop shares, whoever drives the I/O (the raw
// backend, Asio coroutines): warm-up, deadline, latency histogram, CPU time.
#pragma once

#include "histogram.hpp"
#include "result.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace pageio::bench {

// CLOCK_MONOTONIC in nanoseconds.
std::uint64_t now_ns() noexcept;
// User + system CPU time of this process so far, in seconds.
double cpu_seconds();

class run_meter {
 public:
  explicit run_meter(const workload_shape& shape) : shape_(shape) {}

  // The first request goes out at `now`: the warm-up and the deadline count from here.
  void start(std::uint64_t now);

  // A request that went out at `began` finished at `now`. Records it once the
  // warm-up is over; returns false when the run is over (do not resubmit).
  bool completed(std::uint64_t began, std::uint64_t now) {
    if (now >= deadline_ns_) return false;
    if (!measuring_ && now >= measure_from_ns_) begin_measuring(now);
    if (measuring_) {
      hist_.record(now - began);
      ++ios_;
    }
    return true;
  }

  bool past_deadline(std::uint64_t now) const noexcept { return now >= deadline_ns_; }

  // Call when the loop stops issuing: the CPU time is read here.
  void stop();

  // The figures of the run. Throws std::runtime_error when it ended before
  // its warm-up did.
  run_result result(std::string tool, std::string engine) const;

  // The figures of jobs run side by side, one meter each (numjobs): I/Os,
  // IOPS and MiB/s summed, the latency histograms merged, the process's CPU
  // time from the first job's measuring start to the last one's stop per
  // I/O of them all. Throws as result() does when any job ended early.
  static run_result combined(const std::vector<run_meter>& jobs, std::string tool, std::string engine);

 private:
  void begin_measuring(std::uint64_t now);

  workload_shape shape_;
  latency_histogram hist_;
  std::uint64_t measure_from_ns_ = 0;
  std::uint64_t measured_from_ns_ = 0;
  std::uint64_t deadline_ns_ = UINT64_MAX;
  std::uint64_t ios_ = 0;
  double cpu_start_ = 0;
  double cpu_end_ = 0;
  bool measuring_ = false;
};

}  // namespace pageio::bench
