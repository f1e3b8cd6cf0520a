// A log-linear latency histogram in the style of HdrHistogram: every power of
// two is split into 128 linear buckets, so any recorded value is known to
// within 1/256 (0.4 %) of itself. Fixed size, allocated once: recording never
// allocates and costs a few instructions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pageio::bench {

class latency_histogram {
 public:
  latency_histogram();

  void record(std::uint64_t value_ns) noexcept {
    ++counts_[index_of(value_ns)];
    ++total_;
    sum_ += value_ns;
    if (value_ns > max_) max_ = value_ns;
  }
  void reset() noexcept;
  // Adds every value recorded in `other` (per-thread histograms into one).
  void merge(const latency_histogram& other) noexcept;

  std::uint64_t count() const noexcept { return total_; }
  std::uint64_t max_ns() const noexcept { return max_; }
  double mean_ns() const noexcept;
  // The value at percentile `p` (0..100): the midpoint of the bucket holding
  // the ceil(p% * count)-th smallest value. 0 when empty.
  double percentile_ns(double p) const noexcept;

  // Exposed for tests of the bucket layout.
  static std::size_t index_of(std::uint64_t v) noexcept;
  static std::uint64_t bucket_low(std::size_t index) noexcept;
  static std::uint64_t bucket_width(std::size_t index) noexcept;
  static constexpr std::size_t bucket_count = 256 + 56 * 128;

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace pageio::bench
