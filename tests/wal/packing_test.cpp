// Records are packed into pages whatever the timing: a bulk load writes about
// the pages its payload fills, not a page per record.
#include <pageio/wal/format.hpp>
#include <pageio/wal/log.hpp>
#include <pageio/wal/reader.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "support/test_dir.hpp"

namespace pageio::wal {
namespace {

TEST(wal_packing, ABulkLoadWritesAtMostOneAndAHalfTimesThePagesItsPayloadFills) {
  std::string why;
  auto dir = test::test_dir::create(&why);
  if (!dir) GTEST_SKIP() << why;
  options o;  // the defaults, as a new user has them
  o.dir = dir->path() / "log";
  constexpr std::size_t n = 100'000, size = 90;
  const std::vector<std::byte> rec(size, std::byte{0x5a});
  log::statistics st;
  {
    log w(o);
    lsn_t last = 0;
    for (std::size_t i = 0; i < n; ++i) last = w.append(rec);
    w.flush(last);
    st = w.stats();
  }
  const double payload_pages = static_cast<double>(n * size) / format::page_size;
  std::printf("[          ] %llu records of %zu B: %llu pages in %llu group commits (%.2fx the %.0f pages of payload)\n",
              static_cast<unsigned long long>(st.records), size, static_cast<unsigned long long>(st.pages),
              static_cast<unsigned long long>(st.batches), static_cast<double>(st.pages) / payload_pages, payload_pages);
  EXPECT_EQ(st.records, n);
  EXPECT_LE(static_cast<double>(st.pages), 1.5 * payload_pages);
  const scan_result r = scan_log(o.dir);
  EXPECT_FALSE(r.corruption);
  EXPECT_EQ(r.records, n);
}

}  // namespace
}  // namespace pageio::wal
