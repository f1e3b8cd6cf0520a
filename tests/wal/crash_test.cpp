// Crash simulation: committers run against a log over crash_backend, the
// power is cut at a random moment, the files are settled as a power cut could
// leave them (uncovered writes dropped, applied or torn by sectors), and the
// log is recovered. Every acknowledged record must come back intact and in
// order, nothing may come back that was never appended, and recovery must
// never fail on a torn tail.
//
//   PAGEIO_CRASH_POINTS  crash points on the sync backend (default 2000; the
//                        aio and uring runs do a tenth), for a longer soak
//   PAGEIO_SEED          seed (printed by every run)
#include <pageio/engine/crash_backend.hpp>
#include <pageio/wal/log.hpp>
#include <pageio/wal/reader.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "support/test_dir.hpp"

namespace pageio::wal {
namespace {

using test::test_dir;

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

std::vector<std::byte> record_for(std::uint64_t key) {
  const std::size_t size = 1 + key % 1500 + (key % 17 == 0 ? 9000 : 0);  // some span pages
  std::vector<std::byte> r(size);
  std::uint64_t x = key * 0x9E3779B97F4A7C15ULL + 7;
  for (auto& b : r) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::byte>(x);
  }
  return r;
}

class wal_crash_test : public ::testing::TestWithParam<std::string> {};

TEST_P(wal_crash_test, AcknowledgedRecordsSurviveEveryCrashPoint) {
  try {
    make_backend(GetParam());
  } catch (const backend_unavailable& e) {
    GTEST_SKIP() << GetParam() << " cannot start here: " << e.what();
  }
  std::string why;
  auto dir = test_dir::create(&why);
  if (!dir) GTEST_SKIP() << why;

  const std::uint64_t seed = env_u64("PAGEIO_SEED", static_cast<std::uint64_t>(
                                                        std::chrono::system_clock::now().time_since_epoch().count()));
  std::uint64_t points = env_u64("PAGEIO_CRASH_POINTS", 2000);
  if (GetParam() != "sync") points = std::max<std::uint64_t>(1, points / 10);
  std::cout << "[crash] " << GetParam() << ": " << points << " crash points, seed " << seed
            << "; rerun with PAGEIO_SEED=" << seed << std::endl;
  SCOPED_TRACE("PAGEIO_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);

  std::uint64_t acked_total = 0, recovered_total = 0, torn_tails = 0;
  crash_backend::settle_report totals;
  for (std::uint64_t point = 0; point < points; ++point) {
    SCOPED_TRACE("crash point " + std::to_string(point));
    options o;
    o.dir = dir->path() / ("log" + std::to_string(point));
    o.segment_bytes = 8 * 4096;  // segment changes inside most runs
    o.buffer_bytes = 32 * 4096;
    o.max_batch_bytes = 4 * 4096;
    // Every way of making a group commit durable; automatic here mixes both
    // (RWF_DSYNC up to 2 pages, fdatasync above) within one run.
    const durability modes[] = {durability::automatic, durability::dsync_writes, durability::write_then_fdatasync};
    o.mode = modes[rng() % 3];
    o.dsync_max_bytes = 2 * 4096;
    crash_backend* cb = nullptr;
    o.make_backend = [&]() -> std::unique_ptr<io_backend> {
      auto c = std::make_unique<crash_backend>(make_backend(GetParam()));
      cb = c.get();
      return c;
    };

    std::mutex mu;
    std::map<lsn_t, std::uint64_t> appended;  // every record that may come back
    std::vector<lsn_t> acked;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> acks{0};
    {
      log w(o);
      const int writers = 1 + static_cast<int>(rng() % 3);
      std::vector<std::thread> ts;
      for (int t = 0; t < writers; ++t) {
        ts.emplace_back([&, t] {
          for (std::uint64_t k = 0; !stop.load(); ++k) {
            const std::uint64_t key = (point << 32) | (static_cast<std::uint64_t>(t) << 24) | k;
            lsn_t l = 0;
            try {
              std::lock_guard lock(mu);  // the LSN and its content are known together
              l = w.append(record_for(key));
              appended[l] = key;
            } catch (const log_error&) {
              return;
            }
            try {
              w.flush(l);
            } catch (const log_error&) {
              return;
            }
            std::lock_guard lock(mu);
            acked.push_back(l);
            acks.fetch_add(1);
          }
        });
      }
      // Cut the power after a random number of acknowledgements, sometimes
      // with a random extra delay so the cut falls inside a group commit.
      const std::uint64_t target = rng() % 24;
      const auto extra = std::chrono::microseconds(rng() % 3 == 0 ? rng() % 2000 : 0);
      while (acks.load() < target) std::this_thread::yield();
      std::this_thread::sleep_for(extra);
      cb->cut_power();
      stop = true;
      for (auto& t : ts) t.join();
      // Wait until the flusher is idle or failed: then it no longer uses the backend.
      try {
        w.flush(w.last_lsn());
      } catch (const log_error&) {
      }

      {
        const auto rep = cb->settle(rng());
        totals.dropped += rep.dropped;
        totals.applied += rep.applied;
        totals.torn += rep.torn;
      }
    }

    // Recover.
    std::vector<std::pair<lsn_t, std::vector<std::byte>>> got;
    scan_result res;
    ASSERT_NO_THROW(res = scan_log(o.dir, 0, [&](const record_view& v) {
                      got.emplace_back(v.lsn, std::vector<std::byte>(v.data.begin(), v.data.end()));
                      return true;
                    }));
    ASSERT_FALSE(res.corruption) << "recovery reported corruption after a crash: " << res.corruption->what;
    if (!res.tail.empty()) ++torn_tails;
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].first, i + 1) << "records must come back in order from LSN 1, without holes";
      auto it = appended.find(got[i].first);
      ASSERT_NE(it, appended.end()) << "LSN " << got[i].first << " came back but was never appended";
      ASSERT_EQ(got[i].second, record_for(it->second)) << "LSN " << got[i].first << " came back altered";
    }
    for (lsn_t l : acked) {
      ASSERT_LE(l, got.size()) << "acknowledged LSN " << l << " was lost (recovered up to " << got.size() << ")";
    }
    acked_total += acked.size();
    recovered_total += got.size();

    // Every tenth time, the writer must reopen the crashed log and go on.
    if (point % 10 == 0) {
      options again = o;
      again.make_backend = {};
      again.backend = GetParam();
      log w(again);
      EXPECT_EQ(w.last_lsn(), got.size());
      const lsn_t next = w.commit(record_for(1));
      EXPECT_EQ(next, got.size() + 1);
      std::size_t n = 0;
      const auto r2 = scan_log(o.dir, 0, [&](const record_view&) {
        ++n;
        return true;
      });
      EXPECT_FALSE(r2.corruption);
      EXPECT_EQ(n, got.size() + 1);
    }
    std::filesystem::remove_all(o.dir);
  }
  std::cout << "[crash] " << GetParam() << ": " << acked_total << " acknowledged and " << recovered_total
            << " recovered records over " << points << " crashes; " << torn_tails
            << " ended in a torn tail; uncovered writes dropped " << totals.dropped << ", applied "
            << totals.applied << ", torn " << totals.torn << std::endl;
  EXPECT_GT(totals.torn, 0u) << "no crash tore a write: the test exercised too little";
}

INSTANTIATE_TEST_SUITE_P(Backends, wal_crash_test,
                         ::testing::Values(std::string("sync"), std::string("aio"), std::string("uring")),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace pageio::wal
