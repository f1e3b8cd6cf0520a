#include "meter.hpp"

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <stdexcept>

namespace pageio::bench {


double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

std::uint64_t now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

void run_meter::start(std::uint64_t now) {
  measure_from_ns_ = now + static_cast<std::uint64_t>(shape_.warmup_seconds * 1e9);
  deadline_ns_ = measure_from_ns_ + static_cast<std::uint64_t>(shape_.seconds * 1e9);
  if (shape_.warmup_seconds <= 0) begin_measuring(now);
}

void run_meter::begin_measuring(std::uint64_t now) {
  measuring_ = true;
  measured_from_ns_ = now;
  hist_.reset();
  ios_ = 0;
  cpu_start_ = cpu_seconds();
}

void run_meter::stop() { cpu_end_ = cpu_seconds(); }

run_result run_meter::result(std::string tool, std::string engine) const {
  if (!measuring_) throw std::runtime_error("the run ended before its warm-up did");
  run_result r;
  r.tool = std::move(tool);
  r.engine = std::move(engine);
  r.rw = shape_.rw;
  r.bs = shape_.bs;
  r.qd = shape_.qd;
  r.cpu = shape_.cpu;
  r.seconds = static_cast<double>(deadline_ns_ - measured_from_ns_) / 1e9;
  r.ios = ios_;
  r.iops = static_cast<double>(ios_) / r.seconds;
  r.mib_s = r.iops * static_cast<double>(shape_.bs) / (1024.0 * 1024.0);
  r.lat_p50_us = hist_.percentile_ns(50) / 1e3;
  r.lat_p99_us = hist_.percentile_ns(99) / 1e3;
  r.lat_p999_us = hist_.percentile_ns(99.9) / 1e3;
  r.lat_mean_us = hist_.mean_ns() / 1e3;
  r.lat_max_us = static_cast<double>(hist_.max_ns()) / 1e3;
  if (ios_ > 0) r.cpu_us_per_io = (cpu_end_ - cpu_start_) * 1e6 / static_cast<double>(ios_);
  return r;
}

run_result run_meter::combined(const std::vector<run_meter>& jobs, std::string tool, std::string engine) {
  if (jobs.empty()) throw std::logic_error("run_meter::combined of no jobs");
  run_result r = jobs.front().result(tool, engine);  // the shape, and the check of the first job
  latency_histogram all;
  double iops = 0, cpu_start = jobs.front().cpu_start_, cpu_end = jobs.front().cpu_end_;
  std::uint64_t ios = 0;
  for (const run_meter& m : jobs) {
    const run_result one = m.result(tool, engine);
    all.merge(m.hist_);
    ios += one.ios;
    iops += one.iops;
    r.seconds = std::max(r.seconds, one.seconds);
    cpu_start = std::min(cpu_start, m.cpu_start_);
    cpu_end = std::max(cpu_end, m.cpu_end_);
  }
  r.numjobs = static_cast<unsigned>(jobs.size());
  r.ios = ios;
  r.iops = iops;
  r.mib_s = iops * static_cast<double>(r.bs) / (1024.0 * 1024.0);
  r.lat_p50_us = all.percentile_ns(50) / 1e3;
  r.lat_p99_us = all.percentile_ns(99) / 1e3;
  r.lat_p999_us = all.percentile_ns(99.9) / 1e3;
  r.lat_mean_us = all.mean_ns() / 1e3;
  r.lat_max_us = static_cast<double>(all.max_ns()) / 1e3;
  r.cpu_us_per_io = ios > 0 ? (cpu_end - cpu_start) * 1e6 / static_cast<double>(ios) : not_measured;
  return r;
}

}  // namespace pageio::bench
