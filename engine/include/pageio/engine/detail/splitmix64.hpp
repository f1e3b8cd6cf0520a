// splitmix64 (Steele, Lea and Flood; constants from Vigna's splitmix64.c):
// a small, seeded generator for fault rolls, crash cuts and benchmark
// offsets. Not for anything secret. Seeded tests reproduce a run from its
// printed seed, so the outputs below must never change.
#pragma once

#include <cstdint>

namespace pageio::detail {

// splitmix64's output function: a stateless bijection of 64-bit words that
// spreads every input bit over the output (also usable as a hash or as a
// Feistel round function).
constexpr std::uint64_t splitmix64_mix(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Advances `state` and returns the next value of its sequence.
constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  return splitmix64_mix(state += 0x9e3779b97f4a7c15ULL);
}

// Uniform in [0, 1): the top 53 bits of the next value.
constexpr double splitmix64_unit(std::uint64_t& state) noexcept {
  return static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;
}

// The reference sequence from seed 0.
static_assert([] {
  std::uint64_t state = 0;
  return splitmix64(state) == 0xe220a8397b1dcdafULL && splitmix64(state) == 0x6e789e6aa1b965f4ULL &&
         splitmix64(state) == 0x06c45d188009454fULL;
}());

}  // namespace pageio::detail
