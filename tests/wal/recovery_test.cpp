// Recovery on hand-damaged logs: damage with complete group commits after it
// is corruption (named by segment, page and offset, nothing cut); damage in
// the last group commit is a torn tail; stale pages past the end are not
// damage at all.
#include <pageio/wal/crc32c.hpp>
#include <pageio/wal/format.hpp>
#include <pageio/wal/log.hpp>
#include <pageio/wal/reader.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <vector>

#include "support/test_dir.hpp"

namespace pageio::wal {
namespace {

using test::test_dir;
constexpr std::size_t page = format::page_size;
constexpr std::uint32_t seg_pages = 8;
constexpr int commits = 30;  // one page each: segments 1-3 full, 4 holds 6 pages

std::vector<std::byte> record_for(lsn_t l) { return std::vector<std::byte>(1000, static_cast<std::byte>(l)); }

class recovery_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
    opts_.dir = dir_->path() / "log";
    opts_.backend = "sync";
    opts_.segment_bytes = seg_pages * page;
    log w(opts_);
    for (int i = 1; i <= commits; ++i) ASSERT_EQ(w.commit(record_for(i)), static_cast<lsn_t>(i));
    ASSERT_EQ(w.stats().batches, static_cast<std::uint64_t>(commits)) << "the layout this test assumes";
  }

  std::filesystem::path seg(std::uint64_t s) const { return opts_.dir / segment_file_name(s); }

  std::vector<std::byte> read_page(std::uint64_t s, std::uint32_t p) const {
    std::vector<std::byte> b(page);
    const int fd = ::open(seg(s).c_str(), O_RDONLY);
    EXPECT_EQ(::pread(fd, b.data(), page, static_cast<off_t>(p * page)), static_cast<ssize_t>(page));
    ::close(fd);
    return b;
  }
  void write_page(std::uint64_t s, std::uint32_t p, const std::vector<std::byte>& b) const {
    const int fd = ::open(seg(s).c_str(), O_WRONLY);
    ASSERT_EQ(::pwrite(fd, b.data(), page, static_cast<off_t>(p * page)), static_cast<ssize_t>(page));
    ::close(fd);
  }

  // Marks page `p` of segment `s` as written while the previous group commit
  // (of `prev_pages` pages) was not yet durable, as the pipelined writer
  // does, and reseals it.
  void mark_follows_unacked(std::uint64_t s, std::uint32_t p, std::uint32_t prev_pages = 1) const {
    auto b = read_page(s, p);
    format::page_header h;
    std::memcpy(&h, b.data(), sizeof h);
    h.flags |= format::flag_follows_unacked;
    h.prev_pages = prev_pages;
    std::memcpy(b.data(), &h, sizeof h);
    h.crc = crc32c(b.data() + format::crc_covers_from, page - format::crc_covers_from);
    std::memcpy(b.data() + format::crc_offset, &h.crc, sizeof h.crc);
    write_page(s, p, b);
  }

  // Scans, expecting corruption at (segment, page) whose description mentions `words`.
  void expect_corruption(std::uint64_t s, std::uint32_t p, const std::string& words) {
    const scan_result r = scan_log(opts_.dir);
    ASSERT_TRUE(r.corruption) << "no corruption reported; tail: " << r.tail;
    EXPECT_EQ(r.corruption->segment, s) << r.corruption->what;
    EXPECT_EQ(r.corruption->page, p) << r.corruption->what;
    EXPECT_EQ(r.corruption->offset, static_cast<std::uint64_t>(p) * page);
    EXPECT_NE(r.corruption->what.find(words), std::string::npos) << r.corruption->what;
    EXPECT_LT(r.last_lsn, static_cast<lsn_t>(commits));
    // The writer refuses to open it rather than cut anything.
    try {
      log w(opts_);
      FAIL() << "the writer opened a corrupt log";
    } catch (const corruption_error& e) {
      EXPECT_EQ(e.where().segment, s);
      EXPECT_EQ(e.code(), pageio::errc::corruption);
      EXPECT_EQ(e.where().page, p);
      EXPECT_NE(std::string(e.what()).find(segment_file_name(s)), std::string::npos) << e.what();
    }
  }

  std::optional<test_dir> dir_;
  options opts_;
};

