// Crash simulation of the buffer pool with the real write-ahead log: a tiny
// store of 48 pages of 64 slots. Writers update slots (log the change under
// the page's latch, change the page, mark it dirty, then wait for the log);
// a checkpointer checkpoints the pool and truncates the log before what it
// returns; a pool of 12 frames evicts and its cleaner writes all the time.
// Data file, double-write area and log share one crash model
// (crash_file_system): the power is cut at a random moment, every write no
// sync covers is dropped, applied or torn at 512-byte sectors, every size
// and name change no sync covers is kept or undone. Then the store recovers
// as a real one would: the log is opened, the pool opens the data file
// (repairing torn pages from the double-write area), and every record in the
// log is redone on its page unless the page's LSN says it is there already.
// Some recoveries are cut again, and most directories crash several times.
//
// Invariants after every recovery: every page checks (no corruption error);
// every slot holds the value of the last update the log kept for it, so every
// acknowledged update is there and none that the log lost; the log reaches at
// least the last acknowledged LSN.
//
//   PAGEIO_CRASH_POINTS  crash points on the sync backend (default 1000; the
//                        aio and uring runs do a tenth)
//   PAGEIO_SEED          seed (printed by every run)
#include <pageio/engine/crash_file_system.hpp>
#include <pageio/pagecache/buffer_pool.hpp>
#include <pageio/wal/log.hpp>
#include <pageio/wal/reader.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "support/crash_totals.hpp"
#include "support/test_dir.hpp"

namespace pageio::pagecache::test {
namespace {

using pageio::test::test_dir;
using namespace std::chrono_literals;

constexpr std::uint64_t pages = 48;
constexpr std::uint32_t slots = 64;  // u64 slots at the start of each page's usable bytes

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

// One update: page, slot, new value. The log record's bytes.
struct update {
  std::uint64_t page = 0;
  std::uint32_t slot = 0;
  std::uint32_t check = 0;  // page ^ slot ^ value, so a record from elsewhere shows
  std::uint64_t value = 0;
};
static_assert(sizeof(update) == 24);

std::uint32_t check_of(const update& u) {
  return static_cast<std::uint32_t>(u.page ^ u.slot ^ u.value ^ (u.value >> 32) ^ 0x5eed);
}

std::uint64_t slot_value(const page_ref& p, std::uint32_t slot) {
  std::uint64_t v;
  std::memcpy(&v, p.data() + slot * 8, 8);
  return v;
}

// What one directory's history promises, across its crashes.
struct history {
  std::map<lsn_t, update> appended;  // LSN -> the update last appended under it
  lsn_t acked = 0;                   // every update up to here was acknowledged
  std::string trail;                 // what each round did, for a failure's report
};

struct totals {
  std::uint64_t points = 0, sequences = 0, multi_crash_sequences = 0, cuts_in_recovery = 0;
  std::uint64_t acked_updates = 0, redone = 0, skipped_by_page_lsn = 0, checkpoints = 0, recycled = 0;
  std::uint64_t pages_repaired = 0, evictions = 0, pages_written = 0;
  double recover_s = 0, run_s = 0, settle_s = 0;  // where the time goes
  crash_report model;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

class pool_crash_test : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    try {
      make_backend(GetParam());
    } catch (const backend_unavailable& e) {
      GTEST_SKIP() << GetParam() << " cannot start here: " << e.what();
    }
    std::string why;
    dir_ = test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
  }

  std::function<std::unique_ptr<io_backend>()> backends() {
    return [fs = fs_, name = GetParam()]() -> std::unique_ptr<io_backend> { return fs->wrap(make_backend(name)); };
  }

  wal::options log_options(const std::filesystem::path& dir) {
    wal::options o;
    o.dir = dir / "log";
    o.fs = fs_;
    o.segment_bytes = 8 * 4096;
    o.buffer_bytes = 32 * 4096;
    o.max_batch_bytes = 4 * 4096;
    o.make_backend = backends();
    return o;
  }

  options pool_options(wal::log& log, std::mt19937_64& rng) {
    options o;
    o.frames = 12;
    o.fs = fs_;
    o.make_backend = backends();
    o.log = &log;
    o.write_batch = 1 + rng() % 6;
    o.cleaner_dirty_fraction = rng() % 3 == 0 ? 0 : 0.25;
    o.readahead_pages = rng() % 2 == 0 ? 0 : 4;
    // After the cut no dirty frame can be written, and a writer's fetch waits
    // this long for a frame before it gives up: short, so teardown is quick.
    o.pin_wait = 300ms;
    return o;
  }

