// The log's file-system steps under faults and power cuts: a segment whose
// creation or directory sync failed is never written into, a failed
// recycling rename fails the log, recovery makes what it read durable, and
// the directories the log creates survive a power cut.
#include <pageio/engine/crash_file_system.hpp>
#include <pageio/engine/fault_backend.hpp>
#include <pageio/engine/fault_file_system.hpp>
#include <pageio/wal/log.hpp>
#include <pageio/wal/reader.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <vector>

#include "log_dir_fixture.hpp"
#include "support/test_dir.hpp"

namespace pageio::wal {
namespace {

std::vector<std::byte> rec(std::size_t n, int tag = 1) { return std::vector<std::byte>(n, static_cast<std::byte>(tag)); }

class segment_files_test : public test_support::log_dir_test {
 protected:
  void SetUp() override {
    log_dir_test::SetUp();
    if (IsSkipped()) return;
    opts_.segment_bytes = 8 * 4096;  // one-page commits: 8 per segment
  }
  // A log whose segments 1 and 2 exist (2 made ahead), holding `n` records.
  void make_log(int n) {
    log w(opts_);
    for (int i = 0; i < n; ++i) w.commit(rec(100));
  }
};

// A new log is ready for its first commit when it opens: its first segment
// and the spare after it exist before anything is appended (the first
// commit never waits for zeros). A first segment that cannot be made fails
// the log at its first commit, naming the file, with no temporary file
// left, and is not retried into success.
TEST_F(segment_files_test, OpeningANewLogMakesItsFirstSegmentAndTheSpare) {
  {
    log w(opts_);
    EXPECT_TRUE(std::filesystem::exists(opts_.dir / segment_file_name(1)));
    EXPECT_TRUE(std::filesystem::exists(opts_.dir / segment_file_name(2)));
    EXPECT_EQ(std::filesystem::file_size(opts_.dir / segment_file_name(2)), opts_.segment_bytes);
    EXPECT_EQ(w.stats().segments_created, 2u);
    w.commit(rec(100));
  }
  auto ffs = std::make_shared<fault_file_system>();
  opts_.fs = ffs;
  opts_.dir = opts_.dir / "second";
  ffs->fail_next(fs_op::write_zeros, ENOSPC);  // the first segment's zeros
  log w(opts_);
  EXPECT_FALSE(std::filesystem::exists(opts_.dir / (segment_file_name(1) + ".tmp")));
  try {
    w.commit(rec(100));
    FAIL() << "a commit into a segment that was never made";
  } catch (const log_error& e) {
    EXPECT_NE(std::string(e.what()).find(segment_file_name(1)), std::string::npos) << e.what();
  }
  EXPECT_TRUE(w.failure());
}

// A log reopened into a segment it has, without the spare (a backup copies
// only the segments it needs), opens without making the spare: the
// preparer makes it once the log writes, while the segment's room fills.
TEST_F(segment_files_test, AReopenedLogLeavesAMissingSpareToThePreparer) {
  make_log(1);
  ASSERT_TRUE(std::filesystem::remove(opts_.dir / segment_file_name(2)));  // as a backup has it
  log w(opts_);
  EXPECT_EQ(w.stats().segments_created, 0u) << "the spare was made while opening";
  EXPECT_FALSE(std::filesystem::exists(opts_.dir / segment_file_name(2)));
  EXPECT_EQ(w.commit(rec(100)), 2u);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (w.stats().segments_created == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(w.stats().segments_created, 1u) << "the preparer did not make the spare";
  EXPECT_EQ(std::filesystem::file_size(opts_.dir / segment_file_name(2)), opts_.segment_bytes);
}

// A log on a full disk still opens (and a store on it can still be read)
// when its spare cannot be made (by the preparer, from the first group
// commit on: the log reopens into a segment it has); commits go on in the
// segment they are in, and the log fails when it reaches the spare.
TEST_F(segment_files_test, ALogWhoseSpareCannotBeMadeStillOpens) {
  make_log(1);
  ASSERT_TRUE(std::filesystem::remove(opts_.dir / segment_file_name(2)));  // as if never made
  auto ffs = std::make_shared<fault_file_system>();
  opts_.fs = ffs;
  ffs->fail_next(fs_op::write_zeros, ENOSPC);  // the spare's zeros
  log w(opts_);
  EXPECT_EQ(w.durable_lsn(), 1u);
  EXPECT_EQ(w.commit(rec(100)), 2u);  // segment 1 has room
  EXPECT_THROW(
      {
        for (int i = 0; i < 30; ++i) w.commit(rec(100));
      },
      log_error);
  EXPECT_LE(w.durable_lsn(), 8u);
  EXPECT_FALSE(std::filesystem::exists(opts_.dir / segment_file_name(2)));
}

TEST_F(segment_files_test, ASegmentWhoseDirectorySyncFailedIsNeverWrittenInto) {
  make_log(1);
  auto ffs = std::make_shared<fault_file_system>();
  opts_.fs = ffs;
  log w(opts_);
  // The next directory sync is the preparer's, after renaming segment 3
  // into place (it starts when the log opens segment 2).
  ffs->fail_next(fs_op::sync_directory, EIO);
  lsn_t acked = 1;
  try {
    for (int i = 0; i < 30; ++i) acked = w.commit(rec(100));
    FAIL() << "commits went on into a segment whose name was never made durable";
  } catch (const log_error& e) {
    EXPECT_NE(std::string(e.what()).find(segment_file_name(3)), std::string::npos) << e.what();
  }
  EXPECT_LE(acked, 16u) << "records were acknowledged in segment 3";
  EXPECT_LE(w.durable_lsn(), 16u);
  EXPECT_TRUE(w.failure());
}

TEST_F(segment_files_test, ASegmentThatCouldNotBeMadeFailsTheLogWhenItIsReachedAndLeavesNoTemporaryFile) {
  make_log(1);
  auto ffs = std::make_shared<fault_file_system>();
  opts_.fs = ffs;
  log w(opts_);
  ffs->fail_next(fs_op::write_zeros, ENOSPC);  // the preparer's zero-fill of segment 3
  EXPECT_THROW(
      {
        for (int i = 0; i < 30; ++i) w.commit(rec(100));
      },
      log_error);
  EXPECT_LE(w.durable_lsn(), 16u);
  EXPECT_FALSE(std::filesystem::exists(opts_.dir / (segment_file_name(3) + ".tmp")));
  EXPECT_FALSE(std::filesystem::exists(opts_.dir / segment_file_name(3)));
}

TEST_F(segment_files_test, AFailedRecyclingRenameFailsTheLogNamingTheFile) {
  make_log(20);
  auto ffs = std::make_shared<fault_file_system>();
  opts_.fs = ffs;
  log w(opts_);
  ffs->fail_next(fs_op::rename, EIO);
  try {
    w.truncate_before(w.durable_lsn() + 1);
    FAIL() << "a failed rename was not reported";
  } catch (const log_error& e) {
    EXPECT_NE(std::string(e.what()).find(segment_file_name(1)), std::string::npos) << e.what();
  }
  EXPECT_TRUE(w.failure());
  EXPECT_THROW(w.commit(rec(10)), log_error);
  // Reopening reads what the directory holds: nothing was lost.
  opts_.fs = {};
  log again(opts_);
  EXPECT_EQ(again.last_lsn(), 20u);
}

TEST_F(segment_files_test, RecoveryMakesWhatItReadDurableBeforeReportingIt) {
  // A process writes a group commit whose fdatasync fails and dies; the
  // record is in the file (the OS cache) but was never made durable. The
  // next opening reads it and reports it durable: it must then be durable,
  // whatever a power cut does next.
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto cfs = std::make_shared<crash_file_system>();
    options o = opts_;
    o.dir = dir_->path() / ("log" + std::to_string(seed));
    o.fs = cfs;
    o.mode = durability::write_then_fdatasync;
    {
      fault_backend* fb = nullptr;
      o.make_backend = [&]() -> std::unique_ptr<io_backend> {
        auto f = std::make_unique<fault_backend>(make_backend("sync"));
        fb = f.get();
        return cfs->wrap(std::move(f));
      };
      log w(o);
      w.commit(rec(100, 1));
      fb->fail_next(fault_target::flush, EIO);
      EXPECT_THROW(w.commit(rec(100, 2)), log_error);
    }
    lsn_t reported = 0;
    {
      o.make_backend = [&]() -> std::unique_ptr<io_backend> { return cfs->wrap(make_backend("sync")); };
      log w(o);
      reported = w.durable_lsn();
    }
    cfs->cut_power();
    cfs->settle(seed);
    const scan_result r = scan_log(o.dir);
    ASSERT_FALSE(r.corruption) << r.corruption->what;
    EXPECT_GE(r.last_lsn, reported) << "recovery reported LSN " << reported << " durable, a power cut took it";
  }
}

TEST_F(segment_files_test, TheDirectoriesTheLogCreatesSurviveAPowerCut) {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto cfs = std::make_shared<crash_file_system>();
    options o = opts_;
    o.dir = dir_->path() / ("a" + std::to_string(seed)) / "b" / "log";
    o.fs = cfs;
    o.make_backend = [&]() -> std::unique_ptr<io_backend> { return cfs->wrap(make_backend("sync")); };
    {
      log w(o);
      w.commit(rec(100));
    }
    cfs->cut_power();
    cfs->settle(seed);
    ASSERT_TRUE(std::filesystem::exists(o.dir)) << "an acknowledged record's directory vanished";
    EXPECT_EQ(scan_log(o.dir).last_lsn, 1u);
  }
}

}  // namespace
}  // namespace pageio::wal
