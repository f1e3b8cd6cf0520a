// pagecache::async_fetch: many coroutines on one io_context and one driver
// read a file larger than the pool; a callback token; completions are posted,
// never inline; a page another thread is reading completes when that read
// does (and the other way round); no frame to be had arrives as an error.
#include <pageio/pagecache/asio.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <random>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "pool_fixture.hpp"

namespace pageio::pagecache::test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

class pool_asio_test : public pool_test {
 protected:
  void run_coroutines(eviction_policy policy);
};

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

void pool_asio_test::run_coroutines(eviction_policy policy) {
  constexpr std::uint64_t pages = 512;
  constexpr int coroutines = 32, each = 48;
  write_file(path("data.dat"), 1, pages);
  options o;
  o.backend = backend_name();
  o.frames = 128;  // at most 32 pinned at once, by the coroutines
  o.cleaner_dirty_fraction = 0;
  o.policy = policy;
  // Waiting for a frame blocks the io_context's thread, and with at most 32
  // of 128 frames pinned there is always one to evict: any wait is a failure.
  o.pin_wait = 200ms;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  asio::io_context ctx;
  asio_driver drv(ctx, backend_name());
  int finished = 0, good = 0;
  bool failed = false;  // the first failure stops every coroutine
  for (int c = 0; c < coroutines; ++c) {
    asio::co_spawn(
        ctx,
        [&, c]() -> asio::awaitable<void> {
          std::mt19937_64 rng(static_cast<std::uint64_t>(c) + 1);
          for (int k = 0; k < each && !failed; ++k) {
            // Half a stride through the file (every coroutine its own pages),
            // half random pages (others' too).
            const std::uint64_t n = k % 2 == 0 ? (static_cast<std::uint64_t>(c) + coroutines * (k / 2)) % pages
                                               : rng() % pages;
            auto [ec, p] = co_await async_fetch(pool, drv, {f, n}, asio::as_tuple(asio::use_awaitable));
            if (ec) {
              if (!failed) {
                const pool_stats s = pool.stats();
                ADD_FAILURE() << "coroutine " << c << ", page " << n << ", after " << s.hits + s.misses
                              << " fetches: " << ec.message();
              }
              failed = true;
              break;
            }
            EXPECT_EQ(p.id().page, n);
            std::shared_lock r(p.latch());
            if (page_holds(p.data(), 1, n, 0)) {
              ++good;
            } else {
              ADD_FAILURE() << "coroutine " << c << ": " << page_holds(p.data(), 1, n, 0).message();
            }
          }
          ++finished;
        },
        rethrow);
  }
  ctx.run();
  ASSERT_FALSE(failed);
  EXPECT_EQ(finished, coroutines);
  EXPECT_EQ(good, coroutines * each);
  const pool_stats s = pool.stats();
  EXPECT_EQ(s.hits + s.misses, static_cast<std::uint64_t>(coroutines * each));
  EXPECT_GT(s.evictions, 0u) << "the file is four times the pool";
  EXPECT_EQ(s.read_errors, 0u);
  EXPECT_EQ(drv.outstanding(), 0u);
}

TEST_P(pool_asio_test, ThirtyTwoCoroutinesReadAFileLargerThanThePool) { run_coroutines(eviction_policy::s3fifo); }

// The same under CLOCK (no small queue).
TEST_P(pool_asio_test, ThirtyTwoCoroutinesReadAFileLargerThanThePoolWithClock) {
  run_coroutines(eviction_policy::clock);
}

TEST_P(pool_asio_test, ACallbackTokenGetsThePageAndIsNeverCalledInline) {
  write_file(path("data.dat"), 1, 16);
  options o;
  o.backend = backend_name();
  o.frames = 16;
  o.cleaner_dirty_fraction = 0;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  asio::io_context ctx;
  asio_driver drv(ctx, backend_name());
  for (const char* kind : {"miss", "hit"}) {
    int calls = 0;
    std::error_code got_ec;
    page_ref got;
    async_fetch(pool, drv, {f, 9}, [&](std::error_code ec, page_ref p) {
      ++calls;
      got_ec = ec;
      got = std::move(p);
    });
    EXPECT_EQ(calls, 0) << "a " << kind << " completed inside async_fetch";
    ctx.restart();
    ctx.run();
    ASSERT_EQ(calls, 1) << kind;
    ASSERT_FALSE(got_ec) << kind << ": " << got_ec.message();
    ASSERT_TRUE(got) << kind;
    EXPECT_EQ(got.id().page, 9u);
    EXPECT_TRUE(page_holds(got.data(), 1, 9, 0)) << kind;
  }
  const pool_stats s = pool.stats();
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits, 1u);
}