  // Opens the store after a crash: the log, the pool (which repairs torn
  // pages), then redo. With `cutter`, the power may go at any moment of it.
  // Returns false when the power went.
  bool recover(const std::filesystem::path& dir, history& h, std::mt19937_64& rng, totals& t, bool cut,
               std::optional<wal::log>& log, std::unique_ptr<buffer_pool>& pool, file_id& f) {
    std::thread cutter;
    if (cut) {
      const auto delay = std::chrono::microseconds(rng() % 4000);
      cutter = std::thread([this, delay] {
        std::this_thread::sleep_for(delay);
        fs_->cut_power();
      });
    }
    auto join = [&] {
      if (cutter.joinable()) cutter.join();
    };
    try {
      fs_->create_directory(dir);
      fs_->sync_directory(dir.parent_path());
      log.emplace(log_options(dir));
      pool = std::make_unique<buffer_pool>(pool_options(*log, rng));
      f = pool->add_file(dir / "data.dat");
      t.pages_repaired += pool->stats().pages_repaired;
      const wal::scan_result res = wal::scan_log(*fs_, dir / "log", 0, [&](const wal::record_view& v) {
        update u;
        if (v.data.size() != sizeof u) throw std::runtime_error("a record of " + std::to_string(v.data.size()) + " bytes");
        std::memcpy(&u, v.data.data(), sizeof u);
        page_ref p = pool->fetch({f, u.page});
        std::unique_lock w(p.latch());
        if (p.page_lsn() >= v.lsn) {
          ++t.skipped_by_page_lsn;
          return true;
        }
        std::memcpy(p.data() + u.slot * 8, &u.value, 8);
        p.mark_dirty(v.lsn);
        ++t.redone;
        return true;
      });
      if (res.corruption) throw std::runtime_error("the log is corrupt: " + res.corruption->what);
      join();
      return !fs_->power_cut();
    } catch (const corruption_error& e) {
      join();
      ADD_FAILURE() << "a page failed its check during recovery: " << e.what() << "\nhistory:\n" << h.trail;
      return false;
    } catch (const std::exception& e) {
      join();
      if (!fs_->power_cut()) {
        ADD_FAILURE() << "recovery failed without a power cut: " << e.what() << "\nhistory:\n" << h.trail;
      }
      return false;
    }
  }

  // After recovery: every page checks and every slot holds the last value the
  // log kept for it.
  void verify(buffer_pool& pool, file_id f, wal::log& log, history& h) {
    ASSERT_GE(log.last_lsn(), h.acked) << "acknowledged LSN " << h.acked << " was lost\nhistory:\n" << h.trail;
    // What the log did not keep is gone: its LSNs will be handed out again.
    h.appended.erase(h.appended.upper_bound(log.last_lsn()), h.appended.end());
    std::vector<std::uint64_t> want(pages * slots, 0);
    std::vector<lsn_t> from(pages * slots, 0);
    for (const auto& [l, u] : h.appended) {
      want[u.page * slots + u.slot] = u.value;
      from[u.page * slots + u.slot] = l;
    }
    for (std::uint64_t n = 0; n < pages; ++n) {
      page_ref p;
      try {
        p = pool.fetch({f, n});
      } catch (const std::exception& e) {
        FAIL() << "page " << n << " after recovery: " << e.what() << "\nhistory:\n" << h.trail;
      }
      std::shared_lock r(p.latch());
      for (std::uint32_t s = 0; s < slots; ++s) {
        ASSERT_EQ(slot_value(p, s), want[n * slots + s])
            << "page " << n << " slot " << s << ": expected the value of LSN " << from[n * slots + s]
            << " (page LSN " << p.page_lsn() << ", log " << log.last_lsn() << ", acknowledged " << h.acked
            << ")\nhistory:\n"
            << h.trail;
      }
    }
  }

