#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>

namespace pageio::bench {

// Layout: values 0..255 each have a bucket of width 1. Above, a value with
// bit width b (9..64) has shift = b - 8, and its top 8 bits (128..255) pick
// one of 128 buckets of width 2^shift.
std::size_t latency_histogram::index_of(std::uint64_t v) noexcept {
  if (v < 256) return static_cast<std::size_t>(v);
  const unsigned shift = static_cast<unsigned>(std::bit_width(v)) - 8;
  const std::uint64_t top = v >> shift;  // 128..255
  return 256 + (shift - 1) * 128 + static_cast<std::size_t>(top - 128);
}

std::uint64_t latency_histogram::bucket_low(std::size_t index) noexcept {
  if (index < 256) return index;
  const std::size_t k = index - 256;
  const unsigned shift = static_cast<unsigned>(k / 128) + 1;
  return (static_cast<std::uint64_t>(k % 128) + 128) << shift;
}

std::uint64_t latency_histogram::bucket_width(std::size_t index) noexcept {
  if (index < 256) return 1;
  return std::uint64_t{1} << ((index - 256) / 128 + 1);
}

latency_histogram::latency_histogram() : counts_(bucket_count, 0) {
  static_assert(bucket_count == 256 + (64 - 8) * 128, "one row of 128 buckets per shift 1..56");
}

void latency_histogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = sum_ = max_ = 0;
}

void latency_histogram::merge(const latency_histogram& other) noexcept {
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  total_ += other.total_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
}

double latency_histogram::mean_ns() const noexcept {
  return total_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(total_);
}

double latency_histogram::percentile_ns(double p) const noexcept {
  if (total_ == 0) return 0.0;
  p = std::clamp(p, 0.0, 100.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(total_)));
  rank = std::clamp<std::uint64_t>(rank, 1, total_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const double mid = static_cast<double>(bucket_low(i)) + static_cast<double>(bucket_width(i) - 1) / 2.0;
      return std::min(mid, static_cast<double>(max_));
    }
  }
  assert(false && "rank beyond the total");
  return static_cast<double>(max_);
}

}  // namespace pageio::bench