// The io_context goes away before the read's handler runs (a server shutting
// down): the handler is destroyed unrun. Before the fix the frame stayed
// pinned and loading, and a later fetch() of the page slept forever. Both
// orders: the driver destroyed first (it cancels, then the context destroys
// the posted handlers), and the context destroyed first.
TEST_P(pool_asio_test, AFetchWhoseContextIsDestroyedUnrunLeavesNoPageLoadingOrPinned) {
  write_file(path("data.dat"), 1, 16);
  options o;
  o.backend = backend_name();
  o.frames = 8;
  o.cleaner_dirty_fraction = 0;
  o.readahead_pages = 0;
  o.pin_wait = 300ms;
  auto pool = std::make_shared<buffer_pool>(o);  // on the heap: a fetch that never returns still uses it
  const file_id f = pool->add_file(path("data.dat"));
  page_ref hit = pool->fetch({f, 4});
  hit.reset();
  for (const bool driver_first : {true, false}) {
    auto ctx = std::make_unique<asio::io_context>();
    auto drv = std::make_unique<asio_driver>(*ctx, backend_name());
    int calls = 0;
    auto count = [&calls](std::error_code, page_ref) { ++calls; };
    async_fetch(*pool, *drv, {f, 3}, count);  // a miss: the read is in flight
    async_fetch(*pool, *drv, {f, 3}, count);  // joins it
    async_fetch(*pool, *drv, {f, 4}, count);  // a hit: posted
    if (driver_first) {
      drv.reset();
      ctx.reset();
    } else {
      ctx.reset();
      drv.reset();
    }
    EXPECT_EQ(calls, 0);
    auto ok = std::make_shared<std::atomic<bool>>(false);
    const bool returned = returns_within(
        [pool, ok, f] {
          page_ref p = pool->fetch({f, 3});
          ok->store(static_cast<bool>(page_holds(p.data(), 1, 3, 0)));
        },
        5s);
    if (!returned) keep_forever(pool);
    ASSERT_TRUE(returned) << (driver_first ? "driver" : "context")
                          << " destroyed first: fetch() of the page whose async read never completed never returned";
    EXPECT_TRUE(ok->load());
    // Every frame can be pinned at once: none was left pinned by a destroyed handler.
    std::vector<page_id> all;
    for (std::uint64_t n = 0; n < o.frames; ++n) all.push_back({f, n});
    EXPECT_NO_THROW(pool->fetch_batch(all)) << (driver_first ? "driver" : "context") << " destroyed first";
    // And every frame can be given up: eight other pages need all eight,
    // page 4's too (its hit was pinned in a reader stripe, and dropped there).
    std::vector<page_id> others;
    for (std::uint64_t n = 8; n < 16; ++n) others.push_back({f, n});
    EXPECT_NO_THROW(pool->fetch_batch(others)) << (driver_first ? "driver" : "context") << " destroyed first";
    page_ref again = pool->fetch({f, 4});  // a hit again for the next round
    again.reset();
  }
}

