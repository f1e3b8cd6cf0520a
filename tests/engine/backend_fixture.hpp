// The fixture every backend suite shares: one backend per test, by name, and a
// scratch directory on a file system with O_DIRECT. A backend that cannot start
// here is skipped with the reason make_backend() gives.
#pragma once

#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/backend.hpp>
#include <pageio/engine/file.hpp>
#include <pageio/engine/request.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "../support/test_dir.hpp"

namespace pageio::test {

// Byte `pos` of the pattern `tag`: distinct per position and per tag, so a
// block read from the wrong place or a stale write shows up.
inline std::uint8_t pattern_byte(std::uint64_t pos, std::uint32_t tag) noexcept {
  std::uint64_t x = (pos + 1) * 0x9E3779B97F4A7C15ULL ^ (std::uint64_t{tag} << 32 | tag);
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 32;
  return static_cast<std::uint8_t>(x);
}

// Fills `n` bytes at `p` with the pattern as it would lie at file offset `pos`.
void fill_pattern(void* p, std::size_t n, std::uint64_t pos, std::uint32_t tag) noexcept;

// Success when the `n` bytes at `p` hold the pattern from file offset `pos`;
// otherwise says where the first difference is.
::testing::AssertionResult has_pattern(const void* p, std::size_t n, std::uint64_t pos,
                                       std::uint32_t tag);

// Success when all `n` bytes at `p` equal `value`.
::testing::AssertionResult all_bytes_are(const void* p, std::size_t n, std::uint8_t value);

// Counts completions of requests whose user_data points at it.
struct completion_counter {
  int count = 0;
  std::int64_t result = 0;
};
void count_completion(io_request& r) noexcept;

// Submits `r` alone, drains the backend and checks the completion ran exactly
// once. Returns r.result.
std::int64_t run_one(io_backend& be, io_request& r);

class backend_test : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override;

  // Replaces the backend with one built with `opts`; fails the test (rather
  // than skipping) if it cannot start, since the default one did.
  void remake(const backend_options& opts);

  // Creates `name` in the scratch directory holding `size_bytes` of pattern
  // `tag`, and opens it for direct I/O (or not).
  file make_file(const std::string& name, std::size_t size_bytes, std::uint32_t tag = 1,
                 bool direct = true);

  io_backend& be() { return *backend_; }
  const std::filesystem::path& dir() const { return dir_->path(); }

  std::unique_ptr<io_backend> backend_;
  std::optional<test_dir> dir_;
};

std::string backend_param_name(const ::testing::TestParamInfo<std::string>& info);

}  // namespace pageio::test

// Runs every TEST_P of `suite` on sync, aio and uring.
#define PAGEIO_INSTANTIATE_ON_ALL_BACKENDS(suite)                                            \
  INSTANTIATE_TEST_SUITE_P(AllBackends, suite,                                               \
                           ::testing::Values(std::string("sync"), std::string("aio"),        \
                                             std::string("uring")),                          \
                           ::pageio::test::backend_param_name)
