// Pages prove themselves on disk: the pool stamps every page it writes with
// a header (its LSN, its page number, a CRC32C; docs/pagecache.md) and
// checks it on every read. A bit flipped on disk is a corruption error naming
// the file, the page and the byte offset, for every fetch that waited for the
// read, and never a page handed out; a page LSN survives the trip to disk.
#include <pageio/pagecache/buffer_pool.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "pool_fixture.hpp"

namespace pageio::pagecache::test {
namespace {

class pool_page_format_test : public pool_test {
 protected:
  options quiet() {
    options o;
    o.backend = backend_name();
    o.frames = 16;
    o.cleaner_dirty_fraction = 0;
    o.readahead_pages = 0;
    return o;
  }
  // Writes version `version` of pages [0, n) through a pool, marked with LSN 100 + page.
  void write_through_pool(const std::filesystem::path& p, std::uint64_t n, std::uint64_t version) {
    buffer_pool pool(quiet());
    const file_id f = pool.add_file(p);
    for (std::uint64_t k = 0; k < n; ++k) {
      page_ref r = pool.fetch({f, k});
      std::unique_lock w(r.latch());
      stamp_page(r.data(), 1, k, version);
      r.mark_dirty(100 + k);
    }
    pool.flush_all();
  }
};

void flip_bit(const std::filesystem::path& p, std::uint64_t offset) {
  const int fd = ::open(p.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  unsigned char b = 0;
  ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(offset)), 1);
  b ^= 0x10;
  ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(offset)), 1);
  ASSERT_EQ(::fsync(fd), 0);
  ::close(fd);
}

TEST_P(pool_page_format_test, APageLsnSurvivesWriteBackAndReadBack) {
  write_through_pool(path("data.dat"), 4, 1);
  buffer_pool pool(quiet());
  const file_id f = pool.add_file(path("data.dat"));
  for (std::uint64_t k = 0; k < 4; ++k) {
    page_ref r = pool.fetch({f, k});
    EXPECT_EQ(r.page_lsn(), 100 + k) << "page " << k;
    EXPECT_TRUE(page_holds(r.data(), 1, k, 1)) << "page " << k;
  }
}

TEST_P(pool_page_format_test, ABitFlippedOnDiskIsReportedAsCorruptionNamingFilePageAndOffset) {
  write_through_pool(path("data.dat"), 4, 1);
  const std::uint64_t at = 2 * page_size + 1000;
  flip_bit(path("data.dat"), at);
  buffer_pool pool(quiet());
  const file_id f = pool.add_file(path("data.dat"));
  for (int attempt = 0; attempt < 2; ++attempt) {  // never cached: the second fetch reads and fails again
    try {
      page_ref r = pool.fetch({f, 2});
      ADD_FAILURE() << "a page with a flipped bit was handed out (attempt " << attempt << ")";
    } catch (const corruption_error& e) {
      EXPECT_EQ(e.code(), pageio::errc::corruption);
      const std::string what = e.what();
      EXPECT_NE(what.find(path("data.dat").string()), std::string::npos) << what;
      EXPECT_NE(what.find("page 2"), std::string::npos) << what;
      EXPECT_NE(what.find(std::to_string(2 * page_size)), std::string::npos) << what;
      EXPECT_NE(what.find("checksum"), std::string::npos) << what;
    }
  }
  EXPECT_TRUE(page_holds(pool.fetch({f, 1}).data(), 1, 1, 1)) << "the pages around it are fine";
  EXPECT_TRUE(page_holds(pool.fetch({f, 3}).data(), 1, 3, 1));
  const page_id ids[] = {{f, 1}, {f, 2}};
  EXPECT_THROW(pool.fetch_batch(ids), corruption_error);
  EXPECT_EQ(pool.stats().corrupt_pages, 3u);
}

std::vector<std::byte> read_bytes(const std::filesystem::path& p) { return read_whole_file(p); }

