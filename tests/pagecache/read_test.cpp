// How misses become reads: fetch_batch sends every miss in one submission,
// adjacent pages merged into one readv, and hands back the pages in the order
// asked; a sequential run reads ahead in readv's of many pages, never past the
// end of the file; a page past the end reads as zeros; fetch_new sets up a
// page the caller overwrites without reading it.
#include <pageio/pagecache/buffer_pool.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <shared_mutex>
#include <vector>

#include "pool_fixture.hpp"

namespace pageio::pagecache::test {
namespace {

class pool_read_test : public pool_test {
 protected:
  options quiet(std::size_t frames) {
    options o = probed_options();
    o.frames = frames;
    o.cleaner_dirty_fraction = 0;
    return o;
  }
};

TEST_P(pool_read_test, FetchBatchSendsEveryMissInOneSubmissionAndKeepsTheOrderAsked) {
  write_file(path("data.dat"), 1, 64);
  buffer_pool pool(quiet(64));
  const file_id f = pool.add_file(path("data.dat"));
  const int fd = pool.fd_of(f);
  { page_ref warm = pool.fetch({f, 30}); }  // one of the batch is a hit
  probe_->clear();
  const pool_stats before = pool.stats();

  // Misses 5 | 10 11 12 13 | 40 41 (three runs); 30 cached; 11 asked twice.
  const std::vector<std::uint64_t> pages{12, 11, 30, 40, 10, 13, 41, 5, 11};
  std::vector<page_id> ids;
  for (const std::uint64_t n : pages) ids.push_back({f, n});
  std::vector<page_ref> got = pool.fetch_batch(ids);
  ASSERT_EQ(got.size(), ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(got[i]) << "result " << i;
    EXPECT_EQ(got[i].id().page, pages[i]) << "result " << i << " is not the page asked there";
    std::shared_lock r(got[i].latch());
    EXPECT_TRUE(page_holds(got[i].data(), 1, pages[i], 0)) << "result " << i;
  }

  std::vector<io_record> reads;
  for (const io_record& r : probe_->records()) {
    if (pageio::test::is_read(r.op)) reads.push_back(r);
  }
  ASSERT_EQ(reads.size(), 3u) << "three runs of adjacent pages, three reads";
  std::sort(reads.begin(), reads.end(), [](const io_record& a, const io_record& b) { return a.offset < b.offset; });
  for (const io_record& r : reads) {
    EXPECT_EQ(r.fd, fd);
    EXPECT_EQ(r.outstanding, 3u) << "the read at " << r.offset << " was not submitted together with the others";
  }
  EXPECT_EQ(reads[0].offset, 5 * page_size);
  EXPECT_EQ(reads[0].bytes, page_size);
  EXPECT_EQ(reads[1].offset, 10 * page_size);
  EXPECT_EQ(reads[1].bytes, 4 * page_size);
  EXPECT_EQ(reads[1].op, op_code::readv);
  EXPECT_EQ(reads[1].iov_count, 4u);
  EXPECT_EQ(reads[2].offset, 40 * page_size);
  EXPECT_EQ(reads[2].bytes, 2 * page_size);

  const pool_stats after = pool.stats();
  EXPECT_EQ(after.reads - before.reads, 3u);
  EXPECT_EQ(after.pages_read - before.pages_read, 7u);
  EXPECT_EQ(after.hits - before.hits, 1u);
  EXPECT_EQ(after.misses - before.misses, 8u);
  EXPECT_EQ(after.waits - before.waits, 1u) << "the second 11 joins the first's read";
}

TEST_P(pool_read_test, FetchBatchOverSeveralFiles) {
  write_file(path("a.dat"), 1, 16);
  write_file(path("b.dat"), 2, 16);
  buffer_pool pool(quiet(32));
  const file_id a = pool.add_file(path("a.dat"));
  const file_id b = pool.add_file(path("b.dat"));
  const std::vector<page_id> ids{{b, 3}, {a, 3}, {b, 4}, {a, 4}, {a, 9}};
  std::vector<page_ref> got = pool.fetch_batch(ids);
  ASSERT_EQ(got.size(), ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    EXPECT_TRUE(got[i].id() == ids[i]);
    EXPECT_TRUE(page_holds(got[i].data(), ids[i].file == a ? 1 : 2, ids[i].page, 0)) << "result " << i;
  }
  EXPECT_EQ(pool.stats().reads, 3u) << "a:3-4, a:9 and b:3-4";
}

TEST_P(pool_read_test, ASequentialRunReadsAheadWithinTheFile) {
  constexpr std::uint64_t pages = 200;
  write_file(path("data.dat"), 1, pages);
  options o = quiet(32);  // smaller than the file: frames are reused
  o.readahead_pages = 16;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  for (std::uint64_t n = 0; n < pages; ++n) {
    page_ref p = pool.fetch({f, n});
    std::shared_lock r(p.latch());
    ASSERT_TRUE(page_holds(p.data(), 1, n, 0)) << "page " << n;
  }
  const pool_stats s = pool.stats();
  EXPECT_GT(s.readahead_pages, 0u);
  EXPECT_LT(s.reads, pages / 4) << "a sequential run of " << pages << " pages took " << s.reads << " reads";
  EXPECT_GE(s.pages_read, pages);
  EXPECT_GT(s.evictions, 0u);
  std::uint32_t widest = 0;
  for (const io_record& r : probe_->records()) {
    if (!pageio::test::is_read(r.op)) continue;
    widest = std::max(widest, r.iov_count);
    EXPECT_LE(r.offset + r.bytes, pages * page_size) << "read ahead past the end of the file";
  }
  EXPECT_EQ(widest, 17u) << "a page and the 16 after it, in one readv";

  // Past the end: zeros, in a frame that held another page before.
  for (const std::uint64_t n : {pages, pages + 50}) {
    page_ref p = pool.fetch({f, n});
    EXPECT_TRUE(all_zero(p.data(), usable_size)) << "page " << n << " lies past the end of the file";
  }
}

// A file cut inside its last page (truncated by hand, or a copy that
// stopped short): the part that is there cannot check, so the page is
// corruption, never half a page handed out; a page wholly past the end is a
// new page.
TEST_P(pool_read_test, ALastPageCutShortIsCorruptionAndAPagePastTheEndIsNew) {
  write_file(path("data.dat"), 1, 11);
  ASSERT_EQ(::truncate(path("data.dat").c_str(), 10 * page_size + 2048), 0);
  options o = quiet(8);
  o.readahead_pages = 0;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  for (std::uint64_t n = 0; n < 10; ++n) pool.fetch({f, n});  // every frame holds a page first
  ASSERT_GT(pool.stats().evictions, 0u);
  EXPECT_THROW(pool.fetch({f, 10}), corruption_error);
  page_ref p = pool.fetch({f, 11});
  EXPECT_TRUE(all_zero(p.data(), usable_size));
  EXPECT_EQ(p.page_lsn(), 0u);
}

TEST_P(pool_read_test, FetchNewSetsUpAPageWithoutReadingItAndLeavesACachedOneAsItIs) {
  write_file(path("data.dat"), 1, 8, /*version=*/3);
  buffer_pool pool(quiet(16));
  const file_id f = pool.add_file(path("data.dat"));
  { page_ref cached = pool.fetch({f, 2}); }
  probe_->clear();
  const pool_stats before = pool.stats();
  {
    // Page 5 is on disk, but the caller overwrites it whole: not read.
    page_ref p = pool.fetch_new({f, 5});
    EXPECT_TRUE(all_zero(p.data(), usable_size));
    EXPECT_EQ(p.page_lsn(), 0u);
    std::unique_lock w(p.latch());
    stamp_page(p.data(), 1, 5, 9);
    p.mark_dirty(1);
  }
  {
    page_ref q = pool.fetch_new({f, 2});  // in the pool: as it is
    std::shared_lock r(q.latch());
    EXPECT_TRUE(page_holds(q.data(), 1, 2, 3));
  }
  {
    page_ref again = pool.fetch({f, 5});  // the new content, not the disk's
    std::shared_lock r(again.latch());
    EXPECT_TRUE(page_holds(again.data(), 1, 5, 9));
  }
  for (const io_record& r : probe_->records()) {
    EXPECT_FALSE(pageio::test::is_read(r.op)) << "a read at " << r.offset;
  }
  const pool_stats after = pool.stats();
  EXPECT_EQ(after.reads, before.reads);
  EXPECT_EQ(after.misses, before.misses);
  EXPECT_EQ(after.new_pages - before.new_pages, 1u);
  // Written back, the page holds the new content on disk.
  pool.flush_all();
  const auto file = read_whole_file(path("data.dat"));
  EXPECT_TRUE(page_holds(on_disk(file, 5), 1, 5, 9));
}

TEST_P(pool_read_test, ABackendThatDoesNotStartFailsThePoolAtOnceNamingIt) {
  for (const bool lone : {false, true}) {
    options o;
    o.backend = lone ? GetParam() : "no-such-backend";
    o.lone_backend = lone ? "no-such-backend" : "sync";
    o.frames = 16;
    o.cleaner_dirty_fraction = 0;
    try {
      buffer_pool pool(o);
      FAIL() << "a pool started with an unknown " << (lone ? "lone_backend" : "backend");
    } catch (const backend_unavailable& e) {
      EXPECT_NE(std::string(e.what()).find("no-such-backend"), std::string::npos) << e.what();
    }
  }
  // Lone requests on the pool's own backend, or on a plain system call: the same pages.
  write_file(path("lone.dat"), 1, 8, 2);
  for (const char* lone : {"", "sync"}) {
    options o;
    o.backend = GetParam();
    o.lone_backend = lone;
    o.frames = 16;
    o.cleaner_dirty_fraction = 0;
    buffer_pool pool(o);
    const file_id f = pool.add_file(path("lone.dat"));
    page_ref p = pool.fetch({f, 3});
    std::shared_lock r(p.latch());
    EXPECT_TRUE(page_holds(p.data(), 1, 3, 2)) << "lone_backend \"" << lone << "\"";
  }
}

PAGECACHE_INSTANTIATE_ON_EVERY_BACKEND(pool_read_test);

// The process's resident memory, in bytes (/proc/self/statm).
std::size_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int got = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return got == 2 ? resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

// A large pool costs memory for the frames it uses, not for all it may use:
// a pool of 262,144 frames (1 GiB of pages, 64 MiB of frame bookkeeping and
// 16 MiB of reader stripes) that has used 100 grew the process by 44 MiB
// here (a huge page of pages, of frames, and of each of the 16 stripe
// arrays, the page-table buckets and the ghost list), where making every
// frame up front grew it by 106 MiB; and opening is the faster for it.
TEST(pool_memory, AFrameCostsMemoryOnlyOnceItIsUsed) {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "a sanitizer's shadow memory counts as resident too";
#endif
  std::string why;
  auto dir = pageio::test::test_dir::create(&why);
  if (!dir) GTEST_SKIP() << why;
  write_file(dir->path() / "m.dat", 1, 100);
  const std::size_t before = resident_bytes();
  if (before == 0) GTEST_SKIP() << "no /proc/self/statm";
  options o;
  o.frames = 262'144;
  o.cleaner_dirty_fraction = 0;
  o.backend = "sync";
  buffer_pool pool(o);
  const file_id f = pool.add_file(dir->path() / "m.dat");
  for (std::uint64_t p = 0; p < 100; ++p) pool.fetch({f, p});
  const std::size_t grown = resident_bytes() - std::min(before, resident_bytes());
  EXPECT_LT(grown, std::size_t{64} << 20) << "resident memory grew by " << (grown >> 20) << " MiB";
}

}  // namespace
}  // namespace pageio::pagecache::test
