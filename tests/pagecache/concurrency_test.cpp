// Several threads fetch, read, change, clean and checkpoint the pages of two
// files eight times larger than the pool, checked against a model of every
// page's version: every read sees the last write (whole page, byte for byte),
// and after a final flush_all() the files hold exactly the model and the
// statistics add up. Run under S3-FIFO (the default) and under CLOCK.
//
// PAGEIO_POOL_OPS sets the operations per thread (default 2500) and
// PAGEIO_SEED the seed (printed by every run).
#include <pageio/pagecache/buffer_pool.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "pool_fixture.hpp"

namespace pageio::pagecache::test {
namespace {

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

class pool_concurrency_test : public pool_test {
 protected:
  void run_model(eviction_policy policy);
};

void pool_concurrency_test::run_model(eviction_policy policy) {
  constexpr std::uint64_t pages_a = 192;  // written before the pool opens it
  constexpr std::uint64_t pages_b = 64;   // starts empty: its version 0 is zeros
  constexpr std::uint32_t tag_a = 1, tag_b = 2;
  constexpr int threads = 4;
  const std::uint64_t ops = env_or("PAGEIO_POOL_OPS", 2500);
  const std::uint64_t seed = env_or("PAGEIO_SEED", 20240611);
  std::printf("[          ] %s, %s: seed %llu (PAGEIO_SEED), %llu operations per thread (PAGEIO_POOL_OPS)\n",
              backend_name().c_str(), policy == eviction_policy::s3fifo ? "s3fifo" : "clock",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(ops));

  write_file(path("a.dat"), tag_a, pages_a);
  options o;
  o.backend = backend_name();
  o.frames = 32;       // 256 pages over 32 frames: most fetches evict
  o.write_batch = 8;   // many small write-backs
  // Far more than a frame ever takes to come free here: reaching it is a failure.
  o.pin_wait = std::chrono::seconds(2);
  o.policy = policy;
  // What the threads share lives on the heap: a thread that never returns
  // (a hang is one of the failures this test can find) keeps it alive.
  struct shared_state {
    explicit shared_state(const options& o, std::size_t pages) : pool(o), version(pages) {}
    buffer_pool pool;
    // The model: the version each page holds. It changes only while the
    // changing thread holds the page's exclusive latch, so a thread holding
    // the latch (either way) must find in the page exactly the version here.
    std::vector<std::atomic<std::uint64_t>> version;
    std::atomic<lsn_t> last_lsn{0};
    std::atomic<std::uint64_t> asked{0};  // pages asked of fetch/fetch_batch, plus try_fetch hits
    std::atomic<bool> failed{false};
  };
  auto st = std::make_shared<shared_state>(o, pages_a + pages_b);
  buffer_pool& pool = st->pool;
  std::vector<std::atomic<std::uint64_t>>& version = st->version;
  const file_id fa = pool.add_file(path("a.dat"));
  const file_id fb = pool.add_file(path("b.dat"));

  auto worker = [st, fa, fb, ops, seed](int t) {
    buffer_pool& pool = st->pool;
    std::vector<std::atomic<std::uint64_t>>& version = st->version;
    std::atomic<bool>& failed = st->failed;
    std::atomic<std::uint64_t>& asked = st->asked;
    auto slot = [&](const page_id& id) { return id.file == fa ? id.page : pages_a + id.page; };
    // The caller holds p's latch.
    auto matches_model = [&](const page_ref& p) -> ::testing::AssertionResult {
      const page_id id = p.id();
      const std::uint64_t v = version[slot(id)].load();
      if (id.file == fb && v == 0) {
        return all_zero(p.data(), usable_size) << " (page " << id.page << " of b.dat, never written)";
      }
      return page_holds(p.data(), id.file == fa ? tag_a : tag_b, id.page, v);
    };
    auto report = [&](const std::string& what, const ::testing::AssertionResult& r) {
      if (r) return true;
      if (!failed.exchange(true)) ADD_FAILURE() << what << ": " << r.message();
      return false;
    };
    std::mt19937_64 rng(seed * 31 + static_cast<std::uint64_t>(t));
    auto random_page = [&]() -> page_id {
      if (rng() % 4 != 0) return {fa, rng() % pages_a};
      return {fb, rng() % pages_b};
    };
    auto read_check = [&](const page_ref& p, const char* how) {
      std::shared_lock r(p.latch());
      return report(std::string("reading a page got by ") + how, matches_model(p));
    };
    try {
      for (std::uint64_t i = 0; i < ops && !failed.load(); ++i) {
        const unsigned r = static_cast<unsigned>(rng() % 1000);
        if (r < 520) {
          page_ref p = pool.fetch(random_page());
          ++asked;
          read_check(p, "fetch");
        } else if (r < 820) {
          const page_id id = random_page();
          page_ref p = pool.fetch(id);
          ++asked;
          std::unique_lock w(p.latch());
          if (!report("a page about to change", matches_model(p))) break;
          const std::uint64_t v = version[slot(id)].load() + 1;
          const lsn_t lsn = ++st->last_lsn;
          stamp_page(p.data(), id.file == fa ? tag_a : tag_b, id.page, v, lsn);
          version[slot(id)].store(v);
          p.mark_dirty(lsn);
          if (!p.dirty() || p.page_lsn() != lsn) {
            if (!failed.exchange(true)) {
              ADD_FAILURE() << "just marked dirty with LSN " << lsn << " under the exclusive latch, the page says dirty="
                            << p.dirty() << " page_lsn=" << p.page_lsn();
            }
            break;
          }
        } else if (r < 880) {  // a sequential run: read-ahead
          const std::uint64_t start = rng() % (pages_a - 8);
          for (std::uint64_t k = 0; k < 8; ++k) {
            page_ref p = pool.fetch({fa, start + k});
            ++asked;
            if (!read_check(p, "a sequential fetch")) break;
          }
        } else if (r < 930) {
          std::vector<page_id> ids;
          for (int k = 0; k < 4; ++k) ids.push_back(random_page());
          std::vector<page_ref> got = pool.fetch_batch(ids);
          asked += ids.size();
          if (got.size() != ids.size()) {
            report("fetch_batch", ::testing::AssertionFailure() << got.size() << " results for " << ids.size());
            break;
          }
          for (std::size_t k = 0; k < ids.size(); ++k) {
            if (!got[k] || !(got[k].id() == ids[k])) {
              report("fetch_batch", ::testing::AssertionFailure() << "result " << k << " is not the page asked");
              break;
            }
            read_check(got[k], "fetch_batch");
          }
        } else if (r < 970) {
          page_ref p = pool.try_fetch(random_page());
          if (p) {
            ++asked;
            read_check(p, "try_fetch");
          }
        } else if (r < 996) {
          pool.clean(8);
        } else {
          pool.flush_all();
        }
      }
    } catch (const std::exception& e) {
      if (!failed.exchange(true)) ADD_FAILURE() << "thread " << t << ": " << e.what();
    }
  };
  const std::size_t stuck =
      run_threads(threads, worker, [st] { return st->failed.load(); }, std::chrono::seconds(120));
  if (stuck > 0) keep_forever(st);
  ASSERT_EQ(stuck, 0u) << stuck << " of " << threads << " threads never returned from the pool";
  ASSERT_FALSE(st->failed.load());

  pool.flush_all();
  const pool_stats s = pool.stats();
  EXPECT_EQ(s.dirty, 0u) << "flush_all() with no other thread left pages dirty";

  // The files hold the model, byte for byte.
  const std::vector<std::byte> a = read_whole_file(path("a.dat"));
  const std::vector<std::byte> b = read_whole_file(path("b.dat"));
  ASSERT_EQ(a.size(), pages_a * page_size);
  std::uint64_t changed = 0;
  for (std::uint64_t p = 0; p < pages_a; ++p) {
    changed += version[p].load() > 0 ? 1 : 0;
    ASSERT_TRUE(page_holds(on_disk(a, p), tag_a, p, version[p].load())) << "a.dat on disk";
  }
  ASSERT_EQ(b.size() % page_size, 0u);
  for (std::uint64_t p = 0; p < pages_b; ++p) {
    const std::uint64_t v = version[pages_a + p].load();
    changed += v > 0 ? 1 : 0;
    if (v == 0) {
      if ((p + 1) * page_size <= b.size()) {
        ASSERT_TRUE(all_zero(b.data() + p * page_size, page_size)) << "b.dat page " << p;
      }
      continue;
    }
    ASSERT_GE(b.size(), (p + 1) * page_size) << "page " << p << " of b.dat was changed but never written";
    ASSERT_TRUE(page_holds(on_disk(b, p), tag_b, p, v)) << "b.dat on disk";
  }

  // The statistics agree with what was done.
  EXPECT_GT(s.evictions, 0u);
  EXPECT_EQ(s.hits + s.misses, st->asked.load()) << "every page asked is one hit or one miss";
  EXPECT_LE(s.waits, s.misses);
  EXPECT_EQ(s.pages_read, s.misses - s.waits + s.readahead_pages)
      << "each miss that did not join another's read brought its page, plus the pages read ahead";
  EXPECT_LE(s.pages_read - s.evictions, pool.frames()) << "pages read and not evicted must fit in the frames";
  EXPECT_GE(s.pages_written, changed) << "every changed page was written at least once";
  EXPECT_LE(s.writes, s.pages_written);
  EXPECT_LE(s.reads, s.pages_read);
  EXPECT_EQ(s.read_errors, 0u);
  EXPECT_EQ(s.write_errors, 0u);
  std::printf("[          ] %s: %llu pages asked, %llu hits, %llu misses (%llu joined a read), %llu reads of %llu pages "
              "(%llu read ahead), %llu evictions, %llu writes of %llu pages, %llu LSNs\n",
              backend_name().c_str(), static_cast<unsigned long long>(st->asked.load()),
              static_cast<unsigned long long>(s.hits), static_cast<unsigned long long>(s.misses),
              static_cast<unsigned long long>(s.waits), static_cast<unsigned long long>(s.reads),
              static_cast<unsigned long long>(s.pages_read), static_cast<unsigned long long>(s.readahead_pages),
              static_cast<unsigned long long>(s.evictions), static_cast<unsigned long long>(s.writes),
              static_cast<unsigned long long>(s.pages_written), static_cast<unsigned long long>(st->last_lsn.load()));
}

TEST_P(pool_concurrency_test, EveryReadSeesTheLastWriteUnderConstantEviction) { run_model(eviction_policy::s3fifo); }

// The same workload with one CLOCK over every frame (no small queue).
TEST_P(pool_concurrency_test, EveryReadSeesTheLastWriteUnderConstantEvictionWithClock) {
  run_model(eviction_policy::clock);
}

PAGECACHE_INSTANTIATE_ON_EVERY_BACKEND(pool_concurrency_test);

}  // namespace
}  // namespace pageio::pagecache::test