TEST_F(recovery_test, ACleanLogReadsWhole) {
  const scan_result r = scan_log(opts_.dir);
  EXPECT_FALSE(r.corruption);
  EXPECT_TRUE(r.tail.empty()) << r.tail;
  EXPECT_EQ(r.first_lsn, 1u);
  EXPECT_EQ(r.last_lsn, static_cast<lsn_t>(commits));
  // Segment 5 may exist already, zero-filled ahead of use by the preparer.
  EXPECT_TRUE(r.segments.size() == 4u || (r.segments.size() == 5u && r.segments.back() == 5u)) << r.segments.size();
  EXPECT_EQ(r.end_segment, 4u);
  EXPECT_EQ(r.end_page, 6u);
}

TEST_F(recovery_test, AZeroedPageBeforeTheEndIsCorruption) {
  write_page(2, 3, std::vector<std::byte>(page));
  expect_corruption(2, 3, "never written");
}

TEST_F(recovery_test, AFlippedBitIsCorruption) {
  auto b = read_page(1, 5);
  b[2000] ^= std::byte{0x10};
  write_page(1, 5, b);
  expect_corruption(1, 5, "checksum");
}

TEST_F(recovery_test, AStalePageOfAnEarlierGenerationIsCorruption) {
  // Segment 3's page 2 replaced by the page a recycled file would still hold:
  // valid in itself, but written for segment 1.
  write_page(3, 2, read_page(1, 2));
  expect_corruption(3, 2, "stale");
}

TEST_F(recovery_test, ADuplicatedPageIsCorruption) {
  write_page(2, 5, read_page(2, 4));
  expect_corruption(2, 5, "duplicated");
}

TEST_F(recovery_test, AFileCutMidPageBeforeTheEndIsCorruption) {
  std::filesystem::resize_file(seg(2), 3 * page + 100);
  expect_corruption(2, 3, "missing");
}

TEST_F(recovery_test, AMissingSegmentIsCorruption) {
  std::filesystem::remove(seg(2));
  const scan_result r = scan_log(opts_.dir);
  ASSERT_TRUE(r.corruption);
  EXPECT_EQ(r.corruption->segment, 2u);
  EXPECT_NE(r.corruption->what.find("missing"), std::string::npos) << r.corruption->what;
  EXPECT_EQ(r.last_lsn, static_cast<lsn_t>(seg_pages)) << "the records before the gap are still read";
  EXPECT_THROW(log w(opts_), corruption_error);
}

TEST_F(recovery_test, DamageInTheLastGroupCommitIsATornTail) {
  auto b = read_page(4, 5);
  b[3000] ^= std::byte{0x01};
  write_page(4, 5, b);
  const scan_result r = scan_log(opts_.dir);
  EXPECT_FALSE(r.corruption) << r.corruption->what;
  EXPECT_EQ(r.last_lsn, static_cast<lsn_t>(commits - 1));
  EXPECT_NE(r.tail.find("torn tail"), std::string::npos) << r.tail;
  // The writer recovers and overwrites the torn page with the next commit.
  {
    log w(opts_);
    EXPECT_EQ(w.last_lsn(), static_cast<lsn_t>(commits - 1));
    EXPECT_EQ(w.commit(record_for(99)), static_cast<lsn_t>(commits));
  }
  const scan_result again = scan_log(opts_.dir);
  EXPECT_FALSE(again.corruption);
  EXPECT_EQ(again.last_lsn, static_cast<lsn_t>(commits));
}

TEST_F(recovery_test, AShortSegmentIsCorruptionEvenAtTheEnd) {
  // Segments are made full-size and renamed into place: a short one was cut
  // by something other than a crash, and what it held is unknown.
  std::filesystem::resize_file(seg(4), 5 * page + 1234);
  expect_corruption(4, 5, "short");
}

TEST_F(recovery_test, AMissingSegmentBeforeTheLastOneIsCorruption) {
  // Segment 4 held LSN 25-30; segment 5, made ahead of use, holds nothing.
  std::filesystem::remove(seg(4));
  {
    std::ofstream(seg(5), std::ios::binary | std::ios::trunc).close();
    std::filesystem::resize_file(seg(5), seg_pages * page);
  }
  const scan_result r = scan_log(opts_.dir);
  ASSERT_TRUE(r.corruption) << "a missing segment was taken for the end of the log";
  EXPECT_EQ(r.corruption->segment, 4u);
  EXPECT_NE(r.corruption->what.find("missing"), std::string::npos) << r.corruption->what;
  EXPECT_THROW(log w(opts_), corruption_error);
}

