// CRC32C (Castagnoli polynomial 0x1EDC6F41), the checksum of iSCSI (RFC 3720),
// ext4 and btrfs metadata. The SSE 4.2 crc32 instruction computes it where the
// CPU has one; elsewhere Boost.CRC's table-driven implementation does.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pageio {

// The CRC32C of `n` bytes at `data`. Passing the CRC of preceding bytes as
// `crc` extends it: crc32c(b, nb, crc32c(a, na)) == crc32c(a ++ b).
std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc = 0) noexcept;

// The two implementations, for tests and benchmarks; crc32c() picks one once.
std::uint32_t crc32c_portable(const void* data, std::size_t n, std::uint32_t crc = 0) noexcept;
std::uint32_t crc32c_hardware(const void* data, std::size_t n, std::uint32_t crc = 0) noexcept;  // needs the instruction
bool crc32c_hardware_available() noexcept;

}  // namespace pageio
