// The WAL rule: a page changed by the log record at LSN n reaches its file
// only once the log is durable up to n. A stand-in log becomes durable only
// when the pool asks it to; a wrapper around every lane reads the LSN each
// page being written carries (the test stamps it into the page when it
// changes it) and compares it with the log's durable LSN at that moment.
// Also: oldest_dirty_lsn(), and a log that cannot be made durable.
#include <pageio/engine/durable_log.hpp>
#include <pageio/pagecache/buffer_pool.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pool_fixture.hpp"

namespace pageio::pagecache::test {
namespace {

// A log whose records are "appended" by issue() and become durable only in
// make_durable(), and which notes any request it could not honestly satisfy.
class recording_log final : public durable_log {
 public:
  lsn_t issue() { return ++issued_; }

  std::uint64_t durable_lsn() const override { return durable_.load(); }

  void make_durable(std::uint64_t lsn) override {
    ++calls_;
    if (failing_.load()) throw std::runtime_error("recording_log: the log device failed");
    if (lsn > issued_.load()) note("make_durable(" + std::to_string(lsn) + ") past the last LSN issued");
    std::uint64_t cur = durable_.load();
    while (cur < lsn && !durable_.compare_exchange_weak(cur, lsn)) {
    }
  }

  void set_failing(bool f) { failing_ = f; }
  std::uint64_t calls() const { return calls_.load(); }
  std::vector<std::string> problems() const {
    std::lock_guard lock(mu_);
    return problems_;
  }

 private:
  void note(const std::string& s) {
    std::lock_guard lock(mu_);
    problems_.push_back(s);
  }
  std::atomic<std::uint64_t> issued_{0}, durable_{0}, calls_{0};
  std::atomic<bool> failing_{false};
  mutable std::mutex mu_;
  std::vector<std::string> problems_;
};

// Checks every page in every write against the log; counts what it saw.
class wal_checker {
 public:
  explicit wal_checker(const recording_log& log) : log_(log) {}

  // For io_probe::set_hook: never fails the write.
  int operator()(io_request& r) {
    if (!pageio::test::is_write(r.op)) return 0;
    const std::uint64_t durable = log_.durable_lsn();
    auto check = [&](const std::byte* p, std::size_t len, std::uint64_t off) {
      if (off % page_size != 0 || len % page_size != 0) {
        note("a write of " + std::to_string(len) + " bytes at offset " + std::to_string(off) + " is not whole pages");
        return;
      }
      for (std::size_t i = 0; i < len; i += page_size) {
        format::page_header h;
        std::memcpy(&h, p + i, sizeof h);
        if (h.magic != format::page_magic) continue;  // a double-write area's header
        const page_stamp s = read_stamp(p + i + format::header_size);
        ++pages_;
        if (s.magic != stamp_magic) {
          note("page " + std::to_string((off + i) / page_size) + " was written without the test's stamp");
        } else if (s.lsn > durable) {
          ++violations_;
          note("page " + std::to_string(s.page) + " carrying LSN " + std::to_string(s.lsn) +
               " was written while the log was durable only up to " + std::to_string(durable));
        }
      }
    };
    if (r.iov != nullptr) {
      std::uint64_t off = r.offset;
      for (std::uint32_t k = 0; k < r.iov_count; ++k) {
        check(static_cast<const std::byte*>(r.iov[k].iov_base), r.iov[k].iov_len, off);
        off += r.iov[k].iov_len;
      }
    } else {
      check(static_cast<const std::byte*>(r.buf), r.length, r.offset);
    }
    return 0;
  }

  std::uint64_t pages() const { return pages_.load(); }
  std::uint64_t violations() const { return violations_.load(); }
  std::vector<std::string> notes() const {
    std::lock_guard lock(mu_);
    return notes_;
  }

