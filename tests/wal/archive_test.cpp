// Log archiving (options::archive_dir): every segment the log recycles is
// first copied into the archive and made durable there, named by the LSNs
// it holds; a segment that cannot be archived stays in the log; a power cut
// at any step of archiving loses no record; an archive and the live log
// read together as one log, and a gap in them is named.
#include <pageio/engine/crash_file_system.hpp>
#include <pageio/engine/fault_file_system.hpp>
#include <pageio/wal/log.hpp>
#include <pageio/wal/reader.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "log_dir_fixture.hpp"
#include "support/test_dir.hpp"

namespace pageio::wal {
namespace {

using ::testing::HasSubstr;

// Record i holds its own number, 300 bytes long.
std::string record_of(lsn_t i) {
  std::string r = std::to_string(i);
  r.resize(300, '.');
  return r;
}

std::vector<std::string> archive_names(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string bytes_of(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Reads `dirs` as one log and checks it holds records first..last in order,
// each with its own contents.
void expect_records(const std::vector<std::filesystem::path>& dirs, lsn_t first, lsn_t last, file_system& fs) {
  lsn_t next = first;
  const scan_result r = scan_logs(fs, dirs, 0, [&](const record_view& v) {
    EXPECT_EQ(v.lsn, next) << "records out of order or missing";
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(v.data.data()), v.data.size()), record_of(v.lsn));
    next = v.lsn + 1;
    return true;
  });
  ASSERT_FALSE(r.corruption) << r.corruption->what;
  EXPECT_EQ(r.first_lsn, first);
  EXPECT_EQ(r.last_lsn, last);
  EXPECT_EQ(next, last + 1);
}

class archive_test : public test_support::log_dir_test {
 protected:
  void SetUp() override {
    log_dir_test::SetUp();
    if (IsSkipped()) return;
    opts_.segment_bytes = 4 * 4096;  // a few dozen records a segment
    opts_.archive_dir = dir_->path() / "archive";
  }
  // Appends records next..next+n-1, ten to a group commit (a page): 40 to
  // a segment.
  void commit(log& w, int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(w.append(record_of(next_)), next_);
      if (i % 10 == 9 || i == n - 1) w.flush(next_);
      ++next_;
    }
  }
  lsn_t next_ = 1;
};

TEST_F(archive_test, ArchiveFileNamesSayTheSegmentAndItsLsnsAndParseBack) {
  const archived_segment a{0x2a, 1001, 1040};
  EXPECT_EQ(archive_file_name(a), "wal-000000000000002a.1001-1040.log");
  const auto b = parse_archive_file_name(archive_file_name(a));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->seq, 0x2au);
  EXPECT_EQ(b->first_lsn, 1001u);
  EXPECT_EQ(b->last_lsn, 1040u);
  for (const char* bad : {"wal-000000000000002a.log", "wal-000000000000002a.1001-1040.log.tmp",
                          "wal-000000000000002a.1040-1001.log", "wal-000000000000002a.0-5.log",
                          "wal-000000000000002a.1001-.log", "wal-000000000000002a.-1040.log",
                          "wal-000000000000002a.1001+1040.log", "wal-000000000000002A.1-2.log",
                          "wal-2a.1-2.log", "wal-000000000000002a.1-2x.log"}) {
    EXPECT_FALSE(parse_archive_file_name(bad)) << bad;
  }
}

// Each recycled segment is in the archive first, byte for byte, named by the
// LSNs whose records end in it; the archive and the live log read as one
// log from LSN 1, while the live log alone starts later.
TEST_F(archive_test, EverySegmentRecycledIsArchivedFirstAndTheTwoReadAsOneLog) {
  std::vector<std::string> copies_before;  // what each archived segment held, read before recycling
  {
    log w(opts_);
    commit(w, 150);
    // The live segments as they are now, to compare with their copies.
    const scan_result live = scan_log(opts_.dir);
    for (const auto& [seq, last] : live.segment_last_lsn) copies_before.push_back(bytes_of(opts_.dir / segment_file_name(seq)));
    const std::size_t recycled = w.truncate_before(120);
    ASSERT_GE(recycled, 2u);
    const auto st = w.stats();
    EXPECT_EQ(st.archived_segments, recycled);
    EXPECT_EQ(st.archived_bytes, recycled * opts_.segment_bytes);
    EXPECT_EQ(st.archive_failures, 0u);
    EXPECT_TRUE(st.archive_error.empty());
    const auto names = archive_names(opts_.archive_dir);
    ASSERT_EQ(names.size(), recycled);
    lsn_t expect_first = 1;
    for (std::size_t i = 0; i < names.size(); ++i) {
      const auto a = parse_archive_file_name(names[i]);
      ASSERT_TRUE(a) << names[i];
      EXPECT_EQ(a->seq, i + 1);
      EXPECT_EQ(a->first_lsn, expect_first) << names[i];
      EXPECT_EQ(a->last_lsn, live.segment_last_lsn.at(a->seq)) << names[i];
      EXPECT_LT(a->last_lsn, 120u);
      expect_first = a->last_lsn + 1;
      EXPECT_EQ(bytes_of(opts_.archive_dir / names[i]), copies_before[i]) << names[i] << " is not the segment's copy";
    }
    EXPECT_EQ(st.archived_lsn, expect_first - 1);
    commit(w, 60);  // into recycled segments
    EXPECT_GE(w.truncate_before(200), 1u);
  }
  auto& fs = *posix_file_system();
  expect_records({opts_.archive_dir, opts_.dir}, 1, 210, fs);
  const scan_result live_only = scan_log(opts_.dir);
  EXPECT_GT(live_only.first_lsn, 100u) << "the live log alone still holds the first records";
  // The archive after a reopen goes on where it stopped: the first LSN of
  // the next file follows the last one's.
  {
    log w(opts_);
    commit(w, 100);
    EXPECT_GE(w.truncate_before(300), 1u);
  }
  expect_records({opts_.archive_dir, opts_.dir}, 1, 310, fs);
  lsn_t expect_first = 1;
  for (const auto& n : archive_names(opts_.archive_dir)) {
    const auto a = parse_archive_file_name(n);
    ASSERT_TRUE(a) << n;
    EXPECT_EQ(a->first_lsn, expect_first) << n;
    expect_first = a->last_lsn + 1;
  }
}

