#include <pageio/engine/crc32c.hpp>

#include <boost/crc.hpp>

#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace pageio {

std::uint32_t crc32c_portable(const void* data, std::size_t n, std::uint32_t crc) noexcept {
  // Reflected in and out, initial value and final xor all ones: CRC32C as
  // RFC 3720 defines it. An earlier checksum is continued from its register
  // (~crc), which Boost takes in unreflected bit order.
  std::uint32_t reg = ~crc, init = 0;
  for (int i = 0; i < 32; ++i) init |= ((reg >> i) & 1u) << (31 - i);
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> c(init);
  c.process_bytes(data, n);
  return c.checksum();
}

#if defined(__x86_64__)

namespace {

// The crc32 instruction has a latency of about three cycles but issues one
// per cycle, so one dependent chain runs at a third of its speed. Long
// inputs are therefore cut into three blocks checksummed side by side and
// then joined: by linearity, the register after X||Y is Z_|Y|(reg after X)
// xor (reg after Y started from 0), where Z_n is "n more zero bytes", a
// linear map of the 32-bit register that a 4 x 256 table applies.
constexpr std::size_t long_block = 8192;
constexpr std::size_t short_block = 256;

struct zeros_table {
  std::uint32_t t[4][256];
  std::uint32_t apply(std::uint32_t reg) const noexcept {
    return t[0][reg & 0xff] ^ t[1][(reg >> 8) & 0xff] ^ t[2][(reg >> 16) & 0xff] ^ t[3][reg >> 24];
  }
};

__attribute__((target("sse4.2"))) std::uint32_t append_zeros(std::uint32_t reg, std::size_t n) noexcept {
  std::uint64_t c = reg;
  for (std::size_t i = 0; i < n / 8; ++i) c = _mm_crc32_u64(c, 0);
  return static_cast<std::uint32_t>(c);
}

zeros_table make_zeros_table(std::size_t n) noexcept {
  std::uint32_t basis[32];
  for (int i = 0; i < 32; ++i) basis[i] = append_zeros(std::uint32_t{1} << i, n);
  zeros_table z{};
  for (int k = 0; k < 4; ++k) {
    for (std::uint32_t b = 0; b < 256; ++b) {
      std::uint32_t v = 0;
      for (int j = 0; j < 8; ++j) {
        if (b & (1u << j)) v ^= basis[8 * k + j];
      }
      z.t[k][b] = v;
    }
  }
  return z;
}

__attribute__((target("sse4.2"))) std::uint64_t three_way(std::uint64_t c0, const unsigned char* p, std::size_t block,
                                                          const zeros_table& z) noexcept {
  std::uint64_t c1 = 0, c2 = 0;
  const unsigned char* p1 = p + block;
  const unsigned char* p2 = p + 2 * block;
  for (std::size_t i = 0; i < block; i += 8) {
    std::uint64_t w0, w1, w2;
    std::memcpy(&w0, p + i, 8);
    std::memcpy(&w1, p1 + i, 8);
    std::memcpy(&w2, p2 + i, 8);
    c0 = _mm_crc32_u64(c0, w0);
    c1 = _mm_crc32_u64(c1, w1);
    c2 = _mm_crc32_u64(c2, w2);
  }
  const std::uint32_t joined = z.apply(static_cast<std::uint32_t>(c0)) ^ static_cast<std::uint32_t>(c1);
  return z.apply(joined) ^ static_cast<std::uint32_t>(c2);
}

}  // namespace

__attribute__((target("sse4.2"))) std::uint32_t crc32c_hardware(const void* data, std::size_t n,
                                                                  std::uint32_t crc) noexcept {
  static const zeros_table long_zeros = make_zeros_table(long_block);
  static const zeros_table short_zeros = make_zeros_table(short_block);
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t c = ~crc;
  while (n > 0 && (reinterpret_cast<std::uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(static_cast<std::uint32_t>(c), *p++);
    --n;
  }
  while (n >= 3 * long_block) {
    c = three_way(c, p, long_block, long_zeros);
    p += 3 * long_block;
    n -= 3 * long_block;
  }
  while (n >= 3 * short_block) {
    c = three_way(c, p, short_block, short_zeros);
    p += 3 * short_block;
    n -= 3 * short_block;
  }
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    c = _mm_crc32_u8(static_cast<std::uint32_t>(c), *p++);
    --n;
  }
  return ~static_cast<std::uint32_t>(c);
}

bool crc32c_hardware_available() noexcept { return __builtin_cpu_supports("sse4.2"); }

#else

std::uint32_t crc32c_hardware(const void* data, std::size_t n, std::uint32_t crc) noexcept {
  return crc32c_portable(data, n, crc);
}
bool crc32c_hardware_available() noexcept { return false; }

#endif

std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc) noexcept {
  static const bool hw = crc32c_hardware_available();
  return hw ? crc32c_hardware(data, n, crc) : crc32c_portable(data, n, crc);
}

}  // namespace pageio