  // One round on a recovered store: writers and a checkpointer until the power goes.
  void run_until_cut(wal::log& log, buffer_pool& pool, file_id f, history& h, std::mt19937_64& rng,
                     std::uint64_t value_base, totals& t) {
    std::mutex mu;             // the history
    std::string unexpected;    // an error while the power was still on
    auto note_unless_cut = [&](const char* what, const std::exception& e) {
      if (fs_->power_cut()) return;
      std::lock_guard lock(mu);
      if (unexpected.empty()) unexpected = std::string(what) + " failed with the power on: " + e.what();
    };
    std::shared_mutex gate;    // writers share it from append to mark_dirty; the checkpointer takes it alone
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> acks{0};
    const int writers = 1 + static_cast<int>(rng() % 3);
    std::vector<std::thread> ts;
    for (int i = 0; i < writers; ++i) {
      const std::uint64_t wseed = rng();
      ts.emplace_back([&, i, wseed] {
        std::mt19937_64 r(wseed);
        for (std::uint64_t k = 0; !stop.load(); ++k) {
          update u;
          u.page = r() % 4 == 0 ? r() % 4 : r() % pages;  // a few hot pages
          u.slot = static_cast<std::uint32_t>(r() % slots);
          u.value = value_base | (static_cast<std::uint64_t>(i) << 28) | k;
          u.check = check_of(u);
          lsn_t l = 0;
          try {
            std::shared_lock g(gate);
            page_ref p = pool.fetch({f, u.page});
            std::unique_lock w(p.latch());
            {
              std::lock_guard lock(mu);  // the LSN and its update are known together
              l = log.append(std::as_bytes(std::span(&u, 1)));
              h.appended[l] = u;
            }
            std::memcpy(p.data() + u.slot * 8, &u.value, 8);
            p.mark_dirty(l);
          } catch (const std::exception& e) {
            note_unless_cut("an update", e);
            return;  // the power went
          }
          try {
            log.flush(l);
          } catch (const std::exception& e) {
            note_unless_cut("a commit", e);
            return;
          }
          std::lock_guard lock(mu);
          h.acked = std::max(h.acked, l);
          acks.fetch_add(1);
        }
      });
    }
    std::thread checkpointer;
    if (rng() % 4 != 0) {
      const std::uint64_t cseed = rng();
      checkpointer = std::thread([&, cseed] {
        std::mt19937_64 r(cseed);
        while (!stop.load()) {
          std::this_thread::sleep_for(std::chrono::microseconds(200 + r() % 2000));
          try {
            lsn_t redo;
            {
              std::unique_lock g(gate);  // no writer between an append and its mark
              redo = log.last_lsn() + 1;
            }
            const lsn_t keep = pool.checkpoint(redo);
            t.recycled += log.truncate_before(keep);
            ++t.checkpoints;
          } catch (const std::exception& e) {
            note_unless_cut("a checkpoint", e);
            return;
          }
        }
      });
    }
    const std::uint64_t target = rng() % 24;
    const auto extra = std::chrono::microseconds(rng() % 3 == 0 ? rng() % 3000 : 0);
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    while (acks.load() < target && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
    std::this_thread::sleep_for(extra);
    fs_->cut_power();
    stop = true;
    for (auto& th : ts) th.join();
    if (checkpointer.joinable()) checkpointer.join();
    EXPECT_TRUE(unexpected.empty()) << unexpected << "\nhistory:\n" << h.trail;
    t.acked_updates += acks.load();
    const pool_stats s = pool.stats();
    t.evictions += s.evictions;
    t.pages_written += s.pages_written;
    h.trail += "    " + std::to_string(acks.load()) + " updates acknowledged, up to LSN " + std::to_string(h.acked) +
               "; appended up to " + std::to_string(log.last_lsn()) + "; " + std::to_string(s.pages_written) +
               " pages written, " + std::to_string(s.evictions) + " evictions\n";
  }

  void settle(std::mt19937_64& rng, totals& t) {
    const auto began = std::chrono::steady_clock::now();
    const crash_report rep = fs_->settle(rng());
    t.settle_s += seconds_since(began);
    pageio::test::add_report(t.model, rep);
    ++t.points;
  }

  std::optional<test_dir> dir_;
  std::shared_ptr<crash_file_system> fs_ = std::make_shared<crash_file_system>();
};

TEST_P(pool_crash_test, EveryAcknowledgedUpdateSurvivesAndEveryPageChecks) {
  const std::uint64_t seed = env_u64("PAGEIO_SEED", static_cast<std::uint64_t>(
                                                        std::chrono::system_clock::now().time_since_epoch().count()));
  std::uint64_t points = env_u64("PAGEIO_CRASH_POINTS", 1000);
  if (GetParam() != "sync") points = std::max<std::uint64_t>(1, points / 10);
  std::cout << "[crash] pool " << GetParam() << ": " << points << " crash points, seed " << seed
            << "; rerun with PAGEIO_SEED=" << seed << std::endl;
  SCOPED_TRACE("PAGEIO_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const auto started = std::chrono::steady_clock::now();
  totals t;
  for (std::uint64_t sequence = 0; t.points < points; ++sequence) {
    SCOPED_TRACE("sequence " + std::to_string(sequence));
    const auto dir = dir_->path() / ("store" + std::to_string(sequence));
    const int crashes = rng() % 10 < 4 ? 1 : 2 + static_cast<int>(rng() % 4);
    history h;
    for (int c = 0; c < crashes && t.points < points; ++c) {
      SCOPED_TRACE("crash " + std::to_string(c + 1) + " of " + std::to_string(crashes));
      std::optional<wal::log> log;
      std::unique_ptr<buffer_pool> pool;
      file_id f = 0;
      const bool cut_in_recovery = c > 0 && rng() % 5 == 0;
      h.trail += "  round " + std::to_string(c + 1) + (cut_in_recovery ? " (cut during recovery)" : "") + "\n";
      const auto began = std::chrono::steady_clock::now();
      const bool recovered = recover(dir, h, rng, t, cut_in_recovery, log, pool, f);
      t.recover_s += seconds_since(began);
      if (!recovered) {
        if (HasFailure()) return;
        pool.reset();
        log.reset();
        settle(rng, t);
        ++t.cuts_in_recovery;
        continue;
      }
      if (c > 0) {
        verify(*pool, f, *log, h);
        if (HasFailure()) return;
      }
      const auto ran = std::chrono::steady_clock::now();
      run_until_cut(*log, *pool, f, h, rng, (sequence << 36) | (static_cast<std::uint64_t>(c) << 32), t);
      pool.reset();
      log.reset();
      t.run_s += seconds_since(ran);
      settle(rng, t);
    }
    // The last crash, recovered and checked.
    {
      std::optional<wal::log> log;
      std::unique_ptr<buffer_pool> pool;
      file_id f = 0;
      h.trail += "  final recovery\n";
      ASSERT_TRUE(recover(dir, h, rng, t, false, log, pool, f));
      verify(*pool, f, *log, h);
      if (HasFailure()) return;
    }
    ++t.sequences;
    if (crashes > 1) ++t.multi_crash_sequences;
    std::filesystem::remove_all(dir);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "[crash] pool " << GetParam() << ": " << t.points << " crash points in " << t.sequences
            << " sequences (" << t.multi_crash_sequences << " crashed 2-5 times, " << t.cuts_in_recovery
            << " cuts during recovery) in " << secs << " s; " << t.acked_updates << " updates acknowledged; "
            << t.redone << " redone, " << t.skipped_by_page_lsn << " skipped by page LSN; " << t.checkpoints
            << " checkpoints recycled " << t.recycled << " segments; " << t.pages_written << " pages written, "
            << t.evictions << " evictions; " << t.pages_repaired << " torn pages repaired; writes dropped "
            << t.model.dropped << ", applied " << t.model.applied << ", torn " << t.model.torn << "; names undone "
            << t.model.names_undone << ", sizes reverted " << t.model.sizes_reverted << "; seconds in recovery "
            << t.recover_s << ", running " << t.run_s << ", settling " << t.settle_s << std::endl;
  EXPECT_GT(t.model.torn, 0u) << "no crash tore a write: the test exercised too little";
  if (points >= 1000) {
    EXPECT_GT(t.pages_repaired, 0u) << "no torn data page was ever repaired: the double-write area was not exercised";
    EXPECT_GT(t.skipped_by_page_lsn, 0u) << "redo never skipped a record by page LSN";
    EXPECT_GT(t.recycled, 0u) << "no checkpoint recycled a log segment";
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, pool_crash_test,
                         ::testing::Values(std::string("sync"), std::string("aio"), std::string("uring")),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace pageio::pagecache::test