TEST_F(recovery_test, AFifoNamedLikeASegmentIsAClearErrorNotAHang) {
  ASSERT_EQ(::mkfifo(seg(9).c_str(), 0644), 0);
  auto scan = std::async(std::launch::async, [&] { return scan_log(opts_.dir); });
  if (scan.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    const int unblock = ::open(seg(9).c_str(), O_WRONLY);  // lets the stuck open() return
    scan.wait();
    ::close(unblock);
    FAIL() << "scanning a log directory with a FIFO in it hung";
  }
  try {
    scan.get();
    FAIL() << "a FIFO named like a segment was accepted";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find(segment_file_name(9)), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("FIFO"), std::string::npos) << e.what();
  }
}

TEST_F(recovery_test, ARecycledSegmentPastTheEndIsNotDamage) {
  // A segment file recycled ahead of use holds an older generation's pages.
  std::filesystem::copy_file(seg(1), seg(5), std::filesystem::copy_options::overwrite_existing);
  const scan_result r = scan_log(opts_.dir);
  EXPECT_FALSE(r.corruption) << r.corruption->what;
  EXPECT_EQ(r.last_lsn, static_cast<lsn_t>(commits));
  log w(opts_);
  EXPECT_EQ(w.commit(record_for(1)), static_cast<lsn_t>(commits + 1));
}

TEST_F(recovery_test, TruncateBeforeRecyclesWholeSegmentsAndTheLogGoesOn) {
  {
    log w(opts_);
    EXPECT_EQ(w.truncate_before(17), 2u) << "segments 1 (LSN 1-8) and 2 (9-16) hold nothing needed";
    EXPECT_EQ(w.truncate_before(17), 0u);
    EXPECT_FALSE(std::filesystem::exists(seg(1)));
    EXPECT_TRUE(std::filesystem::exists(seg(5))) << "recycled under a future number";
    for (int i = commits + 1; i <= 50; ++i) ASSERT_EQ(w.commit(record_for(i)), static_cast<lsn_t>(i));
  }
  std::vector<lsn_t> seen;
  const scan_result r = scan_log(opts_.dir, 0, [&](const record_view& v) {
    seen.push_back(v.lsn);
    EXPECT_EQ(v.data[0], static_cast<std::byte>(v.lsn));
    return true;
  });
  EXPECT_FALSE(r.corruption) << r.corruption->what;
  EXPECT_EQ(r.first_lsn, 17u);
  EXPECT_EQ(r.last_lsn, 50u);
  EXPECT_EQ(seen.size(), 34u);
  log again(opts_);
  EXPECT_EQ(again.last_lsn(), 50u);
}

TEST_F(recovery_test, ATornGroupCommitFollowedOnlyByItsPipelinedSuccessorIsATornTail) {
  // Segment 4 pages 4 and 5 are the last two group commits; 5 was written
  // while 4 was in flight, and 4 is torn.
  mark_follows_unacked(4, 5);
  auto b = read_page(4, 4);
  b[1000] ^= std::byte{0x40};
  write_page(4, 4, b);
  const scan_result r = scan_log(opts_.dir);
  EXPECT_FALSE(r.corruption) << r.corruption->what;
  EXPECT_EQ(r.last_lsn, static_cast<lsn_t>(commits - 2)) << "both were never acknowledged";
  EXPECT_NE(r.tail.find("dropped with it"), std::string::npos) << r.tail;
  ASSERT_TRUE(r.dropped);
  EXPECT_EQ(r.dropped->segment, 4u);
  EXPECT_EQ(r.dropped->page, 5u);
  // The writer erases the dropped successor before going on: one new commit
  // must not run into it.
  {
    log w(opts_);
    EXPECT_EQ(w.commit(record_for(77)), static_cast<lsn_t>(commits - 1));
  }
  const scan_result again = scan_log(opts_.dir);
  EXPECT_FALSE(again.corruption) << again.corruption->what;
  EXPECT_EQ(again.last_lsn, static_cast<lsn_t>(commits - 1));
  EXPECT_EQ(again.records, static_cast<std::uint64_t>(commits - 1));
}

TEST_F(recovery_test, DamageFollowedByMoreThanThePipelinedSuccessorIsCorruption) {
  // Page 3 damaged; page 4 says it followed an unacknowledged batch, but page
  // 5 is complete too: page 3 had been acknowledged.
  mark_follows_unacked(4, 4);
  write_page(4, 3, std::vector<std::byte>(page));
  expect_corruption(4, 3, "never written");
}

