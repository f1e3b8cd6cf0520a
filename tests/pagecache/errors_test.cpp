// I/O errors reach the caller and leave nothing half-made behind: a failed
// read reaches every thread waiting for that page as io_error naming the file
// and page, the page is not cached and a later fetch reads it afresh; a
// half-read page is never visible; a failed write-back (an error, or a short
// write) leaves its pages dirty until a write succeeds; a backend that cannot start fails the fetch only.
#include <pageio/pagecache/buffer_pool.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <latch>
#include <memory>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "pool_fixture.hpp"
#include "support/scripted_backend.hpp"

namespace pageio::pagecache::test {
namespace {

using namespace std::chrono_literals;

class pool_errors_test : public pool_test {
 protected:
  options quiet(std::size_t frames) {
    options o = probed_options();
    o.frames = frames;
    o.cleaner_dirty_fraction = 0;
    return o;
  }
};

bool covers(const io_request& r, std::uint64_t page) {
  const std::uint64_t len = r.iov != nullptr ? r.iov_count * page_size : r.length;
  return r.offset <= page * page_size && page * page_size < r.offset + len;
}

TEST_P(pool_errors_test, AReadErrorReachesEveryWaiterAndLeavesNothingCached) {
  constexpr int threads = 8;
  constexpr std::uint64_t target = 5;
  write_file(path("data.dat"), 1, 64);
  options o = quiet(32);
  o.readahead_pages = 0;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  const int fd = pool.fd_of(f);

  std::atomic<bool> all_arrived{true}, visible_while_reading{false};
  probe_->set_hook([&](io_request& r) -> int {
    if (pageio::test::is_read(r.op) && covers(r, target)) {
      all_arrived = wait_until([&] { return pool.stats().misses >= threads; }, 20s);
      if (pool.try_fetch({f, target})) visible_while_reading = true;
    }
    return 0;
  });
  fault_options eio;
  eio.read_eio = 1.0;  // the read fails (after the data arrived: the frame holds the page)
  faults_->set(eio);

  std::latch start(threads);
  std::vector<std::string> what(threads);
  std::vector<std::error_code> code(threads);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      start.arrive_and_wait();
      try {
        page_ref p = pool.fetch({f, target});
        what[t] = "(no error)";
      } catch (const io_error& e) {
        what[t] = e.what();
        code[t] = e.code();
      } catch (const std::exception& e) {
        what[t] = std::string("(not io_error) ") + e.what();
      }
    });
  }
  for (auto& t : ts) t.join();
  probe_->set_hook(nullptr);
  EXPECT_TRUE(all_arrived.load()) << "not every thread was waiting when the read failed";
  EXPECT_FALSE(visible_while_reading.load()) << "try_fetch returned the page while it was being read";
  for (int t = 0; t < threads; ++t) {
    EXPECT_EQ(code[t], std::error_code(EIO, std::system_category())) << "thread " << t << ": " << what[t];
    EXPECT_NE(what[t].find(path("data.dat").string()), std::string::npos) << "names the file: " << what[t];
    EXPECT_NE(what[t].find("page 5"), std::string::npos) << "names the page: " << what[t];
  }
  EXPECT_EQ(probe_->count(op_code::read, fd, target * page_size), 1u) << "one read, failed for all";
  EXPECT_EQ(faults_->injected().read_errors, 1u);
  EXPECT_EQ(pool.stats().read_errors, 1u);
  EXPECT_FALSE(pool.try_fetch({f, target})) << "the failed page was left in the pool";

  faults_->off();
  page_ref p = pool.fetch({f, target});
  EXPECT_TRUE(page_holds(p.data(), 1, target, 0));
  EXPECT_EQ(probe_->count(op_code::read, fd, target * page_size), 2u) << "a later fetch reads the page afresh";
}