 private:
  void note(const std::string& s) {
    std::lock_guard lock(mu_);
    if (notes_.size() < 20) notes_.push_back(s);
  }
  const recording_log& log_;
  std::atomic<std::uint64_t> pages_{0}, violations_{0};
  mutable std::mutex mu_;
  std::vector<std::string> notes_;
};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += "\n  " + x;
  return s;
}

class pool_wal_rule_test : public pool_test {};

TEST_P(pool_wal_rule_test, NoPageReachesItsFileBeforeTheLogIsDurableUpToItsLsn) {
  constexpr std::uint64_t pages = 128;
  constexpr int threads = 3, ops = 1500;
  write_file(path("data.dat"), 1, pages);
  // What the threads share lives on the heap: a thread that never returns
  // keeps it alive.
  struct shared_state {
    recording_log log;
    std::unique_ptr<buffer_pool> pool;
    std::vector<std::atomic<std::uint64_t>> version = std::vector<std::atomic<std::uint64_t>>(pages);
    std::atomic<bool> failed{false};
  };
  auto st = std::make_shared<shared_state>();
  recording_log& log = st->log;
  auto checker = std::make_shared<wal_checker>(log);
  probe_->set_hook([checker](io_request& r) { return (*checker)(r); });
  options o = probed_options();
  o.frames = 24;  // eviction keeps writing dirty pages back
  o.write_batch = 8;
  o.pin_wait = std::chrono::seconds(2);
  o.log = &log;
  st->pool = std::make_unique<buffer_pool>(o);
  buffer_pool& pool = *st->pool;
  std::vector<std::atomic<std::uint64_t>>& version = st->version;
  const file_id f = pool.add_file(path("data.dat"));

  auto worker = [st, f](int t) {
    buffer_pool& pool = *st->pool;
    std::atomic<bool>& failed = st->failed;
    std::vector<std::atomic<std::uint64_t>>& version = st->version;
    std::mt19937_64 rng(977 + static_cast<std::uint64_t>(t));
    try {
      for (int i = 0; i < ops && !failed.load(); ++i) {
        const unsigned r = static_cast<unsigned>(rng() % 100);
        const std::uint64_t n = rng() % pages;
        if (r < 80) {
          page_ref p = pool.fetch({f, n});
          std::unique_lock w(p.latch());
          const std::uint64_t v = version[n].load() + 1;
          const lsn_t lsn = st->log.issue();  // the record of this change, not yet durable
          stamp_page(p.data(), 1, n, v, lsn);
          version[n].store(v);
          p.mark_dirty(lsn);
        } else if (r < 94) {
          page_ref p = pool.fetch({f, n});
          std::shared_lock rd(p.latch());
          if (!page_holds(p.data(), 1, n, version[n].load())) {
            if (!failed.exchange(true)) ADD_FAILURE() << page_holds(p.data(), 1, n, version[n].load()).message();
          }
        } else if (r < 99) {
          pool.clean(4);
        } else {
          pool.flush_all();
        }
      }
    } catch (const std::exception& e) {
      if (!failed.exchange(true)) ADD_FAILURE() << "thread " << t << ": " << e.what();
    }
  };
  const std::size_t stuck = run_threads(threads, worker, [st] { return st->failed.load(); }, std::chrono::seconds(120));
  if (stuck > 0) keep_forever(st);
  ASSERT_EQ(stuck, 0u) << stuck << " of " << threads << " threads never returned from the pool";
  ASSERT_FALSE(st->failed.load());
  pool.flush_all();

  EXPECT_EQ(checker->violations(), 0u) << join(checker->notes());
  EXPECT_TRUE(checker->notes().empty()) << join(checker->notes());
  EXPECT_TRUE(log.problems().empty()) << join(log.problems());
  EXPECT_GT(checker->pages(), 0u) << "no page was written: the test checked nothing";
  EXPECT_GT(log.calls(), 0u) << "the pool never asked the log for durability";
  const std::vector<std::byte> disk = read_whole_file(path("data.dat"));
  ASSERT_EQ(disk.size(), pages * page_size);
  std::uint64_t ahead_of_log = 0;
  for (std::uint64_t n = 0; n < pages; ++n) {
    ASSERT_TRUE(page_holds(on_disk(disk, n), 1, n, version[n].load()));
    ahead_of_log += read_stamp(on_disk(disk, n)).lsn > log.durable_lsn() ? 1 : 0;
  }
  EXPECT_EQ(ahead_of_log, 0u) << "pages on disk carry LSNs the log never made durable";
  std::printf("[          ] %s: %llu pages written and checked, %llu make_durable calls, durable LSN %llu\n",
              backend_name().c_str(), static_cast<unsigned long long>(checker->pages()),
              static_cast<unsigned long long>(log.calls()), static_cast<unsigned long long>(log.durable_lsn()));
}

// Changes one page at a time with the next LSN; returns that LSN.
lsn_t change(buffer_pool& pool, recording_log& log, page_id id, std::uint64_t version) {
  page_ref p = pool.fetch(id);
  std::unique_lock w(p.latch());
  const lsn_t lsn = log.issue();
  stamp_page(p.data(), 1, id.page, version, lsn);
  p.mark_dirty(lsn);
  return lsn;
}

TEST_P(pool_wal_rule_test, OldestDirtyLsnIsTheFirstChangeOfTheOldestDirtyPage) {
  write_file(path("data.dat"), 1, 16);
  recording_log log;
  auto checker = std::make_shared<wal_checker>(log);
  probe_->set_hook([checker](io_request& r) { return (*checker)(r); });
  options o = probed_options();
  o.frames = 64;
  o.cleaner_dirty_fraction = 0;  // only the test writes pages back
  o.log = &log;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));

  EXPECT_EQ(pool.oldest_dirty_lsn(), std::nullopt);
  const lsn_t l1 = change(pool, log, {f, 3}, 1);
  const lsn_t l2 = change(pool, log, {f, 7}, 1);
  const lsn_t l3 = change(pool, log, {f, 5}, 1);
  const lsn_t l4 = change(pool, log, {f, 3}, 2);  // page 3 again: its first LSN stays l1
  EXPECT_EQ(pool.oldest_dirty_lsn(), l1);
  EXPECT_EQ(pool.stats().dirty, 3u);
  EXPECT_EQ(pool.fetch({f, 3}).page_lsn(), l4);
  EXPECT_EQ(log.calls(), 0u) << "nothing was written yet";

  EXPECT_EQ(pool.clean(1), 1u);  // the oldest: page 3, carrying l4
  EXPECT_GE(log.durable_lsn(), l4) << "page 3 went out carrying LSN " << l4;
  EXPECT_EQ(pool.oldest_dirty_lsn(), l2);
  EXPECT_FALSE(pool.fetch({f, 3}).dirty());

  const lsn_t l5 = change(pool, log, {f, 3}, 3);
  EXPECT_EQ(pool.oldest_dirty_lsn(), l2) << "page 7 (first changed at " << l2 << ") is still the oldest";
  EXPECT_TRUE(pool.fetch({f, 3}).dirty());
  (void)l3;

  pool.flush_all();
  EXPECT_EQ(pool.oldest_dirty_lsn(), std::nullopt);
  EXPECT_EQ(pool.stats().dirty, 0u);
  EXPECT_FALSE(pool.fetch({f, 5}).dirty());
  EXPECT_GE(log.durable_lsn(), l5);
  EXPECT_EQ(checker->violations(), 0u) << join(checker->notes());
  const std::vector<std::byte> disk = read_whole_file(path("data.dat"));
  EXPECT_TRUE(page_holds(on_disk(disk, 3), 1, 3, 3));
  EXPECT_TRUE(page_holds(on_disk(disk, 5), 1, 5, 1));
  EXPECT_TRUE(page_holds(on_disk(disk, 7), 1, 7, 1));
  EXPECT_TRUE(page_holds(on_disk(disk, 4), 1, 4, 0));
}

