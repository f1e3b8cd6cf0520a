// A small, fast, seeded PRNG for picking offsets: xoshiro256** seeded through
// splitmix64 (both by Blackman and Vigna). Not for anything secret.
#pragma once

#include <pageio/engine/detail/splitmix64.hpp>

#include <cstdint>

namespace pageio::bench {

class xoshiro256 {
 public:
  explicit xoshiro256(std::uint64_t seed) noexcept {
    for (auto& word : s_) word = pageio::detail::splitmix64(seed);
  }

  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, bound) by Lemire's multiply-shift (bias < bound / 2^64).
  std::uint64_t below(std::uint64_t bound) noexcept {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * bound) >> 64);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

  std::uint64_t s_[4];
};

}  // namespace pageio::bench
