// Which pages the pool keeps and when it runs out of frames: a hot set
// survives a long sequential scan under S3-FIFO (and not under plain CLOCK);
// a fetch with every frame pinned fails with pool_exhausted after
// options::pin_wait instead of hanging, and succeeds once a pin is released;
// it waits out a slow write-back's I/O, but not a checkpoint that waits for
// a latch the fetching side holds;
// frames that can be evicted are always found; a batch that runs out of
// frames leaves nothing stuck; fetching while holding a latch cannot hang;
// the cleaner writes the pages an eviction would take next, not hot ones.
#include <pageio/pagecache/buffer_pool.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pool_fixture.hpp"

namespace pageio::pagecache::test {
namespace {

using namespace std::chrono_literals;

class pool_eviction_test : public pool_test {
 protected:
  options base(std::size_t frames) const {
    options o;
    o.backend = backend_name();
    o.frames = frames;
    o.cleaner_dirty_fraction = 0;  // no cleaner thread: only the test writes pages back
    return o;
  }

  // A pool of 8 frames (no cleaner, no read-ahead) over `name`, 64 pages,
  // every frame holding one of pages 0-7 changed to version 1 and dirty. On
  // the heap: a fetch that never returned would still use it.
  std::shared_ptr<buffer_pool> pool_of_dirty_frames(const std::string& name, options o, file_id& f) {
    write_file(path(name), 1, 64);
    o.frames = 8;
    o.cleaner_dirty_fraction = 0;
    o.readahead_pages = 0;
    auto pool = std::make_shared<buffer_pool>(o);
    f = pool->add_file(path(name));
    for (std::uint64_t p = 0; p < 8; ++p) {
      page_ref r = pool->fetch({f, p});
      std::unique_lock w(r.latch());
      stamp_page(r.data(), 1, p, 1);
      r.mark_dirty(1);
    }
    return pool;
  }

  // With probed_options(): holds each write the pool sends (only the first,
  // with `first_only`) for `hold` before it runs. Returns the count of
  // writes seen.
  std::shared_ptr<std::atomic<int>> hold_writes(std::chrono::milliseconds hold, bool first_only) {
    auto writes = std::make_shared<std::atomic<int>>(0);
    probe_->set_hook([writes, hold, first_only](io_request& r) {
      if (pageio::test::is_write(r.op) && (writes->fetch_add(1) == 0 || !first_only)) std::this_thread::sleep_for(hold);
      return 0;
    });
    return writes;
  }

