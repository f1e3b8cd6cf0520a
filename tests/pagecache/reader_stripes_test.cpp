// Hits count their pins and shared latches in per-thread reader stripes, not
// in the frame (docs/pagecache.md, "Lock-free hits"). These tests hold the
// protocol to its promises: a page pinned by a hit is never evicted, a
// writer waits for every reader and wakes when the last one leaves, a
// shared hold released on another thread still lets a writer in, and
// readers and writers of one page exclude each other. The I/O does not
// matter here: they run on the sync backend only.
#include <pageio/pagecache/buffer_pool.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "pool_fixture.hpp"

namespace pageio::pagecache::test {
namespace {

using namespace std::chrono_literals;

class pool_reader_stripes_test : public pool_test {
 protected:
  options base(std::size_t frames) const {
    options o;
    o.backend = backend_name();
    o.frames = frames;
    o.readahead_pages = 0;
    o.pin_wait = 100ms;
    return o;
  }
};

// A page fetched a second time is a hit, pinned in the thread's stripe.
// Every other frame is then evicted many times over; the pinned page must
// keep its frame and its bytes, from this thread and from another one.
TEST_P(pool_reader_stripes_test, APagePinnedByAHitIsNeverEvicted) {
  write_file(path("hit.dat"), 1, 256);
  options o = base(8);
  o.policy = eviction_policy::clock;  // so that page 7, hit often, can still go at the end
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("hit.dat"));
  pool.fetch({f, 7}).reset();  // a miss: read, then unpinned
  const std::uint64_t hits_before = pool.stats().hits;
  page_ref held = pool.fetch({f, 7});
  ASSERT_EQ(pool.stats().hits, hits_before + 1) << "the second fetch was to be a hit";
  page_ref tried = pool.try_fetch({f, 7});  // a second hit's pin on the same page
  ASSERT_TRUE(tried);
  const std::byte* where = held.data();

  // On another thread, whose hits count in another stripe.
  page_ref other;
  std::thread([&] { other = pool.fetch({f, 7}); }).join();
  ASSERT_TRUE(other);

  for (int round = 0; round < 4; ++round) {
    for (std::uint64_t p = 100; p < 200; ++p) EXPECT_TRUE(page_holds(pool.fetch({f, p}).data(), 1, p, 0));
  }
  EXPECT_GE(pool.stats().evictions, 390u);
  EXPECT_EQ(held.data(), where) << "the pinned page changed frames";
  EXPECT_EQ(held.id().page, 7u) << "the frame pinned by a hit was evicted and reused";
  EXPECT_TRUE(page_holds(held.data(), 1, 7, 0));

  // Released on this thread, the pin taken on the other one still counts
  // where it was taken: the page stays until that one goes too.
  held.reset();
  tried.reset();
  for (std::uint64_t p = 100; p < 200; ++p) pool.fetch({f, p}).reset();
  EXPECT_EQ(other.id().page, 7u);
  EXPECT_TRUE(page_holds(other.data(), 1, 7, 0));
  other.reset();
  for (std::uint64_t p = 100; p < 200; ++p) pool.fetch({f, p}).reset();
  EXPECT_FALSE(pool.try_fetch({f, 7})) << "with every pin gone, page 7 should have been evicted";
}

// Every frame pinned by hits: a fetch that needs a frame waits, and gets
// one as soon as a hit's pin is released (the unpin wakes it).
TEST_P(pool_reader_stripes_test, AFetchWaitingForAFrameWakesWhenAHitsPinGoes) {
  write_file(path("wait.dat"), 1, 64);
  options o = base(8);
  o.pin_wait = 20s;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("wait.dat"));
  for (std::uint64_t p = 0; p < 8; ++p) pool.fetch({f, p}).reset();
  std::vector<page_ref> held;
  for (std::uint64_t p = 0; p < 8; ++p) held.push_back(pool.fetch({f, p}));
  ASSERT_EQ(pool.stats().hits, 8u);
  const auto began = std::chrono::steady_clock::now();
  std::thread releaser([&] {
    std::this_thread::sleep_for(100ms);
    held[5].reset();
  });
  page_ref p;
  EXPECT_NO_THROW(p = pool.fetch({f, 40}));
  releaser.join();
  EXPECT_LT(std::chrono::steady_clock::now() - began, 5s);
  ASSERT_TRUE(p);
  EXPECT_TRUE(page_holds(p.data(), 1, 40, 0));
  EXPECT_FALSE(pool.try_fetch({f, 5})) << "the page whose hit released its pin is the one that had to go";
}