// A thread's fetch is reading page 17 (held in flight); an async fetch of it
// joins that read instead of issuing its own.
TEST_P(pool_asio_test, AnAsyncFetchJoinsAReadAnotherThreadStarted) {
  write_file(path("data.dat"), 1, 32);
  options o = probed_options();
  o.frames = 32;
  o.cleaner_dirty_fraction = 0;
  o.readahead_pages = 0;
  auto pool = std::make_shared<buffer_pool>(o);
  const file_id f = pool->add_file(path("data.dat"));
  const int fd = pool->fd_of(f);
  struct state {
    std::atomic<bool> in_flight{false}, release{false}, sync_ok{false}, sync_done{false};
  };
  auto st = std::make_shared<state>();
  probe_->set_hook([st](io_request& r) -> int {
    if (pageio::test::is_read(r.op) && r.offset == 17 * page_size) {
      st->in_flight = true;
      wait_until([&] { return st->release.load(); }, 20s);
    }
    return 0;
  });
  std::thread reader([pool, st, f] {
    try {
      page_ref p = pool->fetch({f, 17});
      st->sync_ok = static_cast<bool>(page_holds(p.data(), 1, 17, 0));
    } catch (...) {
    }
    st->sync_done = true;
  });
  if (!wait_until([&] { return st->in_flight.load(); }, 20s)) {
    st->release = true;
    reader.join();
    FAIL() << "the thread's read of page 17 never started";
  }

  asio::io_context ctx;
  asio_driver drv(ctx, backend_name());
  auto guard = asio::make_work_guard(ctx);
  int calls = 0;
  std::error_code got_ec;
  bool async_ok = false;
  async_fetch(*pool, drv, {f, 17}, [&](std::error_code ec, page_ref p) {
    ++calls;
    got_ec = ec;
    async_ok = p && page_holds(p.data(), 1, 17, 0);
    guard.reset();
  });
  EXPECT_EQ(pool->stats().waits, 1u) << "the async fetch joined the read in flight";
  st->release = true;
  ctx.run_for(20s);
  if (!wait_until([&] { return st->sync_done.load(); }, 20s)) {
    reader.detach();
    keep_forever(pool);
    FAIL() << "the thread's fetch never returned";
  }
  reader.join();
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(got_ec) << got_ec.message();
  EXPECT_TRUE(async_ok);
  EXPECT_TRUE(st->sync_ok.load());
  EXPECT_EQ(probe_->count(op_code::read, fd, 17 * page_size), 1u);
  EXPECT_EQ(pool->stats().reads, 1u);
}

// The other way round: an async fetch has started reading page 23 (the read
// goes out when the io_context runs); a thread's fetch waits for it.
TEST_P(pool_asio_test, AThreadsFetchJoinsAReadAnAsyncFetchStarted) {
  write_file(path("data.dat"), 1, 32);
  options o = probed_options();  // records the pool's own reads: there must be none
  o.frames = 32;
  o.cleaner_dirty_fraction = 0;
  o.readahead_pages = 0;
  auto pool = std::make_shared<buffer_pool>(o);
  const file_id f = pool->add_file(path("data.dat"));
  asio::io_context ctx;
  asio_driver drv(ctx, backend_name());
  int calls = 0;
  bool async_ok = false;
  async_fetch(*pool, drv, {f, 23}, [&](std::error_code ec, page_ref p) {
    ++calls;
    async_ok = !ec && p && page_holds(p.data(), 1, 23, 0);
  });
  struct state {
    std::atomic<bool> ok{false}, done{false};
  };
  auto st = std::make_shared<state>();
  std::thread reader([pool, st, f] {
    try {
      page_ref p = pool->fetch({f, 23});
      st->ok = static_cast<bool>(page_holds(p.data(), 1, 23, 0));
    } catch (...) {
    }
    st->done = true;
  });
  const bool waiting = wait_until([&] { return pool->stats().waits == 1; }, 20s);
  EXPECT_TRUE(waiting) << "the thread's fetch did not wait for the async read";
  ctx.run();
  if (!wait_until([&] { return st->done.load(); }, 20s)) {
    reader.detach();
    keep_forever(pool);
    FAIL() << "the thread's fetch never returned after the async read completed";
  }
  reader.join();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(async_ok);
  EXPECT_TRUE(st->ok.load());
  EXPECT_EQ(probe_->count(op_code::read), 0u) << "the pool read the page itself as well";
  EXPECT_EQ(pool->stats().reads, 1u);
}

TEST_P(pool_asio_test, NoFrameToBeHadArrivesAsNoBufferSpace) {
  write_file(path("data.dat"), 1, 16);
  options o;
  o.backend = backend_name();
  o.frames = 8;
  o.cleaner_dirty_fraction = 0;
  o.readahead_pages = 0;
  o.pin_wait = 50ms;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  std::vector<page_ref> held;
  for (std::uint64_t n = 0; n < 8; ++n) held.push_back(pool.fetch({f, n}));
  asio::io_context ctx;
  asio_driver drv(ctx, backend_name());
  int calls = 0;
  std::error_code got;
  async_fetch(pool, drv, {f, 12}, [&](std::error_code ec, page_ref) {
    ++calls;
    got = ec;
  });
  ctx.run();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got, std::errc::no_buffer_space) << got.message();
}

PAGECACHE_INSTANTIATE_ON_EVERY_BACKEND(pool_asio_test);

}  // namespace
}  // namespace pageio::pagecache::test