TEST_P(pool_wal_rule_test, ALogThatCannotBecomeDurableKeepsThePagesDirtyAndUnwritten) {
  write_file(path("data.dat"), 1, 16);
  recording_log log;
  options o = probed_options();
  o.frames = 64;
  o.cleaner_dirty_fraction = 0;
  o.log = &log;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  const lsn_t l1 = change(pool, log, {f, 2}, 1);
  change(pool, log, {f, 9}, 1);
  log.set_failing(true);
  EXPECT_THROW(pool.flush_all(), std::runtime_error);
  EXPECT_THROW(pool.clean(10), std::runtime_error);
  EXPECT_EQ(probe_->count(op_code::write), 0u) << "a page was written although the log could not be made durable";
  EXPECT_EQ(pool.stats().dirty, 2u);
  EXPECT_TRUE(pool.fetch({f, 2}).dirty());
  EXPECT_EQ(pool.oldest_dirty_lsn(), l1);

  log.set_failing(false);
  pool.flush_all();
  EXPECT_EQ(pool.stats().dirty, 0u);
  const std::vector<std::byte> disk = read_whole_file(path("data.dat"));
  EXPECT_TRUE(page_holds(on_disk(disk, 2), 1, 2, 1));
  EXPECT_TRUE(page_holds(on_disk(disk, 9), 1, 9, 1));
}

