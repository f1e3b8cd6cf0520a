// pageio-bench's own logic, no I/O: sizes on the command line, the latency
// histogram's buckets and percentiles, and the helpers the reports share.
#include "errors.hpp"
#include "histogram.hpp"
#include "numbers.hpp"
#include "size_parse.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace pageio::bench {
namespace {

TEST(BenchSizes, SuffixesAreBinaryAndCaseDoesNotMatter) {
  EXPECT_EQ(parse_size("4096", "--size"), 4096u);
  EXPECT_EQ(parse_size("4k", "--size"), 4096u);
  EXPECT_EQ(parse_size("4K", "--size"), 4096u);
  EXPECT_EQ(parse_size("4KiB", "--size"), 4096u);
  EXPECT_EQ(parse_size("4kb", "--size"), 4096u);
  EXPECT_EQ(parse_size("1m", "--size"), 1u << 20);
  EXPECT_EQ(parse_size("1.5m", "--size"), 3u << 19);
  EXPECT_EQ(parse_size("1g", "--size"), 1ull << 30);
  EXPECT_EQ(parse_size("2t", "--size"), 2ull << 40);
}

TEST(BenchSizes, WhatIsNotAWholeSizeIsAUsageErrorNamingTheOption) {
  for (const char* bad : {"", "k", "-4k", "4x", "1.1", "0.3k", "4 k", "99999999999999999999t"}) {
    try {
      (void)parse_size(bad, "--block-size");
      ADD_FAILURE() << "\"" << bad << "\" was taken as a size";
    } catch (const usage_error& e) {
      EXPECT_NE(std::string(e.what()).find("--block-size"), std::string::npos) << e.what();
    }
  }
}

TEST(BenchSizes, FormatIsExactAndReadsBack) {
  EXPECT_EQ(format_size(512), "512 B");
  EXPECT_EQ(format_size(4096), "4 KiB");
  EXPECT_EQ(format_size(1536 * 1024), "1536 KiB");
  EXPECT_EQ(format_size(1ull << 30), "1 GiB");
  for (std::uint64_t v : {1ull, 4096ull, 1536ull * 1024, 3ull << 30, (1ull << 40) + 4096}) {
    std::string s = format_size(v);
    s.erase(std::remove(s.begin(), s.end(), ' '), s.end());
    EXPECT_EQ(parse_size(s, "--size"), v) << s;
  }
}

TEST(BenchHistogram, EveryValueLandsInABucketWithinHalfAPercent) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t v = rng() >> (rng() % 64);
    const std::size_t b = latency_histogram::index_of(v);
    ASSERT_LT(b, latency_histogram::bucket_count);
    const std::uint64_t lo = latency_histogram::bucket_low(b), w = latency_histogram::bucket_width(b);
    ASSERT_LE(lo, v);
    ASSERT_LT(v - lo, w) << v;
    if (v >= 256) {
      ASSERT_LE(static_cast<double>(w), static_cast<double>(v) / 128.0) << v;
    }
  }
}

TEST(BenchHistogram, PercentilesOfAKnownSpread) {
  latency_histogram h;
  EXPECT_EQ(h.percentile_ns(50), 0);
  for (std::uint64_t v = 1; v <= 10000; ++v) h.record(v * 1000);  // 1 µs .. 10 ms
  EXPECT_EQ(h.count(), 10000u);
  EXPECT_EQ(h.max_ns(), 10'000'000u);
  EXPECT_NEAR(h.mean_ns(), 5'000'500, 1);
  for (double p : {1.0, 50.0, 90.0, 99.0, 99.9}) {
    const double want = p / 100 * 10000 * 1000;
    EXPECT_NEAR(h.percentile_ns(p), want, want * 0.005) << "p" << p;
  }
  latency_histogram other;
  for (int i = 0; i < 10000; ++i) other.record(20'000'000);
  h.merge(other);
  EXPECT_EQ(h.count(), 20000u);
  EXPECT_NEAR(h.percentile_ns(75), 20'000'000, 20'000'000 * 0.005);
  h.reset();
  EXPECT_EQ(h.count(), 0u);
}

TEST(BenchNumbers, MediansSkipWhatWasNotMeasured) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(median_of({3, 1, 2}), 2);
  EXPECT_EQ(median_of({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(median_of({nan, 5, nan}), 5);
  EXPECT_TRUE(std::isnan(median_of({})));
  EXPECT_TRUE(std::isnan(median_of({nan})));
}

TEST(BenchNumbers, RatiosAndMissingNumbers) {
  EXPECT_EQ(times(1.234), "1.23x");
  EXPECT_EQ(times(std::numeric_limits<double>::quiet_NaN()), "-");
  EXPECT_EQ(times(std::numeric_limits<double>::infinity()), "-");
  EXPECT_EQ(number_or_null(2.5), nlohmann::json(2.5));
  EXPECT_TRUE(number_or_null(std::numeric_limits<double>::quiet_NaN()).is_null());
}

}  // namespace
}  // namespace pageio::bench