// A read that fails after scribbling over its buffers (as a half-finished
// transfer would) must not leave any of its pages visible: neither the page
// asked for nor the ones read ahead with it, nor the pages of a batch.
TEST_P(pool_errors_test, AHalfReadPageIsNeverVisible) {
  write_file(path("data.dat"), 1, 64);
  options o = quiet(64);
  o.readahead_pages = 16;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));

  std::atomic<bool> armed{false};
  std::atomic<std::uint32_t> failed_iovs{0};
  probe_->set_hook([&](io_request& r) -> int {
    if (!armed.load() || !pageio::test::is_read(r.op)) return 0;
    if (r.iov != nullptr) {
      for (std::uint32_t k = 0; k < r.iov_count; ++k) std::memset(r.iov[k].iov_base, 0xEE, r.iov[k].iov_len / 2);
      failed_iovs = std::max(failed_iovs.load(), r.iov_count);
    } else {
      std::memset(r.buf, 0xEE, r.length / 2);
    }
    return EIO;
  });

  { page_ref warm = pool.fetch({f, 20}); }
  armed = true;
  EXPECT_THROW(pool.fetch({f, 21}), io_error);  // continues the run: 21 and the pages after it in one readv
  armed = false;
  ASSERT_GT(failed_iovs.load(), 1u) << "the failed read was expected to carry read-ahead pages";
  for (std::uint64_t n = 21; n < 21 + failed_iovs.load(); ++n) {
    EXPECT_FALSE(pool.try_fetch({f, n})) << "page " << n << " of the failed read is visible";
  }
  for (std::uint64_t n = 21; n < 21 + failed_iovs.load(); ++n) {
    page_ref p = pool.fetch({f, n});
    EXPECT_TRUE(page_holds(p.data(), 1, n, 0)) << "page " << n;
  }

  const std::vector<page_id> batch{{f, 50}, {f, 51}, {f, 52}, {f, 60}};
  armed = true;
  EXPECT_THROW(pool.fetch_batch(batch), io_error);
  armed = false;
  for (const page_id& id : batch) EXPECT_FALSE(pool.try_fetch(id)) << "page " << id.page << " of the failed batch";
  std::vector<page_ref> got = pool.fetch_batch(batch);
  ASSERT_EQ(got.size(), batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) EXPECT_TRUE(page_holds(got[i].data(), 1, batch[i].page, 0));
}