// Three readers on three threads hold a page's latch; a writer waits for
// all of them (they count in three stripes) and gets in as soon as the
// last one leaves.
TEST_P(pool_reader_stripes_test, AWriterWaitsForEveryReaderAndWakesWhenTheLastLeaves) {
  write_file(path("latch.dat"), 1, 8);
  buffer_pool pool(base(8));
  const file_id f = pool.add_file(path("latch.dat"));
  page_ref page = pool.fetch({f, 2});
  std::atomic<int> holding{0}, left{0};
  std::atomic<bool> writer_in{false};
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) {
    readers.emplace_back([&, i] {
      std::shared_lock r(page.latch());
      holding.fetch_add(1);
      std::this_thread::sleep_for(100ms * (i + 1));
      EXPECT_FALSE(writer_in.load()) << "a writer got in while reader " << i << " held the latch";
      left.fetch_add(1);
    });
  }
  ASSERT_TRUE(wait_until([&] { return holding.load() == 3; }, 10s));
  const bool returned = returns_within(
      [&] {
        std::unique_lock w(page.latch());
        EXPECT_EQ(left.load(), 3) << "the writer got in before every reader had left";
        writer_in = true;
        std::this_thread::sleep_for(20ms);
        writer_in = false;
      },
      10s);
  for (std::thread& t : readers) t.join();
  ASSERT_TRUE(returned) << "the writer never woke after the last reader left";
  // And readers get in again after it.
  std::shared_lock again(page.latch());
}

// A writer can try: it fails while a reader holds the latch, on any thread,
// and leaves the latch as it found it.
TEST_P(pool_reader_stripes_test, TryLockFailsWhileAReaderHoldsAndLeavesNoTrace) {
  write_file(path("try.dat"), 1, 8);
  buffer_pool pool(base(8));
  const file_id f = pool.add_file(path("try.dat"));
  page_ref page = pool.fetch({f, 1});
  std::shared_lock r(page.latch());
  std::atomic<bool> got{true};
  std::thread([&] { got = page.latch().try_lock(); }).join();
  EXPECT_FALSE(got.load());
  EXPECT_TRUE(page.latch().try_lock_shared());  // no writer bit left behind
  page.latch().unlock_shared();
  r.unlock();
  std::thread([&] {
    got = page.latch().try_lock();
    if (got) page.latch().unlock();
  }).join();
  EXPECT_TRUE(got.load());
}

// Taken on one thread and released on another (which std::shared_mutex
// forbids, and which a coroutine moved between threads can do), a shared
// hold leaves +1 in one stripe and -1 in another: a writer adds the stripes
// up, so it still gets in.
TEST_P(pool_reader_stripes_test, ASharedHoldReleasedOnAnotherThreadStillLetsAWriterIn) {
  write_file(path("moved.dat"), 1, 8);
  auto pool = std::make_shared<buffer_pool>(base(8));
  keep_forever(pool);  // a writer that never got in would still use it
  const file_id f = pool->add_file(path("moved.dat"));
  auto page = std::make_shared<page_ref>(pool->fetch({f, 3}));
  keep_forever(page);
  std::thread([&] { page->latch().lock_shared(); }).join();
  std::thread([&] { page->latch().unlock_shared(); }).join();  // threads take stripes in turn: another one
  const bool returned = returns_within([page] { std::unique_lock w(page->latch()); }, 10s);
  EXPECT_TRUE(returned) << "a writer waits for ever after a shared hold was released on another thread";
}