// find_record: record N's payload from an archive and the live log read as
// one, whatever lies after it (damage later on does not matter; it reads no
// further, which the replay timings show),
// nothing for an LSN the logs do not hold.
TEST_F(archive_test, FindRecordGivesARecordWhateverLiesAfterIt) {
  {
    log w(opts_);
    commit(w, 150);
    ASSERT_GE(w.truncate_before(100), 1u);
    commit(w, 50);
  }
  const std::vector<std::filesystem::path> both{opts_.archive_dir, opts_.dir};
  for (lsn_t n : {lsn_t{1}, lsn_t{37}, lsn_t{150}, lsn_t{200}}) {
    const auto r = find_record(both, n);
    ASSERT_TRUE(r) << n;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(r->data()), r->size()), record_of(n));
  }
  EXPECT_FALSE(find_record(both, 201));
  // A page damaged near the end: the whole log reads as damaged there, and
  // the records before it are still found.
  const scan_result whole = scan_logs(both);
  ASSERT_FALSE(whole.corruption);
  // The last segment but one that holds records: full, and records follow.
  ASSERT_GE(whole.segment_last_lsn.size(), 3u);
  const std::uint64_t seq = std::prev(whole.segment_last_lsn.end(), 2)->first;
  const lsn_t before = whole.segment_last_lsn.at(seq - 1);
  {
    std::fstream f(opts_.dir / segment_file_name(seq), std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f) << "segment " << seq << " is not in the live log";
    f.seekp(4096 + 100);
    f << std::string(64, 'X');
  }
  ASSERT_TRUE(scan_logs(both).corruption) << "the damage is not before the log's end";
  const auto r = find_record(both, before);
  ASSERT_TRUE(r);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(r->data()), r->size()), record_of(before));
}

