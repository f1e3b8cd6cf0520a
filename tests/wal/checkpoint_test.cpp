// Checkpoints (truncate_before) under reopening: LSNs only ever grow, however
// many segments a checkpoint recycles, and the log goes on after the records
// it kept.
#include <pageio/wal/log.hpp>
#include <pageio/wal/reader.hpp>

#include <gtest/gtest.h>

#include <vector>

#include "log_dir_fixture.hpp"
#include "support/test_dir.hpp"

namespace pageio::wal {
namespace {

std::vector<std::byte> record(std::size_t n, lsn_t tag) { return std::vector<std::byte>(n, static_cast<std::byte>(tag)); }

class checkpoint_test : public test_support::log_dir_test {
 protected:
  void SetUp() override {
    log_dir_test::SetUp();
    if (IsSkipped()) return;
    opts_.segment_bytes = 8 * 4096;  // 32 KiB: one-page commits fill a segment in 8
  }
};

TEST_F(checkpoint_test, LsnsOnlyGrowAcrossFullCheckpointsAndReopens) {
  lsn_t last = 0;
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    log w(opts_);
    ASSERT_EQ(w.last_lsn(), last) << "reopening must continue the numbering";
    // 8 one-page commits (100 B each) fill exactly one segment in the first round.
    for (int i = 0; i < 8 + round; ++i) {
      const lsn_t l = w.commit(record(100, last + 1));
      ASSERT_EQ(l, last + 1);
      last = l;
    }
    // A full checkpoint: nothing before the next record is needed.
    w.truncate_before(w.durable_lsn() + 1);
  }
  log w(opts_);
  EXPECT_EQ(w.commit(record(100, 0)), last + 1);
}

TEST_F(checkpoint_test, AFullCheckpointKeepsTheNewestRecordReadable) {
  {
    log w(opts_);
    for (int i = 1; i <= 8; ++i) w.commit(record(100, static_cast<lsn_t>(i)));
    w.truncate_before(9);
  }
  const scan_result r = scan_log(opts_.dir);
  EXPECT_FALSE(r.corruption) << r.corruption->what;
  EXPECT_EQ(r.last_lsn, 8u) << "the segment holding the newest durable record is never recycled";
}

}  // namespace
}  // namespace pageio::wal
