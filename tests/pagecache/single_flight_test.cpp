// Concurrent misses on one page issue one read. The read is held back (in a
// wrapper around the pool's backend) until every thread has asked for the
// page, so they all arrive while it is in flight.
#include <pageio/pagecache/buffer_pool.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <latch>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "pool_fixture.hpp"

namespace pageio::pagecache::test {
namespace {

using namespace std::chrono_literals;

class pool_single_flight_test : public pool_test {};

TEST_P(pool_single_flight_test, SixteenThreadsMissingOnePageCauseOneRead) {
  constexpr int threads = 16;
  write_file(path("data.dat"), 1, 64);
  options o = probed_options();
  o.frames = 64;
  o.cleaner_dirty_fraction = 0;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  const int fd = pool.fd_of(f);

  for (const std::uint64_t target : {10u, 30u, 50u}) {
    const pool_stats before = pool.stats();
    std::atomic<bool> all_arrived{true};
    // Holds the read of `target` until all threads have missed on it (each
    // counts its miss before it starts to wait), or 20 s.
    probe_->set_hook([&](io_request& r) -> int {
      if (pageio::test::is_read(r.op) && r.offset <= target * page_size &&
          target * page_size < r.offset + (r.iov != nullptr ? r.iov_count * page_size : r.length)) {
        all_arrived = wait_until([&] { return pool.stats().misses - before.misses >= threads; }, 20s);
      }
      return 0;
    });
    std::latch start(threads);
    std::vector<int> ok(threads, 0);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        start.arrive_and_wait();
        try {
          if (t % 2 == 0) {
            page_ref p = pool.fetch({f, target});
            std::shared_lock r(p.latch());
            ok[t] = page_holds(p.data(), 1, target, 0) ? 1 : 0;
          } else {  // the batch path joins the same read
            const page_id id{f, target};
            std::vector<page_ref> v = pool.fetch_batch(std::span<const page_id>(&id, 1));
            std::shared_lock r(v.at(0).latch());
            ok[t] = page_holds(v[0].data(), 1, target, 0) ? 1 : 0;
          }
        } catch (const std::exception& e) {
          ADD_FAILURE() << "thread " << t << ": " << e.what();
        }
      });
    }
    for (auto& t : ts) t.join();
    probe_->set_hook(nullptr);
    const pool_stats after = pool.stats();
    EXPECT_TRUE(all_arrived.load()) << "page " << target << ": not every thread had asked while the read was held";
    for (int t = 0; t < threads; ++t) EXPECT_EQ(ok[t], 1) << "thread " << t << ", page " << target;
    EXPECT_EQ(probe_->count(op_code::read, fd, static_cast<std::int64_t>(target * page_size)), 1u)
        << "page " << target << " was read more than once";
    EXPECT_EQ(after.reads - before.reads, 1u);
    EXPECT_EQ(after.misses - before.misses, static_cast<std::uint64_t>(threads));
    EXPECT_EQ(after.waits - before.waits, static_cast<std::uint64_t>(threads - 1));
  }
}

// The same with no hand on the read, only slow reads (fault_backend's added
// latency, up to 30 ms): still one read, whoever arrives when.
TEST_P(pool_single_flight_test, SlowReadsAreStillReadOnce) {
  constexpr int threads = 16;
  write_file(path("data.dat"), 1, 64);
  options o = probed_options();
  o.frames = 64;
  o.cleaner_dirty_fraction = 0;
  fault_options slow;
  slow.max_added_latency = 30ms;
  faults_->set(slow);
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  const int fd = pool.fd_of(f);
  for (const std::uint64_t target : {7u, 40u}) {
    std::latch start(threads);
    std::atomic<int> ok{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&] {
        start.arrive_and_wait();
        try {
          page_ref p = pool.fetch({f, target});
          std::shared_lock r(p.latch());
          if (page_holds(p.data(), 1, target, 0)) ++ok;
        } catch (const std::exception& e) {
          ADD_FAILURE() << e.what();
        }
      });
    }
    for (auto& t : ts) t.join();
    EXPECT_EQ(ok.load(), threads);
    EXPECT_EQ(probe_->count(op_code::read, fd, static_cast<std::int64_t>(target * page_size)), 1u);
  }
  const pool_stats s = pool.stats();
  std::printf("[          ] %s: %llu misses, %llu of them joined a read in flight, %llu hits\n", backend_name().c_str(),
              static_cast<unsigned long long>(s.misses), static_cast<unsigned long long>(s.waits),
              static_cast<unsigned long long>(s.hits));
  EXPECT_EQ(s.hits + s.misses, 2u * threads);
}

PAGECACHE_INSTANTIATE_ON_EVERY_BACKEND(pool_single_flight_test);

}  // namespace
}  // namespace pageio::pagecache::test