  // Warms `hot` pages (each fetched four times) in a pool of `frames`, then
  // fetches `scan` other pages once each in order; returns how many hot pages
  // try_fetch() still finds.
  std::size_t hot_pages_left_after_scan(eviction_policy policy, std::size_t readahead, std::size_t frames,
                                        std::uint64_t hot, std::uint64_t scan) {
    const std::string name = "scan-" + std::to_string(static_cast<int>(policy)) + "-" + std::to_string(readahead);
    write_file(path(name), 1, hot + scan);
    options o = base(frames);
    o.policy = policy;
    o.readahead_pages = readahead;
    buffer_pool pool(o);
    const file_id f = pool.add_file(path(name));
    for (int round = 0; round < 4; ++round) {
      for (std::uint64_t p = 0; p < hot; ++p) {
        page_ref r = pool.fetch({f, p});
        EXPECT_TRUE(page_holds(r.data(), 1, p, 0));
      }
    }
    for (std::uint64_t p = 0; p < hot; ++p) {
      EXPECT_TRUE(pool.try_fetch({f, p})) << "hot page " << p << " not resident after warming";
    }
    const std::uint64_t evictions_before = pool.stats().evictions;
    for (std::uint64_t p = hot; p < hot + scan; ++p) {
      page_ref r = pool.fetch({f, p});
      EXPECT_TRUE(page_holds(r.data(), 1, p, 0));
    }
    EXPECT_GE(pool.stats().evictions - evictions_before, scan - frames) << "the scan must have evicted";
    std::size_t left = 0;
    for (std::uint64_t p = 0; p < hot; ++p) left += pool.try_fetch({f, p}) ? 1 : 0;
    return left;
  }
};

// 80 hot pages in 100 frames, then a scan of 1000 pages (10x the pool) with
// no hot access in between. S3-FIFO sends pages seen once through its small
// FIFO and out: the hot set must stay (we ask for 90%, 72 of 80).
TEST_P(pool_eviction_test, S3FifoKeepsTheHotSetThroughALongScan) {
  const std::size_t left = hot_pages_left_after_scan(eviction_policy::s3fifo, 0, 100, 80, 1000);
  std::printf("[          ] s3fifo, no read-ahead: %zu of 80 hot pages still resident after the scan\n", left);
  EXPECT_GE(left, 72u);
}

// The same with read-ahead at its default: a sequential scan is exactly when
// read-ahead runs, and a page read ahead and then fetched once is still a
// page used once.
TEST_P(pool_eviction_test, S3FifoKeepsTheHotSetThroughALongScanWithReadAhead) {
  const std::size_t readahead = options{}.readahead_pages;
  ASSERT_GT(readahead, 0u);
  const std::size_t left = hot_pages_left_after_scan(eviction_policy::s3fifo, readahead, 100, 80, 1000);
  std::printf("[          ] s3fifo, read-ahead %zu: %zu of 80 hot pages still resident after the scan\n", readahead,
              left);
  EXPECT_GE(left, 72u);
}

// The contrast: one CLOCK over every frame gives the scan pages the same
// standing as the hot ones, and a scan ten times the pool flushes them.
TEST_P(pool_eviction_test, ClockLosesTheHotSetToALongScan) {
  const std::size_t s3 = hot_pages_left_after_scan(eviction_policy::s3fifo, 0, 100, 80, 1000);
  const std::size_t clock = hot_pages_left_after_scan(eviction_policy::clock, 0, 100, 80, 1000);
  std::printf("[          ] hot pages left of 80 after the scan: s3fifo %zu, clock %zu\n", s3, clock);
  EXPECT_LT(clock, 8u) << "CLOCK was expected to lose (nearly) all of the hot set";
  EXPECT_LT(clock, s3);
}

// Every frame pinned: a fetch gives up after pin_wait with pool_exhausted,
// saying so, rather than hanging; one pin released, it succeeds.
TEST_P(pool_eviction_test, AFetchWithEveryFramePinnedThrowsPoolExhaustedThenSucceeds) {
  write_file(path("pinned.dat"), 1, 64);
  options o = base(8);
  o.pin_wait = 50ms;
  o.readahead_pages = 0;
  // On the heap: a fetch that never returned would still be using it.
  auto pool = std::make_shared<buffer_pool>(o);
  const file_id f = pool->add_file(path("pinned.dat"));
  std::vector<page_ref> held;
  for (std::uint64_t p = 0; p < 8; ++p) held.push_back(pool->fetch({f, p * 3}));
  auto message = std::make_shared<std::string>();
  const bool returned = returns_within(
      [pool, message, f] {
        try {
          pool->fetch({f, 40});
          *message = "(no exception)";
        } catch (const pool_exhausted& e) {
          *message = e.code() == pageio::errc::pool_exhausted ? e.what() : "(not errc::pool_exhausted)";
        }
      },
      10s);
  ASSERT_TRUE(returned) << "a fetch with every frame pinned never returned (pin_wait is 50 ms)";
  EXPECT_NE(message->find("8 frames"), std::string::npos) << *message;
  EXPECT_NE(message->find("pinned"), std::string::npos) << *message;
  EXPECT_NE(message->find("50 ms"), std::string::npos) << *message;

  held.pop_back();  // one frame free to evict
  page_ref p = pool->fetch({f, 40});
  EXPECT_TRUE(page_holds(p.data(), 1, 40, 0));
  p.reset();
  for (const page_ref& h : held) EXPECT_TRUE(page_holds(h.data(), 1, h.id().page, 0)) << "a pinned page moved";
}

// A fetch that starts waiting for a frame gets one as soon as a pin goes.
TEST_P(pool_eviction_test, AWaitingFetchGetsTheFrameAPinReleases) {
  write_file(path("wait.dat"), 1, 64);
  options o = base(8);
  o.pin_wait = 20s;
  o.readahead_pages = 0;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("wait.dat"));
  std::vector<page_ref> held;
  for (std::uint64_t p = 0; p < 8; ++p) held.push_back(pool.fetch({f, p}));
  std::thread releaser([&] {
    std::this_thread::sleep_for(100ms);
    held[3].reset();
  });
  page_ref p;
  EXPECT_NO_THROW(p = pool.fetch({f, 50}));
  releaser.join();
  ASSERT_TRUE(p);
  EXPECT_TRUE(page_holds(p.data(), 1, 50, 0));
  EXPECT_FALSE(pool.try_fetch({f, 3})) << "the released page is the one that had to go";
}

// Every frame is dirty and a checkpoint is writing them back on a slow disk
// (each write takes three times pin_wait, as a device's stall of a few
// seconds does against the default). A fetch meanwhile waits for the
// write-back to free frames; it is no caller holding too many pages, so
// pool_exhausted (whose message says so) would be wrong, and in the
// key-value store it failed a put.
TEST_P(pool_eviction_test, AFetchWaitsOutASlowWriteBackInsteadOfThrowingPoolExhausted) {
  options o = probed_options();
  o.pin_wait = 100ms;
  file_id f = 0;
  auto pool = pool_of_dirty_frames("slow.dat", o, f);
  const auto writes = hold_writes(300ms, false);
  std::thread checkpoint([pool] { pool->flush_all(); });
  ASSERT_TRUE(wait_until([&] { return writes->load() > 0; }, 10s)) << "the checkpoint wrote nothing";
  auto message = std::make_shared<std::string>();
  const bool returned = returns_within(
      [pool, message, f] {
        try {
          page_ref p = pool->fetch({f, 40});
          *message = page_holds(p.data(), 1, 40, 0) ? "" : "page 40 read wrong";
        } catch (const std::exception& e) {
          *message = e.what();
        }
      },
      30s);
  checkpoint.join();
  probe_->set_hook(nullptr);
  ASSERT_TRUE(returned) << "a fetch during a slow write-back never returned";
  EXPECT_EQ(*message, "") << "while the checkpoint's writes were under way";
  EXPECT_EQ(pool->stats().dirty, 0u);
  const auto file = read_whole_file(path("slow.dat"));
  for (std::uint64_t p = 0; p < 8; ++p) EXPECT_TRUE(page_holds(on_disk(file, p), 1, p, 1)) << "page " << p;
}

// But not for ever: a write that does not complete within
// stall_wait_factor x pin_wait (a stalled disk) ends the wait with
// pool_exhausted, and the message says that write-backs held the frames.
TEST_P(pool_eviction_test, AFetchGivesUpOnAStalledWriteBackSayingSo) {
  options o = probed_options();
  o.pin_wait = 20ms;  // the limit: 15 x 20 ms = 300 ms
  file_id f = 0;
  auto pool = pool_of_dirty_frames("stalled.dat", o, f);
  const auto writes = hold_writes(1500ms, true);
  std::thread checkpoint([pool] { pool->flush_all(); });
  ASSERT_TRUE(wait_until([&] { return writes->load() > 0; }, 10s)) << "the checkpoint wrote nothing";
  const auto t0 = std::chrono::steady_clock::now();
  std::string message;
  try {
    pool->fetch({f, 40});
    message = "(a page)";
  } catch (const pool_exhausted& e) {
    message = e.what();
  }
  const auto waited = std::chrono::steady_clock::now() - t0;
  checkpoint.join();
  probe_->set_hook(nullptr);
  EXPECT_NE(message.find("write-backs held frames"), std::string::npos) << message;
  EXPECT_NE(message.find("stalled"), std::string::npos) << message;
  EXPECT_GE(waited, 250ms) << "gave up before stall_wait_factor x pin_wait";
  EXPECT_LT(waited, 1300ms) << "waited for the stalled write (1.5 s) rather than giving up at 300 ms";
  EXPECT_EQ(pool->stats().dirty, 0u) << "the checkpoint finished once the write completed";
}

// The other side of the test above: a checkpoint that holds every frame
// while it waits for a page's latch is not waited out, when the thread
// holding that latch is the one fetching. Its fetch gives up after pin_wait
// (pool_exhausted), it lets the latch go, and the checkpoint finishes.
TEST_P(pool_eviction_test, AFetchDoesNotWaitForACheckpointThatWaitsForItsLatch) {
  options o = base(8);
  o.pin_wait = 100ms;
  file_id f = 0;
  auto pool = pool_of_dirty_frames("coupled.dat", o, f);
  auto held = std::make_shared<page_ref>(pool->fetch({f, 0}));
  auto latch = std::make_shared<std::unique_lock<page_latch>>(held->latch());
  std::thread checkpoint([pool] { pool->flush_all(); });
  std::this_thread::sleep_for(300ms);  // it has pinned the dirty pages and waits for page 0's latch
  auto outcome = std::make_shared<std::string>();
  const bool returned = returns_within(
      [pool, outcome, f] {
        try {
          pool->fetch({f, 40});
          *outcome = "a page";
        } catch (const pool_exhausted&) {
          *outcome = "pool_exhausted";
        }
      },
      20s);
  if (!returned) {
    keep_forever(held);
    keep_forever(latch);
    checkpoint.detach();
    FAIL() << "the fetch waited for a checkpoint that waits for the latch the fetching thread holds";
  }
  latch->unlock();
  held->reset();
  checkpoint.join();
  EXPECT_TRUE(*outcome == "pool_exhausted" || *outcome == "a page") << *outcome;
  EXPECT_EQ(pool->stats().dirty, 0u);
}

// Pages that were just read and are still pinned sit in S3-FIFO's small
// queue. Once it holds more of them than its share (10% of the frames), a
// fetch must still find the unpinned, clean pages of the main queue.
TEST_P(pool_eviction_test, PinnedNewPagesDoNotHideTheEvictableOnes) {
  write_file(path("hidden.dat"), 1, 64);
  options o = base(10);  // the small queue's share: 1 frame
  o.pin_wait = 200ms;
  o.readahead_pages = 0;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("hidden.dat"));
  for (int round = 0; round < 2; ++round) {  // used twice: bound for the main queue
    for (std::uint64_t p = 0; p < 8; ++p) pool.fetch({f, p});
  }
  std::vector<page_ref> held;
  held.push_back(pool.fetch({f, 20}));
  held.push_back(pool.fetch({f, 21}));  // two new pages pinned; 8 clean, unpinned frames
  page_ref p;
  try {
    p = pool.fetch({f, 30});
  } catch (const pool_exhausted& e) {
    FAIL() << "8 of 10 frames were clean and unpinned, yet: " << e.what();
  }
  EXPECT_TRUE(page_holds(p.data(), 1, 30, 0));
  EXPECT_GT(pool.stats().evictions, 0u);
}