void write_bytes(const std::filesystem::path& p, const std::byte* data, std::size_t n, std::uint64_t offset) {
  const int fd = ::open(p.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, data, n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
  ASSERT_EQ(::fsync(fd), 0);
  ::close(fd);
}

// The power goes while a batch is being written in place: page 2 is torn
// (its first sector new, the rest old) and page 3 never got there. Opening
// the file repairs page 2 from the double-write area, to its new version;
// page 3 is its old version, which checks. Page 5, damaged but not in the
// area, is still corruption: the area repairs only what it holds.
TEST_P(pool_page_format_test, ATornPageIsRepairedFromTheDoubleWriteAreaWhenTheFileOpens) {
  write_through_pool(path("data.dat"), 8, 1);
  const std::vector<std::byte> v1 = read_bytes(path("data.dat"));
  std::vector<std::byte> area;
  {
    buffer_pool pool(quiet());
    const file_id f = pool.add_file(path("data.dat"));
    for (const std::uint64_t k : {2u, 3u}) {
      page_ref r = pool.fetch({f, k});
      std::unique_lock w(r.latch());
      stamp_page(r.data(), 1, k, 2);
      r.mark_dirty(200 + k);
    }
    pool.flush_all();
    area = read_bytes(path("data.dat.dwb"));  // as a power cut would leave it; a clean close clears it
  }
  ASSERT_GE(area.size(), 3 * page_size) << "the batch's images were not in the double-write area";
  const std::vector<std::byte> v2 = read_bytes(path("data.dat"));
  // The crash's state: the area as it was, page 2 torn at a sector, page 3 old.
  write_bytes(path("data.dat.dwb"), area.data(), area.size(), 0);
  write_bytes(path("data.dat"), v1.data() + 2 * page_size + 512, page_size - 512, 2 * page_size + 512);
  write_bytes(path("data.dat"), v1.data() + 3 * page_size, page_size, 3 * page_size);
  flip_bit(path("data.dat"), 5 * page_size + 700);
  (void)v2;

  buffer_pool pool(quiet());
  const file_id f = pool.add_file(path("data.dat"));
  EXPECT_EQ(pool.stats().pages_repaired, 1u);
  {
    page_ref r = pool.fetch({f, 2});
    EXPECT_TRUE(page_holds(r.data(), 1, 2, 2)) << "page 2 is its new version again";
    EXPECT_EQ(r.page_lsn(), 202u);
    page_ref r3 = pool.fetch({f, 3});
    EXPECT_TRUE(page_holds(r3.data(), 1, 3, 1)) << "page 3 is its old version: it checks, so it is left alone";
    EXPECT_EQ(r3.page_lsn(), 103u);
  }
  EXPECT_THROW(pool.fetch({f, 5}), corruption_error);
  const std::vector<std::byte> cleared = read_bytes(path("data.dat.dwb"));
  ASSERT_GE(cleared.size(), page_size);
  EXPECT_TRUE(all_zero(cleared.data(), page_size)) << "the area's header is cleared once its repairs are durable";
}

// A checkpoint writes its pages in batches of several of the area's slots
// (509 images each): the area holds every page of the batch being written,
// so a page torn anywhere in it is repaired, the first slot's as well as the
// last's. Here 1,200 dirty pages are one batch of three slots; pages 0 and
// 1,199 are torn.
TEST_P(pool_page_format_test, ACheckpointBatchOfSeveralSlotsKeepsEveryPageOfItInTheArea) {
  constexpr std::uint64_t n = 1200;
  write_through_pool(path("data.dat"), n, 1);
  const std::vector<std::byte> v1 = read_bytes(path("data.dat"));
  std::vector<std::byte> area;
  {
    options o = quiet();
    o.frames = 2 * n;
    buffer_pool pool(o);
    const file_id f = pool.add_file(path("data.dat"));
    for (std::uint64_t k = 0; k < n; ++k) {
      page_ref r = pool.fetch({f, k});
      std::unique_lock w(r.latch());
      stamp_page(r.data(), 1, k, 2);
      r.mark_dirty(2000 + k);
    }
    (void)pool.checkpoint();
    area = read_bytes(path("data.dat.dwb"));  // as a power cut would leave it; a clean close clears it
  }
  write_bytes(path("data.dat.dwb"), area.data(), area.size(), 0);
  for (const std::uint64_t k : {std::uint64_t{0}, n - 1}) {
    write_bytes(path("data.dat"), v1.data() + k * page_size + 512, page_size - 512, k * page_size + 512);
  }
  buffer_pool pool(quiet());
  const file_id f = pool.add_file(path("data.dat"));
  EXPECT_EQ(pool.stats().pages_repaired, 2u);
  for (const std::uint64_t k : {std::uint64_t{0}, n / 2, n - 1}) {
    page_ref r = pool.fetch({f, k});
    EXPECT_TRUE(page_holds(r.data(), 1, k, 2)) << "page " << k << " is its new version";
    EXPECT_EQ(r.page_lsn(), 2000 + k);
  }
}

// A batch shorter than the one before it leaves that one's later slots in
// the area: they are not used (a page damaged outside the batch being
// written is reported, never replaced by an older image), and a clean
// close clears every slot's header.
TEST_P(pool_page_format_test, ASlotLeftByAnEarlierLongerBatchRepairsNothing) {
  constexpr std::uint64_t n = 1200;
  write_through_pool(path("data.dat"), n, 1);
  std::vector<std::byte> area;
  options o = quiet();
  o.frames = 2 * n;
  {
    buffer_pool pool(o);
    const file_id f = pool.add_file(path("data.dat"));
    for (std::uint64_t round = 2; round <= 3; ++round) {
      // All pages (three slots), then one full slot's worth: recovery reads
      // on into the second slot, which the earlier batch left.
      for (std::uint64_t k = 0; k < (round == 2 ? n : 509); ++k) {
        page_ref r = pool.fetch({f, k});
        std::unique_lock w(r.latch());
        stamp_page(r.data(), 1, k, round);
        r.mark_dirty(round * 10000 + k);
      }
      (void)pool.checkpoint();
    }
    area = read_bytes(path("data.dat.dwb"));
  }
  const std::vector<std::byte> cleared = read_bytes(path("data.dat.dwb"));
  for (std::size_t slot = 0; slot * 510 * page_size < cleared.size(); ++slot) {
    EXPECT_TRUE(all_zero(cleared.data() + slot * 510 * page_size, page_size)) << "slot " << slot << "'s header";
  }
  ASSERT_GT(area.size(), 2 * 510 * page_size) << "the first checkpoint should have filled three slots";
  write_bytes(path("data.dat.dwb"), area.data(), area.size(), 0);
  flip_bit(path("data.dat"), (n - 1) * page_size + 700);  // in the third slot of the earlier batch only
  buffer_pool pool(quiet());
  const file_id f = pool.add_file(path("data.dat"));
  EXPECT_EQ(pool.stats().pages_repaired, 0u);
  EXPECT_THROW(pool.fetch({f, n - 1}), corruption_error);
  page_ref r = pool.fetch({f, 5});
  EXPECT_TRUE(page_holds(r.data(), 1, 5, 3));
}

// A clean close clears the area: a page damaged afterwards is reported, never
// silently replaced by an old image.
TEST_P(pool_page_format_test, AfterACleanCloseTheDoubleWriteAreaRepairsNothing) {
  write_through_pool(path("data.dat"), 4, 1);
  flip_bit(path("data.dat"), 1 * page_size + 100);
  buffer_pool pool(quiet());
  const file_id f = pool.add_file(path("data.dat"));
  EXPECT_EQ(pool.stats().pages_repaired, 0u);
  EXPECT_THROW(pool.fetch({f, 1}), corruption_error);
}

// Without the area (options::doublewrite = false) no .dwb file is made.
TEST_P(pool_page_format_test, WithoutTheDoubleWriteAreaNoFileIsMadeForIt) {
  options o = quiet();
  o.doublewrite = false;
  {
    buffer_pool pool(o);
    const file_id f = pool.add_file(path("data.dat"));
    page_ref r = pool.fetch({f, 0});
    std::unique_lock w(r.latch());
    stamp_page(r.data(), 1, 0, 1);
    r.mark_dirty(1);
    w.unlock();
    r.reset();
    pool.flush_all();
  }
  EXPECT_FALSE(std::filesystem::exists(path("data.dat.dwb")));
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  EXPECT_TRUE(page_holds(pool.fetch({f, 0}).data(), 1, 0, 1));
}

PAGECACHE_INSTANTIATE_ON_EVERY_BACKEND(pool_page_format_test);

}  // namespace
}  // namespace pageio::pagecache::test