// A page changed while its write-back is in flight, and that write then
// fails: the change that write was carrying is still not on disk, so the
// log must still be kept from the page's first dirty LSN, not from the
// later change's.
TEST_P(pool_wal_rule_test, AFailedWriteBackKeepsTheFirstDirtyLsnOfAPageChangedMeanwhile) {
  write_file(path("data.dat"), 1, 16);
  recording_log log;
  options o = probed_options();
  o.frames = 64;
  o.cleaner_dirty_fraction = 0;
  o.log = &log;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  const lsn_t l1 = change(pool, log, {f, 5}, 1);
  ASSERT_EQ(pool.oldest_dirty_lsn(), l1);

  lsn_t l2 = 0;
  std::atomic<int> writes{0};
  probe_->set_hook([&](io_request& r) -> int {
    if (!pageio::test::is_write(r.op)) return 0;
    if (writes++ == 0) {
      l2 = change(pool, log, {f, 5}, 2);  // while the write of version 1 is in flight
      return EIO;                         // and that write fails
    }
    return 0;
  });
  EXPECT_THROW(pool.flush_all(), io_error);
  probe_->set_hook(nullptr);
  ASSERT_GT(l2, l1);
  EXPECT_TRUE(pool.fetch({f, 5}).dirty());
  EXPECT_EQ(pool.oldest_dirty_lsn(), l1) << "the change at LSN " << l1
                                         << " never reached the disk, yet the pool says the log may start at "
                                         << pool.oldest_dirty_lsn().value_or(0);
  pool.flush_all();
  EXPECT_EQ(pool.oldest_dirty_lsn(), std::nullopt);
  const std::vector<std::byte> disk = read_whole_file(path("data.dat"));
  EXPECT_TRUE(page_holds(on_disk(disk, 5), 1, 5, 2));
}

// flush_all() is the checkpoint: once it returns, every change made before
// it is durable in the data files, and oldest_dirty_lsn() says the log is no
// longer needed for them. Pages written earlier without a sync (by clean(),
// the cleaner or an eviction) are part of that promise too.
TEST_P(pool_wal_rule_test, FlushAllMakesPagesWrittenBeforeItDurable) {
  write_file(path("data.dat"), 1, 16);
  recording_log log;
  options o = probed_options();
  o.frames = 64;
  o.cleaner_dirty_fraction = 0;
  o.log = &log;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  const int fd = pool.fd_of(f);
  for (std::uint64_t n = 1; n <= 3; ++n) change(pool, log, {f, n}, 1);
  EXPECT_EQ(pool.clean(10), 3u);  // written, not synced
  pool.flush_all();               // the checkpoint
  EXPECT_EQ(pool.oldest_dirty_lsn(), std::nullopt);
  const std::vector<io_record> recs = probe_->records();
  std::ptrdiff_t last_write = -1, last_sync = -1;
  for (std::size_t i = 0; i < recs.size(); ++i) {
    if (recs[i].fd != fd) continue;
    if (pageio::test::is_write(recs[i].op)) last_write = static_cast<std::ptrdiff_t>(i);
    if (recs[i].op == op_code::fdatasync || recs[i].op == op_code::fsync) last_sync = static_cast<std::ptrdiff_t>(i);
  }
  ASSERT_GE(last_write, 0) << "clean() wrote nothing";
  EXPECT_GT(last_sync, last_write) << "flush_all() returned, and the log may be dropped (oldest_dirty_lsn() is empty), "
                                      "but the pages clean() wrote were never fdatasync'ed";
}

// A page clean() (or the cleaner, or an eviction) wrote is not durable until
// its file is fdatasync'ed: until then the log must keep its changes, so
// oldest_dirty_lsn() still counts it. Before the fix it left the dirty list
// when its copy was taken, and the documented checkpoint pattern could
// truncate the log while the page sat only in a volatile cache.
// (Without the double-write area: with it, every batch is synced before the
// next may overwrite the area, so a page clean() wrote is durable at once.)
TEST_P(pool_wal_rule_test, OldestDirtyLsnCountsPagesWrittenButNotYetSynced) {
  write_file(path("data.dat"), 1, 16);
  recording_log log;
  options o = probed_options();
  o.frames = 64;
  o.cleaner_dirty_fraction = 0;
  o.log = &log;
  o.doublewrite = false;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  const lsn_t l1 = change(pool, log, {f, 3}, 1);
  const lsn_t l2 = change(pool, log, {f, 5}, 1);
  EXPECT_EQ(pool.clean(1), 1u);  // page 3: written, not synced
  EXPECT_EQ(pool.oldest_dirty_lsn(), l1) << "page 3 (first changed at " << l1
                                         << ") is written but not synced: the log must keep it";
  EXPECT_EQ(pool.clean(10), 1u);  // page 5 too
  EXPECT_EQ(pool.oldest_dirty_lsn(), l1) << "nothing is synced yet";
  (void)l2;
  pool.flush_all();
  EXPECT_EQ(pool.oldest_dirty_lsn(), std::nullopt);
}