// fetch_batch takes a frame for each miss before reading any of them. When
// it runs out of frames part-way, the pages it had taken frames for must not
// stay behind half-made: the pool is as usable afterwards as before.
TEST_P(pool_eviction_test, ABatchThatRunsOutOfFramesLeavesThePoolUsable) {
  write_file(path("batch.dat"), 1, 64);
  options o = base(8);
  o.pin_wait = 50ms;
  o.readahead_pages = 0;
  auto pool = std::make_shared<buffer_pool>(o);  // on the heap: see below
  const file_id f = pool->add_file(path("batch.dat"));
  std::vector<page_id> ids;
  for (std::uint64_t p = 0; p < 9; ++p) ids.push_back({f, p * 2});  // one more than there are frames
  EXPECT_THROW(pool->fetch_batch(ids), pool_exhausted);
  // Nothing is pinned now: every frame can be had.
  std::vector<page_ref> held;
  try {
    for (std::uint64_t p = 0; p < 8; ++p) held.push_back(pool->fetch({f, 40 + p}));
  } catch (const pool_exhausted& e) {
    FAIL() << "after the failed batch released its pins, only " << held.size()
           << " of 8 frames could be had: " << e.what();
  }
  held.clear();
  // And a page the batch asked for reads normally (not stuck as loading).
  auto ok = std::make_shared<std::atomic<bool>>(false);
  const bool returned = returns_within(
      [pool, ok, f] {
        page_ref p = pool->fetch({f, 0});
        ok->store(static_cast<bool>(page_holds(p.data(), 1, 0, 0)));
      },
      10s);
  ASSERT_TRUE(returned) << "fetching a page the failed batch had asked for never returned";
  EXPECT_TRUE(ok->load());
}