TEST_F(recovery_test, ALogOfAnotherFormatVersionIsRefusedNotWrittenOver) {
  // A whole log in another version (as a log of an older pageio is): the
  // writer must not take it for an empty log.
  for (std::uint64_t s = 1; s <= 4; ++s) {
    for (std::uint32_t p = 0; p < seg_pages; ++p) {
      auto b = read_page(s, p);
      format::page_header h;
      std::memcpy(&h, b.data(), sizeof h);
      if (h.magic != format::page_magic) continue;
      h.version = 1;
      std::memcpy(b.data(), &h, sizeof h);
      h.crc = crc32c(b.data() + format::crc_covers_from, page - format::crc_covers_from);
      std::memcpy(b.data() + format::crc_offset, &h.crc, sizeof h.crc);
      write_page(s, p, b);
    }
  }
  expect_corruption(1, 0, "version 1");
}

TEST_F(recovery_test, TheUnacknowledgedPairExceptionCoversOnlyTheBatchRightAfterTheTornOne) {
  // Page 2 (LSN 27, acknowledged) is damaged, page 3 (LSN 28) is torn, page
  // 4 (LSN 29) says it was written while its predecessor was not durable,
  // and nothing follows it. Page 4's predecessor is page 3, not page 2: the
  // damage at page 2 is corruption, not the end of a crash.
  write_page(4, 5, std::vector<std::byte>(page));
  mark_follows_unacked(4, 4);
  auto torn = read_page(4, 3);
  torn[3000] ^= std::byte{0x01};
  write_page(4, 3, torn);
  write_page(4, 2, std::vector<std::byte>(page));
  expect_corruption(4, 2, "never written");
}

TEST_F(recovery_test, AnLsnAtTheLimitDoesNotSwitchOffTheContinuityCheck) {
  // The first record's LSN rewritten as 2^64-1 (and its page resealed): the
  // record after it, LSN 2, no longer follows.
  auto b = read_page(1, 0);
  format::fragment_header f;
  std::memcpy(&f, b.data() + format::page_header_size, sizeof f);
  f.lsn = ~lsn_t{0};
  std::memcpy(b.data() + format::page_header_size, &f, sizeof f);
  const std::uint32_t crc = crc32c(b.data() + format::crc_covers_from, page - format::crc_covers_from);
  std::memcpy(b.data() + format::crc_offset, &crc, sizeof crc);
  write_page(1, 0, b);
  const scan_result r = scan_log(opts_.dir);
  ASSERT_TRUE(r.corruption) << "LSN 2^64-1 then LSN 2 read as a valid log";
  EXPECT_EQ(r.corruption->segment, 1u);
  EXPECT_LE(r.corruption->page, 1u);
}

TEST_F(recovery_test, ReadingFromAnLsnSkipsTheRecordsBefore) {
  std::vector<lsn_t> seen;
  scan_log(opts_.dir, 25, [&](const record_view& v) {
    seen.push_back(v.lsn);
    EXPECT_EQ(v.data.size(), 1000u);
    EXPECT_EQ(v.data[0], static_cast<std::byte>(v.lsn));
    return true;
  });
  EXPECT_EQ(seen, (std::vector<lsn_t>{25, 26, 27, 28, 29, 30}));
}

}  // namespace
}  // namespace pageio::wal

