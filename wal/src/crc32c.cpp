#include <pageio/wal/crc32c.hpp>

#include <boost/crc.hpp>

#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace pageio::wal {

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

__attribute__((target("sse4.2"))) std::uint32_t crc32c_hardware(const void* data, std::size_t n,
                                                                  std::uint32_t crc) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t c = ~crc;
  while (n > 0 && (reinterpret_cast<std::uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(static_cast<std::uint32_t>(c), *p++);
    --n;
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

}  // namespace pageio::wal