TEST_P(pool_errors_test, AFailedWriteBackLeavesThePagesDirtyUntilAWriteSucceeds) {
  write_file(path("data.dat"), 1, 32);
  buffer_pool pool(quiet(32));
  const file_id f = pool.add_file(path("data.dat"));
  lsn_t lsn = 0;
  for (const std::uint64_t n : {3u, 4u, 10u}) {
    page_ref p = pool.fetch({f, n});
    std::unique_lock w(p.latch());
    stamp_page(p.data(), 1, n, 1, ++lsn);
    p.mark_dirty(lsn);
  }
  ASSERT_EQ(pool.stats().dirty, 3u);
  auto all_dirty = [&] {
    for (const std::uint64_t n : {3u, 4u, 10u}) {
      page_ref p = pool.try_fetch({f, n});
      if (!p) return ::testing::AssertionFailure() << "page " << n << " left the pool while dirty";
      if (!p.dirty()) return ::testing::AssertionFailure() << "page " << n << " is not dirty";
    }
    return ::testing::AssertionSuccess();
  };

  fault_options full;
  full.write_enospc = 1.0;
  faults_->set(full);
  try {
    pool.flush_all();
    ADD_FAILURE() << "flush_all() succeeded with every write failing";
  } catch (const io_error& e) {
    EXPECT_EQ(e.code(), std::error_code(ENOSPC, std::system_category())) << e.what();
    EXPECT_NE(std::string(e.what()).find(path("data.dat").string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("page 3"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(all_dirty());
  EXPECT_EQ(pool.stats().dirty, 3u);
  EXPECT_GE(pool.stats().write_errors, 3u);
  EXPECT_EQ(pool.oldest_dirty_lsn(), 1u);

  fault_options eio;
  eio.write_eio = 1.0;
  faults_->set(eio);
  try {
    pool.clean(10);
    ADD_FAILURE() << "clean() succeeded with every write failing";
  } catch (const io_error& e) {
    EXPECT_EQ(e.code(), std::error_code(EIO, std::system_category())) << e.what();
  }
  EXPECT_TRUE(all_dirty());
  EXPECT_EQ(pool.stats().dirty, 3u);

  faults_->off();
  pool.flush_all();
  EXPECT_EQ(pool.stats().dirty, 0u);
  EXPECT_EQ(pool.oldest_dirty_lsn(), std::nullopt);
  const std::vector<std::byte> disk = read_whole_file(path("data.dat"));
  for (std::uint64_t n = 0; n < 32; ++n) {
    const std::uint64_t v = n == 3 || n == 4 || n == 10 ? 1 : 0;
    EXPECT_TRUE(page_holds(on_disk(disk, n), 1, n, v)) << "page " << n << " on disk";
  }
}

// A write-back whose completion says fewer bytes than asked (here: none)
// did not write the pages: it fails like an error result, the pages stay
// dirty, and neither clean() nor flush_all() reports success.
TEST_P(pool_errors_test, AShortWriteBackIsAnErrorAndLeavesThePagesDirty) {
  write_file(path("data.dat"), 1, 32);
  auto scripts = std::make_shared<std::vector<pageio::test::scripted_backend*>>();
  auto short_writes = std::make_shared<std::atomic<bool>>(true);
  options o = quiet(32);
  o.doublewrite = false;  // the writes in place come short (a short write to the area: the test above)
  o.make_backend = [this, scripts, short_writes]() -> std::unique_ptr<io_backend> {
    auto b = std::make_unique<pageio::test::scripted_backend>(make_plain_backend());
    if (short_writes->load()) {
      // Every write round of this lane's first ten completes with 0 bytes.
      for (unsigned n = 1; n <= 10; ++n) b->on_write(n, std::chrono::microseconds(0), 0);
    }
    scripts->push_back(b.get());
    return b;
  };
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  lsn_t lsn = 0;
  for (const std::uint64_t n : {3u, 4u, 10u}) {
    page_ref p = pool.fetch({f, n});
    std::unique_lock w(p.latch());
    stamp_page(p.data(), 1, n, 1, ++lsn);
    p.mark_dirty(lsn);
  }
  ASSERT_EQ(pool.stats().dirty, 3u);
  auto all_dirty = [&] {
    for (const std::uint64_t n : {3u, 4u, 10u}) {
      page_ref p = pool.try_fetch({f, n});
      if (!p) return ::testing::AssertionFailure() << "page " << n << " left the pool while dirty";
      if (!p.dirty()) return ::testing::AssertionFailure() << "page " << n << " is not dirty";
    }
    return ::testing::AssertionSuccess();
  };

  try {
    pool.flush_all();
    ADD_FAILURE() << "flush_all() succeeded with every write transferring nothing";
  } catch (const io_error& e) {
    EXPECT_EQ(e.code(), std::error_code(EIO, std::system_category())) << e.what();
    EXPECT_NE(std::string(e.what()).find(path("data.dat").string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("page 3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("short write"), std::string::npos) << e.what();
  }
  unsigned writes_seen = 0;
  for (auto* b : *scripts) writes_seen += b->writes_seen();
  EXPECT_GE(writes_seen, 2u) << "the write-back was expected to reach the backend";
  EXPECT_TRUE(all_dirty());
  EXPECT_EQ(pool.stats().dirty, 3u);
  EXPECT_GE(pool.stats().write_errors, 3u);
  EXPECT_EQ(pool.stats().pages_written, 0u);
  EXPECT_EQ(pool.oldest_dirty_lsn(), 1u);

  try {
    pool.clean(10);
    ADD_FAILURE() << "clean() succeeded with every write transferring nothing";
  } catch (const io_error& e) {
    EXPECT_EQ(e.code(), std::error_code(EIO, std::system_category())) << e.what();
  }
  EXPECT_TRUE(all_dirty());
  EXPECT_EQ(pool.stats().dirty, 3u);

  // Writes complete in full again: the pages go out.
  for (auto* b : *scripts) {
    for (unsigned n = 1; n <= 10; ++n) b->on_write(n, std::chrono::microseconds(0), std::nullopt);
  }
  short_writes->store(false);
  pool.flush_all();
  EXPECT_EQ(pool.stats().dirty, 0u);
  EXPECT_EQ(pool.oldest_dirty_lsn(), std::nullopt);
  const std::vector<std::byte> disk = read_whole_file(path("data.dat"));
  for (std::uint64_t n = 0; n < 32; ++n) {
    const std::uint64_t v = n == 3 || n == 4 || n == 10 ? 1 : 0;
    EXPECT_TRUE(page_holds(on_disk(disk, n), 1, n, v)) << "page " << n << " on disk";
  }
}

TEST_P(pool_errors_test, AFailedFdatasyncFailsTheCheckpoint) {
  write_file(path("data.dat"), 1, 8);
  buffer_pool pool(quiet(16));
  const file_id f = pool.add_file(path("data.dat"));
  {
    page_ref p = pool.fetch({f, 2});
    std::unique_lock w(p.latch());
    stamp_page(p.data(), 1, 2, 1, 1);
    p.mark_dirty(1);
  }
  fault_options o;
  o.flush_eio = 1.0;
  faults_->set(o);
  try {
    pool.flush_all();
    ADD_FAILURE() << "flush_all() returned although its fdatasync failed";
  } catch (const io_error& e) {
    EXPECT_EQ(e.code(), std::error_code(EIO, std::system_category())) << e.what();
    EXPECT_NE(std::string(e.what()).find("fdatasync"), std::string::npos) << e.what();
  }
  EXPECT_EQ(faults_->injected().flush_errors, 1u);
}

// The pool builds a backend for a thread when it first needs one; building
// it can fail (aio-max-nr exhausted, io_uring refused). That fetch fails; the
// page must not be left half-made for the next one.
TEST_P(pool_errors_test, ABackendThatCannotStartFailsOnlyThatFetch) {
  write_file(path("data.dat"), 1, 8);
  auto attempts = std::make_shared<std::atomic<int>>(0);
  options o;
  o.frames = 16;
  o.cleaner_dirty_fraction = 0;
  o.make_backend = [name = backend_name(), attempts]() -> std::unique_ptr<io_backend> {
    if ((*attempts)++ == 0) {
      throw backend_unavailable(std::make_error_code(std::errc::resource_unavailable_try_again),
                                "test: the first backend cannot start");
    }
    return make_backend(name);
  };
  auto pool = std::make_shared<buffer_pool>(o);  // on the heap: a fetch that never returns still uses it
  const file_id f = pool->add_file(path("data.dat"));
  EXPECT_THROW(pool->fetch({f, 3}), std::exception);
  auto ok = std::make_shared<std::atomic<bool>>(false);
  const bool returned = returns_within(
      [pool, ok, f] {
        page_ref p = pool->fetch({f, 3});
        ok->store(static_cast<bool>(page_holds(p.data(), 1, 3, 0)));
      },
      5s);
  ASSERT_TRUE(returned) << "after the failed fetch, fetching the same page never returned";
  EXPECT_TRUE(ok->load());
}

// PostgreSQL's fsyncgate: after a failed fdatasync, the pages it was to
// cover may be lost, and a later fdatasync that succeeds says nothing about
// them. Before the fix the next flush_all() reissued the fdatasync and
// reported success, though the pages had been marked clean and were never
// written again. The file stays failed: every later checkpoint says so, and
// the log is never released for the pages it held.
TEST_P(pool_errors_test, AFailedFdatasyncIsNeverRetriedIntoSuccess) {
  write_file(path("data.dat"), 1, 8);
  buffer_pool pool(quiet(16));
  const file_id f = pool.add_file(path("data.dat"));
  {
    page_ref p = pool.fetch({f, 2});
    std::unique_lock w(p.latch());
    stamp_page(p.data(), 1, 2, 1, 7);
    p.mark_dirty(7);
  }
  fault_options o;
  o.flush_eio = 1.0;
  faults_->set(o);
  EXPECT_THROW(pool.flush_all(), io_error);
  faults_->off();
  try {
    pool.flush_all();
    ADD_FAILURE() << "a checkpoint after the failed fdatasync succeeded: the pages it covered were never written again";
  } catch (const io_error& e) {
    EXPECT_NE(std::string(e.what()).find(path("data.dat").string()), std::string::npos) << e.what();
  }
  ASSERT_TRUE(pool.oldest_dirty_lsn().has_value()) << "the log may be truncated past a change that is not durable";
  EXPECT_LE(*pool.oldest_dirty_lsn(), 7u);
}

// With the double-write area, a write in place that fails may have torn its
// pages on disk, and only the area holds their images: the file fails (it is
// never written again, so the area is never overwritten), the area is kept
// when the pool closes, and the next open checks the pages against it.
// Before, the pages were retried and the next batch overwrote the area first.
TEST_P(pool_errors_test, AFailedWriteInPlaceFailsTheFileAndKeepsItsDoubleWriteArea) {
  write_file(path("data.dat"), 1, 8);
  {
    buffer_pool pool(quiet(16));
    const file_id f = pool.add_file(path("data.dat"));
    const int fd = pool.fd_of(f);
    {
      page_ref p = pool.fetch({f, 3});
      std::unique_lock w(p.latch());
      stamp_page(p.data(), 1, 3, 1, 5);
      p.mark_dirty(5);
    }
    probe_->set_hook([fd](io_request& r) { return pageio::test::is_write(r.op) && r.fd == fd ? EIO : 0; });
    try {
      pool.flush_all();
      ADD_FAILURE() << "flush_all() succeeded though the write in place failed";
    } catch (const io_error& e) {
      EXPECT_NE(std::string(e.what()).find("page 3"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(".dwb"), std::string::npos) << e.what();
    }
    probe_->set_hook({});
    EXPECT_THROW(pool.flush_all(), io_error) << "the file stays failed";
    EXPECT_EQ(pool.stats().failed_files, 1u);
    EXPECT_EQ(pool.oldest_dirty_lsn(), 5u);
  }
  const std::vector<std::byte> area = read_whole_file(path("data.dat.dwb"));
  ASSERT_GE(area.size(), 2 * page_size);
  EXPECT_FALSE(all_zero(area.data(), page_size)) << "the area of a failed file is kept at close";
  buffer_pool pool(quiet(16));
  const file_id f = pool.add_file(path("data.dat"));
  EXPECT_TRUE(page_holds(pool.fetch({f, 3}).data(), 1, 3, 0)) << "the write never ran: the old version checks";
}

// page * 4096 must not wrap: 2^52 * 4096 is 2^64, which wrapped to offset 0,
// so the fetch read page 0 and a write-back would have overwritten it.
TEST_P(pool_errors_test, APageNumberPastTheLargestFileOffsetIsRefused) {
  write_file(path("data.dat"), 1, 4);
  buffer_pool pool(quiet(16));
  const file_id f = pool.add_file(path("data.dat"));
  for (const std::uint64_t n : {std::uint64_t{1} << 52, (std::uint64_t{1} << 52) + 1, ~std::uint64_t{0},
                                std::uint64_t{1} << 51}) {
    EXPECT_THROW(pool.fetch({f, n}), std::out_of_range) << "page " << n;
    const page_id ids[] = {{f, 1}, {f, n}};
    EXPECT_THROW(pool.fetch_batch(ids), std::out_of_range) << "page " << n;
    EXPECT_FALSE(pool.try_fetch({f, n})) << "page " << n;
  }
  page_ref p = pool.fetch({f, 1});
  EXPECT_TRUE(page_holds(p.data(), 1, 1, 0));
  EXPECT_EQ(pool.stats().dirty, 0u);
}

// A file id add_file never returned is refused, leaves no frame pinned or
// loading behind, and the pool goes on working.
TEST_P(pool_errors_test, AnUnknownFileIdIsRefusedAndLeavesThePoolUsable) {
  write_file(path("data.dat"), 1, 32);
  options o = quiet(16);
  o.pin_wait = 200ms;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  for (int i = 0; i < 40; ++i) {  // more than the frames: a leaked frame would show
    EXPECT_THROW(pool.fetch({f + 1, static_cast<std::uint64_t>(i)}), std::out_of_range);
    const page_id ids[] = {{f, 0}, {f + 7, 3}};
    EXPECT_THROW(pool.fetch_batch(ids), std::out_of_range);
  }
  std::vector<page_id> all;
  for (std::uint64_t n = 0; n < 16; ++n) all.push_back({f, n});
  std::vector<page_ref> held = pool.fetch_batch(all);  // every frame at once
  for (std::uint64_t n = 0; n < 16; ++n) EXPECT_TRUE(page_holds(held[n].data(), 1, n, 0)) << n;
}

PAGECACHE_INSTANTIATE_ON_EVERY_BACKEND(pool_errors_test);

}  // namespace
}  // namespace pageio::pagecache::test