namespace pageio::wal {
namespace {

// Two crashes at one place: the first leaves a torn 4-page group commit;
// recovery continues there, and the next 4-page group commit is torn too,
// its page 2 never written, so the page of the first history is still
// there. The two histories' pages carry the same batch fields; they must
// not read as one batch (a false corruption, or the discarded history's
// record coming back).
TEST(two_crashes, PagesOfTwoWriteHistoriesNeverMakeOneBatch) {
  std::string why;
  auto dir = test_dir::create(&why);
  if (!dir) GTEST_SKIP() << why;
  options o;
  o.dir = dir->path() / "log";
  o.backend = "sync";
  o.segment_bytes = 8 * page;
  const auto seg1 = o.dir / segment_file_name(1);
  auto page_of = [&](std::uint32_t p) {
    std::vector<std::byte> b(page);
    const int fd = ::open(seg1.c_str(), O_RDONLY);
    EXPECT_EQ(::pread(fd, b.data(), page, static_cast<off_t>(p * page)), static_cast<ssize_t>(page));
    ::close(fd);
    return b;
  };
  auto put_page = [&](std::uint32_t p, const std::vector<std::byte>& b) {
    const int fd = ::open(seg1.c_str(), O_WRONLY);
    ASSERT_EQ(::pwrite(fd, b.data(), page, static_cast<off_t>(p * page)), static_cast<ssize_t>(page));
    ::close(fd);
  };
  const std::vector<std::byte> first(14000, std::byte{0x11}), second(14000, std::byte{0x22});
  {
    log w(o);
    ASSERT_EQ(w.commit(first), 1u);
    ASSERT_EQ(w.stats().pages, 4u) << "the layout this test assumes";
  }
  const auto old_page2 = page_of(2);
  put_page(3, std::vector<std::byte>(page));  // crash 1: the batch's last page never landed
  {
    log w(o);
    ASSERT_EQ(w.last_lsn(), 0u) << "a torn batch is not part of the log";
    ASSERT_EQ(w.commit(second), 1u);
  }
  put_page(2, old_page2);  // crash 2: page 2 of the new batch never landed
  const scan_result r = scan_log(o.dir, 0, [&](const record_view& v) {
    EXPECT_NE(v.data[0], std::byte{0x11}) << "the discarded history's record came back";
    return true;
  });
  EXPECT_FALSE(r.corruption) << r.corruption->what;
  EXPECT_EQ(r.last_lsn, 0u);
  EXPECT_FALSE(r.tail.empty()) << "a torn tail, as after any crash";
}

// The reader takes a log a window of pages at a time (one read(2) for many
// pages): group commits that straddle where a window ends, a record larger
// than a window, and segment ends all read back exactly, and damage past
// the first window is still found at its page.
TEST(reader_windows, LargeBatchesAcrossWindowsReadBackAndDamageIsFoundAtItsPage) {
  std::string why;
  auto dir = test_dir::create(&why);
  if (!dir) GTEST_SKIP() << why;
  options o;
  o.dir = dir->path() / "log";
  o.backend = "sync";
  o.segment_bytes = 16u << 20;
  o.buffer_bytes = 8u << 20;
  std::vector<std::vector<std::byte>> records;
  std::uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1103515245u + 12345u; };
  {
    log w(o);
    for (int group = 0; group < 120; ++group) {
      const int n = 1 + static_cast<int>(next() % 12);
      lsn_t last = 0;
      for (int i = 0; i < n; ++i) {
        // Now and then a record of 3 MiB: a group commit longer than a window.
        const std::size_t size = (group % 40 == 7 && i == 0) ? (3u << 20) : 1 + next() % 60000;
        std::vector<std::byte> r(size);
        for (std::size_t k = 0; k < size; k += 97) r[k] = static_cast<std::byte>(next());
        last = w.append(r);
        records.push_back(std::move(r));
        ASSERT_EQ(last, records.size());
      }
      w.flush(last);
    }
  }
  const scan_result r = scan_log(o.dir, 0, [&](const record_view& v) {
    EXPECT_LE(v.lsn, records.size());
    if (v.lsn <= records.size()) {
      EXPECT_TRUE(std::equal(v.data.begin(), v.data.end(), records[v.lsn - 1].begin(), records[v.lsn - 1].end()))
          << "record " << v.lsn;
    }
    return true;
  });
  ASSERT_FALSE(r.corruption) << r.corruption->what;
  EXPECT_TRUE(r.tail.empty()) << r.tail;
  EXPECT_EQ(r.records, records.size());
  EXPECT_GE(r.segments.size(), 3u) << "the log should span segments";

  // A flipped byte in page 1000 of the first segment (past its first
  // windows), with complete group commits after it.
  const auto seg1 = o.dir / segment_file_name(1);
  {
    const int fd = ::open(seg1.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    std::byte b{};
    const off_t at = static_cast<off_t>(1000 * page + 2000);
    ASSERT_EQ(::pread(fd, &b, 1, at), 1);
    b ^= std::byte{0x40};
    ASSERT_EQ(::pwrite(fd, &b, 1, at), 1);
    ::close(fd);
  }
  const scan_result d = scan_log(o.dir);
  ASSERT_TRUE(d.corruption) << "the damage was not found";
  EXPECT_EQ(d.corruption->segment, 1u);
  EXPECT_LE(d.corruption->page, 1000u) << d.corruption->what;
  EXPECT_GE(d.corruption->page, 200u) << "the start of the group commit holding page 1000 (at most 3 MiB): "
                                      << d.corruption->what;
  EXPECT_LT(d.last_lsn, records.size());
}

}  // namespace
}  // namespace pageio::wal
