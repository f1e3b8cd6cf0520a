// CRC32C against the test vectors of RFC 3720 (iSCSI), appendix B.4, and the
// two implementations against each other.
#include <pageio/wal/crc32c.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace pageio::wal {
namespace {

struct vector_case {
  const char* name;
  std::vector<std::uint8_t> data;
  std::uint32_t crc;
};

std::vector<vector_case> rfc3720_vectors() {
  std::vector<vector_case> v;
  v.push_back({"32 bytes of zeros", std::vector<std::uint8_t>(32, 0x00), 0x8A9136AA});
  v.push_back({"32 bytes of ones", std::vector<std::uint8_t>(32, 0xFF), 0x62A8AB43});
  std::vector<std::uint8_t> inc(32), dec(32);
  for (int i = 0; i < 32; ++i) {
    inc[i] = static_cast<std::uint8_t>(i);
    dec[i] = static_cast<std::uint8_t>(31 - i);
  }
  v.push_back({"32 incrementing bytes", inc, 0x46DD794E});
  v.push_back({"32 decrementing bytes", dec, 0x113FDB5C});
  // An iSCSI SCSI Read (10) command PDU.
  const std::uint8_t pdu[48] = {0x01, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
                                0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
                                0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  v.push_back({"iSCSI read command PDU", std::vector<std::uint8_t>(pdu, pdu + 48), 0xD9963A56});
  const char* digits = "123456789";
  v.push_back({"\"123456789\" (the CRC catalogue's check value)",
               std::vector<std::uint8_t>(digits, digits + 9), 0xE3069283});
  return v;
}

TEST(Crc32c, Rfc3720VectorsPortable) {
  for (const auto& c : rfc3720_vectors()) EXPECT_EQ(crc32c_portable(c.data.data(), c.data.size()), c.crc) << c.name;
}

TEST(Crc32c, Rfc3720VectorsHardware) {
  if (!crc32c_hardware_available()) GTEST_SKIP() << "this CPU has no SSE 4.2 crc32 instruction";
  for (const auto& c : rfc3720_vectors()) EXPECT_EQ(crc32c_hardware(c.data.data(), c.data.size()), c.crc) << c.name;
}

TEST(Crc32c, Rfc3720VectorsDefault) {
  for (const auto& c : rfc3720_vectors()) EXPECT_EQ(crc32c(c.data.data(), c.data.size()), c.crc) << c.name;
}

TEST(Crc32c, EmptyInputIsZero) { EXPECT_EQ(crc32c(nullptr, 0), 0u); }

TEST(Crc32c, ExtendingEqualsTheWholeAndImplementationsAgree) {
  std::mt19937_64 rng(12345);
  std::vector<std::uint8_t> buf(100000);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  // Lengths around the three-way blocks (3 x 256 and 3 x 8192 bytes) too.
  for (std::size_t len : {0u, 1u, 7u, 8u, 9u, 63u, 767u, 768u, 769u, 1543u, 4096u, 10000u, 24575u, 24576u, 24577u,
                          49152u + 768u + 9u, 99990u}) {
    for (std::size_t start : {0u, 1u, 3u}) {  // misaligned starts exercise the byte loop
      if (start + len > buf.size()) continue;
      const std::uint8_t* p = buf.data() + start;
      const std::uint32_t whole = crc32c_portable(p, len);
      EXPECT_EQ(crc32c(p, len), whole) << len << "@" << start;
      if (crc32c_hardware_available()) {
        EXPECT_EQ(crc32c_hardware(p, len), whole) << len << "@" << start;
      }
      const std::size_t cut = len / 3;
      EXPECT_EQ(crc32c_portable(p + cut, len - cut, crc32c_portable(p, cut)), whole) << "portable extend " << len;
      EXPECT_EQ(crc32c(p + cut, len - cut, crc32c(p, cut)), whole) << "extend " << len;
    }
  }
}

}  // namespace
}  // namespace pageio::wal