// A thread that changed a page and still holds its exclusive latch fetches
// another page (latch coupling, as a B-tree split does) in a pool whose every
// other frame is dirty. The pool has to write pages back to free a frame; it
// must not wait for the latch the caller holds. Returning the page or
// throwing pool_exhausted are both fine; hanging is not.
TEST_P(pool_eviction_test, TheCleanerWritesPagesNotInUseAndLeavesHotOnesDirty) {
  write_file(path("clean.dat"), 1, 72);
  options o = probed_options();
  o.frames = 64;
  o.cleaner_dirty_fraction = 0.25;  // more than 16 dirty pages wake it; it cleans down to 8
  o.write_batch = 8;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("clean.dat"));
  const int fd = pool.fd_of(f);
  // Pages 32-71 fill 40 frames first, once each (without them no frame
  // would have to be evicted: nothing to clean ahead of); pages 0-11 are
  // in use (fetched again and again); 20-31 are fetched once.
  for (std::uint64_t p = 32; p < 72; ++p) pool.fetch({f, p});
  for (int round = 0; round < 3; ++round) {
    for (std::uint64_t p = 0; p < 12; ++p) pool.fetch({f, p});
  }
  probe_->clear();
  for (std::uint64_t p = 0; p < 12; ++p) {
    page_ref r = pool.fetch({f, p});
    std::unique_lock w(r.latch());
    stamp_page(r.data(), 1, p, 1);
    r.mark_dirty(1);
  }
  {
    // The cold pages are dirtied together, under their latches (which the
    // cleaner passes over), so that it finds them all at once afterwards.
    std::vector<page_ref> cold;
    std::vector<std::unique_lock<page_latch>> held;
    for (std::uint64_t p = 20; p < 32; ++p) {
      cold.push_back(pool.fetch({f, p}));
      held.emplace_back(cold.back().latch());
      stamp_page(cold.back().data(), 1, p, 1);
      cold.back().mark_dirty(1);
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (pool.stats().dirty > 12 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  std::this_thread::sleep_for(200ms);  // and the cleaner has had time to write a hot page, if it would
  EXPECT_EQ(pool.stats().dirty, 12u) << "the cold pages are written, the hot ones stay dirty";
  std::vector<bool> written(32, false);
  for (const io_record& r : probe_->records()) {
    if (r.fd != fd || !pageio::test::is_write(r.op)) continue;
    for (std::uint64_t p = r.offset / page_size; p < (r.offset + r.bytes) / page_size && p < 32; ++p) written[p] = true;
  }
  for (std::uint64_t p = 0; p < 12; ++p) EXPECT_FALSE(written[p]) << "hot page " << p << " was written";
  for (std::uint64_t p = 20; p < 32; ++p) EXPECT_TRUE(written[p]) << "cold page " << p << " was not written";
  // A checkpoint writes every dirty page, hot ones too.
  pool.flush_all();
  EXPECT_EQ(pool.stats().dirty, 0u);
  const auto file = read_whole_file(path("clean.dat"));
  for (std::uint64_t p = 0; p < 12; ++p) EXPECT_TRUE(page_holds(on_disk(file, p), 1, p, 1)) << "page " << p;
}

// The cleaner cleans ahead of evictions: while the free frames cover the
// dirty fraction, the next fetches need no eviction and a write now would
// only be repeated by the checkpoint (a replay into a store whose cache
// holds its whole data file wrote it over and over). Once the free frames
// run low, it cleans as above.
TEST_P(pool_eviction_test, TheCleanerWritesNothingWhileFreeFramesRemain) {
  write_file(path("free.dat"), 1, 72);
  options o = probed_options();
  o.frames = 64;
  o.cleaner_dirty_fraction = 0.25;  // more than 16 dirty pages, fewer than 16 free frames, wake it
  o.write_batch = 8;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("free.dat"));
  const int fd = pool.fd_of(f);
  probe_->clear();
  for (std::uint64_t p = 0; p < 24; ++p) {  // 24 dirty, 40 frames free
    page_ref r = pool.fetch({f, p});
    std::unique_lock w(r.latch());
    stamp_page(r.data(), 1, p, 1);
    r.mark_dirty(1);
  }
  auto writes = [&] {
    std::size_t n = 0;
    for (const io_record& r : probe_->records()) n += r.fd == fd && pageio::test::is_write(r.op) ? 1 : 0;
    return n;
  };
  std::this_thread::sleep_for(300ms);  // six of the cleaner's periodic looks
  EXPECT_EQ(writes(), 0u) << "pages written with 40 of 64 frames free";
  EXPECT_EQ(pool.stats().dirty, 24u);
  // 30 more pages, fetched once: 10 frames free, fewer than 16.
  for (std::uint64_t p = 40; p < 70; ++p) pool.fetch({f, p});
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (pool.stats().dirty > 8 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_LE(pool.stats().dirty, 8u) << "the free frames ran low, and the cleaner did not clean";
  EXPECT_GT(writes(), 0u);
}

TEST_P(pool_eviction_test, AWriterHoldingItsLatchCanFetchAnotherPage) {
  write_file(path("coupling.dat"), 1, 32);
  options o = base(8);
  o.pin_wait = 500ms;
  o.readahead_pages = 0;
  auto pool = std::make_shared<buffer_pool>(o);  // on the heap: a fetch that never returns still uses it
  const file_id f = pool->add_file(path("coupling.dat"));
  for (std::uint64_t n = 0; n < 8; ++n) {
    page_ref p = pool->fetch({f, n});
    std::unique_lock w(p.latch());
    stamp_page(p.data(), 1, n, 1);
    p.mark_dirty(0);
  }
  ASSERT_EQ(pool->stats().dirty, 8u);
  auto outcome = std::make_shared<std::string>();
  const bool returned = returns_within(
      [pool, f, outcome] {
        page_ref a = pool->fetch({f, 0});
        std::unique_lock w(a.latch());
        stamp_page(a.data(), 1, 0, 2);
        a.mark_dirty(0);
        try {
          page_ref b = pool->fetch({f, 20});
          *outcome = page_holds(b.data(), 1, 20, 0) ? "ok" : "wrong content";
        } catch (const pool_exhausted&) {
          *outcome = "ok";
        } catch (const std::exception& e) {
          *outcome = std::string("fetch threw: ") + e.what();
        }
      },
      5s);
  ASSERT_TRUE(returned) << "fetch() while holding a dirty page's exclusive latch never returned (deadlock)";
  EXPECT_EQ(*outcome, "ok");
  // Whatever happened, the pool is whole afterwards: everything written,
  // and every frame to be had.
  EXPECT_NO_THROW(pool->flush_all());
  EXPECT_EQ(pool->stats().dirty, 0u);
  std::vector<page_ref> held;
  try {
    for (std::uint64_t n = 0; n < 8; ++n) held.push_back(pool->fetch({f, 24 + n}));
  } catch (const pool_exhausted& e) {
    ADD_FAILURE() << "only " << held.size() << " of 8 frames could be had afterwards: " << e.what();
  }
}

PAGECACHE_INSTANTIATE_ON_EVERY_BACKEND(pool_eviction_test);

}  // namespace
}  // namespace pageio::pagecache::test