// Readers and writers of one page on four threads: a reader never sees a
// change half made (ThreadSanitizer checks the latch orders the bytes).
TEST_P(pool_reader_stripes_test, ReadersAndWritersOfOnePageExcludeEachOther) {
  write_file(path("mixed.dat"), 1, 8);
  buffer_pool pool(base(8));
  const file_id f = pool.add_file(path("mixed.dat"));
  {
    page_ref p = pool.fetch({f, 4});
    std::unique_lock w(p.latch());
    std::memset(p.data(), 0, usable_size);
  }
  std::atomic<bool> torn{false};
  std::atomic<std::uint64_t> reads{0}, writes{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        page_ref p = pool.fetch({f, 4});
        if ((i + t) % 8 == 0) {
          std::unique_lock w(p.latch());
          std::uint64_t v;
          std::memcpy(&v, p.data(), 8);
          ++v;
          std::memcpy(p.data(), &v, 8);
          std::memcpy(p.data() + usable_size - 8, &v, 8);
          writes.fetch_add(1, std::memory_order_relaxed);
        } else {
          std::shared_lock r(p.latch());
          std::uint64_t a, b;
          std::memcpy(&a, p.data(), 8);
          std::memcpy(&b, p.data() + usable_size - 8, 8);
          if (a != b) torn = true;
          reads.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (std::thread& t : ts) t.join();
  EXPECT_FALSE(torn.load()) << "a reader saw a change half made";
  page_ref p = pool.fetch({f, 4});
  std::uint64_t v;
  std::memcpy(&v, p.data(), 8);
  EXPECT_EQ(v, writes.load()) << "a writer's change was lost: two writers were in at once";
  EXPECT_EQ(reads.load() + writes.load(), 80000u);
}

// Writers change a few hot pages through hits (pinned in their stripes)
// while another thread streams through other pages, so the hot pages come
// up for eviction all the time, now and then clean and unpinned for a
// moment. An eviction that checked "clean" before a writer pinned, changed
// and unpinned the page, and then found no pin, dropped a dirty page: the
// change was lost, and the next fetch read the old version from disk.
TEST_P(pool_reader_stripes_test, AChangeMadeThroughAHitIsNeverEvictedUnwritten) {
  constexpr std::uint64_t hot = 4;
  write_file(path("hot.dat"), 1, 512);
  options o = base(8);
  o.policy = eviction_policy::clock;
  o.write_batch = 2;
  o.pin_wait = 5s;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("hot.dat"));
  for (std::uint64_t p = 0; p < hot; ++p) {
    page_ref r = pool.fetch({f, p});
    std::unique_lock w(r.latch());
    std::memset(r.data(), 0, 8);
    r.mark_dirty(0);
  }
  std::vector<std::atomic<std::uint64_t>> model(hot);
  std::atomic<bool> stop{false}, lost{false};
  std::atomic<std::uint64_t> changes{0};
  std::string first_loss;
  std::mutex loss_mu;
  auto writer = [&](unsigned t) {
    std::uint64_t n = t;
    while (!stop.load() && !lost.load()) {
      const std::uint64_t p = n++ % hot;
      page_ref r = pool.fetch({f, p});
      std::unique_lock w(r.latch());
      std::uint64_t v;
      std::memcpy(&v, r.data(), 8);
      if (v != model[p].load()) {
        std::lock_guard l(loss_mu);
        if (!lost.exchange(true)) {
          first_loss = "page " + std::to_string(p) + " holds change " + std::to_string(v) + ", the last made was " +
                       std::to_string(model[p].load());
        }
        return;
      }
      ++v;
      std::memcpy(r.data(), &v, 8);
      model[p].store(v);
      r.mark_dirty(0);
      changes.fetch_add(1);
    }
  };
  std::thread streamer([&] {
    std::uint64_t p = 100;
    while (!stop.load() && !lost.load()) {
      pool.fetch({f, p}).reset();
      p = p == 511 ? 100 : p + 1;
    }
  });
  std::thread w1(writer, 0), w2(writer, 1);
  std::this_thread::sleep_for(1000ms);
  stop = true;
  w1.join();
  w2.join();
  streamer.join();
  EXPECT_FALSE(lost.load()) << "a change was lost: " << first_loss << " (" << changes.load() << " changes made)";
  EXPECT_GT(changes.load(), 100u);
  std::printf("[          ] %llu changes, %llu evictions\n", static_cast<unsigned long long>(changes.load()),
              static_cast<unsigned long long>(pool.stats().evictions));
  pool.flush_all();
}

// A latch outside a pool has no stripes: it counts its readers itself.
TEST(page_latch_test, OutsideAPoolItCountsReadersInItsOwnWord) {
  page_latch l;
  l.lock_shared();
  EXPECT_TRUE(l.try_lock_shared());
  EXPECT_FALSE(l.try_lock());
  l.unlock_shared();
  l.unlock_shared();
  EXPECT_TRUE(l.try_lock());
  EXPECT_FALSE(l.try_lock_shared());
  l.unlock();
}

INSTANTIATE_TEST_SUITE_P(Sync, pool_reader_stripes_test, ::testing::Values(std::string("sync")),
                         ::pageio::pagecache::test::backend_param_name);

}  // namespace
}  // namespace pageio::pagecache::test