// A copy that fails (a full archive disk, an fdatasync error) keeps that
// segment and every later one in the log, says why, leaves no temporary
// file, and the next truncation archives them.
TEST_F(archive_test, ASegmentThatCannotBeArchivedStaysInTheLogUntilItIs) {
  auto ffs = std::make_shared<fault_file_system>();
  opts_.fs = ffs;
  for (const fs_op op : {fs_op::write, fs_op::sync, fs_op::rename, fs_op::sync_directory}) {
    SCOPED_TRACE(to_string(op));
    std::filesystem::remove_all(opts_.dir);
    std::filesystem::remove_all(opts_.archive_dir);
    next_ = 1;
    log w(opts_);
    commit(w, 150);
    // The fault must reach the archive copy, not the background making of
    // the spare segment: wait until the spare is made.
    const auto holding = scan_log(opts_.dir).segment_last_lsn;
    const auto spare = opts_.dir / segment_file_name(holding.rbegin()->first + 1);
    for (int i = 0; i < 2000 && !(std::filesystem::exists(spare) && !std::filesystem::exists(spare.string() + ".tmp"));
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(std::filesystem::exists(spare));
    const auto segments_before = scan_log(opts_.dir).segments;
    ffs->fail_next(op, op == fs_op::write ? ENOSPC : EIO);
    EXPECT_EQ(w.truncate_before(120), 0u) << "a segment was recycled without its copy";
    auto st = w.stats();
    EXPECT_EQ(st.archive_failures, 1u);
    EXPECT_EQ(st.archived_segments, 0u);
    EXPECT_THAT(st.archive_error, HasSubstr(segment_file_name(1)));
    EXPECT_THAT(st.archive_error, HasSubstr("keeps this segment"));
    EXPECT_EQ(scan_log(opts_.dir).segments, segments_before);
    for (const auto& n : archive_names(opts_.archive_dir)) {
      EXPECT_FALSE(n.ends_with(".tmp")) << n << " was left behind";
    }
    EXPECT_FALSE(w.failure()) << "an archive failure failed the log";
    commit(w, 10);  // the log goes on
    EXPECT_GE(w.truncate_before(120), 2u);
    st = w.stats();
    EXPECT_TRUE(st.archive_error.empty()) << st.archive_error;
    EXPECT_GE(st.archived_segments, 2u);
    expect_records({opts_.archive_dir, opts_.dir}, 1, 160, *ffs);
  }
}

// Cuts the power at the n-th file-system step after arm().
class cut_at_step : public forwarding_file_system {
 public:
  explicit cut_at_step(std::shared_ptr<crash_file_system> c) : forwarding_file_system(c), crash_(std::move(c)) {}
  void arm(int n) { left_ = n; }
  int steps_left() const { return left_; }
  file open(const std::filesystem::path& p, const open_options& o) override { return step(), inner_->open(p, o); }
  void write(const file& f, const void* b, std::size_t n, std::uint64_t off) override {
    step();
    inner_->write(f, b, n, off);
  }
  void sync(const file& f, bool data_only) override { step(), inner_->sync(f, data_only); }
  void rename(const std::filesystem::path& a, const std::filesystem::path& b) override { step(), inner_->rename(a, b); }
  void unlink(const std::filesystem::path& p) override { step(), inner_->unlink(p); }
  void sync_directory(const std::filesystem::path& d) override { step(), inner_->sync_directory(d); }

 private:
  void step() {
    if (left_ > 0 && --left_ == 0) crash_->cut_power();
  }
  std::shared_ptr<crash_file_system> crash_;
  std::atomic<int> left_{0};
};

// A power cut at every step of archiving and recycling: afterwards the
// archive and the log together still hold every acknowledged record, the
// log reopens, and its next truncation completes the archive.
TEST_F(archive_test, APowerCutAtAnyStepOfArchivingLosesNoRecord) {
  int cuts = 0;
  for (int step = 1; step < 200; ++step) {
    SCOPED_TRACE("power cut at step " + std::to_string(step));
    std::filesystem::remove_all(opts_.dir);
    std::filesystem::remove_all(opts_.archive_dir);
    auto crash = std::make_shared<crash_file_system>();
    auto fs = std::make_shared<cut_at_step>(crash);
    options o = opts_;
    o.fs = fs;
    o.make_backend = [crash] { return crash->wrap(make_backend("sync")); };
    next_ = 1;
    {
      log w(o);
      commit(w, 150);
      fs->arm(step);
      try {
        w.truncate_before(140);
      } catch (const log_error&) {
        // A recycling rename cut by the power fails the log.
      }
    }
    if (fs->steps_left() > 0) break;  // the truncation took fewer steps: every one was cut
    ++cuts;
    crash->settle(static_cast<std::uint64_t>(step));
    expect_records({o.archive_dir, o.dir}, 1, 150, *posix_file_system());
    for (const auto& n : archive_names(o.archive_dir)) {
      if (n.ends_with(".tmp")) continue;  // a copy the cut interrupted: never read
      const auto a = parse_archive_file_name(n);
      ASSERT_TRUE(a) << n;
      EXPECT_EQ(std::filesystem::file_size(o.archive_dir / n), opts_.segment_bytes) << n << " is not whole";
    }
    {
      options again = opts_;
      log w(again);
      EXPECT_EQ(w.last_lsn(), 150u);
      w.truncate_before(140);
      EXPECT_TRUE(w.stats().archive_error.empty()) << w.stats().archive_error;
    }
    expect_records({opts_.archive_dir, opts_.dir}, 1, 150, *posix_file_system());
  }
  EXPECT_GT(cuts, 15) << "the truncation took too few steps to test";
}

// An archive that lost a file: reading it with the live log names the
// missing segment.
TEST_F(archive_test, AGapInTheArchiveIsNamed) {
  {
    log w(opts_);
    commit(w, 150);
    ASSERT_GE(w.truncate_before(140), 3u);
  }
  const auto names = archive_names(opts_.archive_dir);
  std::filesystem::remove(opts_.archive_dir / names[1]);
  const scan_result r = scan_logs({opts_.archive_dir, opts_.dir});
  ASSERT_TRUE(r.corruption);
  EXPECT_EQ(r.corruption->segment, 2u);
  EXPECT_THAT(r.corruption->what, HasSubstr("segment 2 is missing"));
}

TEST_F(archive_test, TheLogsOwnDirectoryIsRefusedAsItsArchive) {
  opts_.archive_dir = opts_.dir / ".";
  try {
    log w(opts_);
    FAIL() << "the log's own directory was taken as its archive";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("own directory"));
  }
}

}  // namespace
}  // namespace pageio::wal
