// A store's log archive (options::wal_archive): the store records it, so
// every later opening archives there too, whoever opens it; the archive and
// the live log read as one log from the store's first record; turning it
// off forgets it; a damaged record is refused with what to do.
#include <pageio/kv/store.hpp>
#include <pageio/wal/reader.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "support/test_dir.hpp"

namespace pageio::kv {
namespace {

using ::testing::HasSubstr;

class kv_archive_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
    archive_ = dir_->path() / "archive";
  }
  // Small segments, so a few hundred puts fill several.
  options opts() const {
    options o;
    o.dir = dir_->path() / "db";
    o.cache_bytes = 4u << 20;
    o.checkpoint_interval_ms = 0;
    o.wal_segment_bytes = 16 * 4096;
    o.wal_buffer_bytes = 16 * 4096;
    // Every put into its leaf: buffered pairs hold the log back from
    // truncation until the merger has them in their leaves.
    o.write_buffer_bytes = 0;
    return o;
  }
  void put_many(store& db, int from, int n) {
    for (int i = from; i < from + n; ++i) db.put("key" + std::to_string(i), std::string(200, 'v'));
  }
  std::size_t archived_files() const {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(archive_)) {
      if (wal::parse_archive_file_name(e.path().filename().string())) ++n;
    }
    return n;
  }
  std::optional<test::test_dir> dir_;
  std::filesystem::path archive_;
};

// The archive holds every segment the store's checkpoints recycled, and with
// the live log it reads as one log from LSN 1, across reopens by openers
// that never name the archive.
TEST_F(kv_archive_test, EveryOpeningArchivesWhereTheStoreWasToldOnce) {
  {
    options o = opts();
    o.wal_archive = archive_;
    store db(o);
    put_many(db, 0, 400);
    db.checkpoint();
    const statistics st = db.stats();
    EXPECT_EQ(st.wal_archive, std::filesystem::absolute(archive_).lexically_normal().string());
    EXPECT_GT(st.archived_segments, 0u);
    EXPECT_GT(st.archived_lsn, 0u);
    EXPECT_EQ(st.archive_failures, 0u);
  }
  const std::size_t after_first = archived_files();
  EXPECT_GT(after_first, 0u);
  {
    store db(opts());  // no archive named: the store's record says where
    EXPECT_FALSE(db.stats().wal_archive.empty());
    put_many(db, 400, 400);
    db.checkpoint();
  }
  EXPECT_GT(archived_files(), after_first) << "an opener that did not name the archive recycled segments unarchived";
  lsn_t next = 0;
  const wal::scan_result r = wal::scan_logs({archive_, opts().dir / "wal"}, 0, [&](const wal::record_view& v) {
    if (next != 0) {
      EXPECT_EQ(v.lsn, next);
    }
    next = v.lsn + 1;
    return true;
  });
  ASSERT_FALSE(r.corruption) << r.corruption->what;
  EXPECT_EQ(r.first_lsn, 1u) << "the archive and the log do not reach back to the store's first record";
  {
    store db(opts());
    EXPECT_EQ(r.last_lsn, db.stats().last_lsn);
  }
  // Turned off: forgotten, and later openers archive nothing more.
  {
    options o = opts();
    o.wal_archive_off = true;
    store db(o);
    EXPECT_TRUE(db.stats().wal_archive.empty());
  }
  EXPECT_FALSE(std::filesystem::exists(opts().dir / "wal-archive"));
  const std::size_t before = archived_files();
  {
    store db(opts());
    EXPECT_TRUE(db.stats().wal_archive.empty());
    put_many(db, 800, 400);
    db.checkpoint();
  }
  EXPECT_EQ(archived_files(), before);
}

TEST_F(kv_archive_test, ADamagedArchiveRecordIsRefusedWithWhatToDo) {
  {
    options o = opts();
    o.wal_archive = archive_;
    store db(o);
  }
  {
    std::ofstream out(opts().dir / "wal-archive", std::ios::trunc);
    out << "relative/path\n";
  }
  try {
    store db(opts());
    FAIL() << "a store opened with a damaged archive record";
  } catch (const std::system_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("wal-archive"));
    EXPECT_THAT(e.what(), HasSubstr("--wal-archive"));
  }
  options o = opts();
  o.wal_archive = archive_;  // written again
  EXPECT_NO_THROW(store db(o));
  EXPECT_NO_THROW(store db(opts()));
}

}  // namespace
}  // namespace pageio::kv