// A page a write-back has copied (so it is off the dirty list) but not yet
// written is not durable either: while its write is held in flight,
// oldest_dirty_lsn() and a checkpoint running meanwhile still count it.
TEST_P(pool_wal_rule_test, APageBeingWrittenIsStillCounted) {
  write_file(path("data.dat"), 1, 16);
  recording_log log;
  options o = probed_options();
  o.frames = 64;
  o.cleaner_dirty_fraction = 0;
  o.log = &log;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  const int fd = pool.fd_of(f);
  const lsn_t l1 = change(pool, log, {f, 4}, 1);
  std::atomic<bool> in_flight{false}, release{false};
  probe_->set_hook([&](io_request& r) -> int {
    if (pageio::test::is_write(r.op) && r.fd == fd && !in_flight.exchange(true)) {
      while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return 0;
  });
  std::thread cleaner([&] { pool.clean(10); });
  ASSERT_TRUE(wait_until([&] { return in_flight.load(); }, std::chrono::seconds(10)));
  EXPECT_EQ(pool.stats().dirty, 0u) << "the page left the dirty list when it was copied";
  EXPECT_EQ(pool.oldest_dirty_lsn(), l1) << "the page's write is in flight: the log must keep its change";
  release = true;
  cleaner.join();
  EXPECT_EQ(pool.checkpoint(), l1 + 1);
  EXPECT_EQ(pool.oldest_dirty_lsn(), std::nullopt);
}

// checkpoint() returns the LSN before which the log may go: past every
// change marked before it began once they are all durable, and never past
// the first change of a page it could not make durable.
TEST_P(pool_wal_rule_test, CheckpointReturnsTheLsnBeforeWhichTheLogMayGo) {
  write_file(path("data.dat"), 1, 16);
  recording_log log;
  options o = probed_options();
  o.frames = 64;
  o.cleaner_dirty_fraction = 0;
  o.log = &log;
  buffer_pool pool(o);
  const file_id f = pool.add_file(path("data.dat"));
  change(pool, log, {f, 1}, 1);
  change(pool, log, {f, 2}, 1);
  const lsn_t l3 = change(pool, log, {f, 1}, 2);
  EXPECT_EQ(pool.checkpoint(), l3 + 1);
  EXPECT_EQ(pool.oldest_dirty_lsn(), std::nullopt);
  EXPECT_EQ(pool.checkpoint(), l3 + 1) << "nothing changed since";

  const lsn_t l4 = change(pool, log, {f, 7}, 1);
  EXPECT_EQ(pool.clean(10), 1u);
  EXPECT_EQ(pool.checkpoint(), l4 + 1);

  // A page whose latch is held when the checkpoint begins is waited for, not skipped.
  const lsn_t l5 = change(pool, log, {f, 9}, 1);
  page_ref held = pool.fetch({f, 9});
  std::unique_lock r(held.latch());  // a writer, between two changes
  lsn_t got = 0;
  std::thread t([&] { got = pool.checkpoint(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  r.unlock();
  t.join();
  EXPECT_EQ(got, l5 + 1);

  // fsyncgate: a failed sync keeps the log from the page's first change.
  const lsn_t l6 = change(pool, log, {f, 11}, 1);
  change(pool, log, {f, 11}, 2);
  fault_options fo;
  fo.flush_eio = 1.0;
  faults_->set(fo);
  EXPECT_THROW(pool.checkpoint(), io_error);
  faults_->off();
  EXPECT_THROW(pool.checkpoint(), io_error) << "the file stays failed";
  ASSERT_TRUE(pool.oldest_dirty_lsn().has_value());
  EXPECT_EQ(*pool.oldest_dirty_lsn(), l6);
  EXPECT_EQ(pool.stats().failed_files, 1u);
}

PAGECACHE_INSTANTIATE_ON_EVERY_BACKEND(pool_wal_rule_test);

}  // namespace
}  // namespace pageio::pagecache::test
