// Crash simulation of the key-value store: its log, data file and
// double-write area share one crash model (crash_file_system): the power is
// cut at a random moment, every write no sync covers is dropped, applied or
// torn at 512-byte sectors, every name and size change no sync covers kept
// or undone. Writers (each on keys of its own) put, delete and write batches,
// some values large enough for overflow pages; a checkpointer checkpoints;
// a small pool evicts and cleans all the time. Then the store is reopened
// (recovery; sometimes cut again) and checked, and most directories crash
// several times.
//
// After every recovery: store::check() finds nothing (every page checksums,
// keys in order within and across pages, fences, sibling links, overflow
// chains, the free list disjoint from the tree, no page leaked); and for
// every writer, its keys hold exactly the state after its last acknowledged
// operation, or after the one it had in flight (a batch all of it or none).
//
//   PAGEIO_CRASH_POINTS  crash points (default 1000)
//   PAGEIO_SEED          seed (printed by every run)
#include <pageio/engine/crash_file_system.hpp>
#include <pageio/kv/store.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "support/crash_totals.hpp"
#include "support/test_dir.hpp"

namespace pageio::kv {
namespace {

using namespace std::chrono_literals;

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

using state = std::map<std::string, std::string>;
// One operation: puts (a value) and deletes (none), applied together.
using op = std::vector<std::pair<std::string, std::optional<std::string>>>;

void apply_op(state& s, const op& o) {
  for (const auto& [k, v] : o) {
    if (v) {
      s[k] = *v;
    } else {
      s.erase(k);
    }
  }
}

struct writer_model {
  state acked;                // after the last acknowledged operation
  std::optional<op> pending;  // started, not acknowledged
};

struct totals {
  std::uint64_t points = 0, sequences = 0, cuts_in_recovery = 0, acked = 0, pending_applied = 0;
  std::uint64_t checkpoints = 0, checkpoints_started = 0, recovered_records = 0;
  std::uint64_t buffered_puts = 0, merged_pairs = 0, pairs_rebuilt = 0;  // the write buffer
  double open_s = 0, run_s = 0, close_s = 0, settle_s = 0;  // where the time goes
  crash_report model;
};

class kv_crash_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
  }

  options store_options(const std::filesystem::path& dir, std::mt19937_64& rng) {
    options o;
    o.dir = dir;
    o.fs = fs_;
    o.make_backend = [fs = fs_] { return fs->wrap(make_backend("sync")); };
    o.cache_bytes = (24 + rng() % 40) * 4096;
    o.wal_segment_bytes = 16 * 4096;
    o.wal_buffer_bytes = 64 * 4096;
    o.checkpoint_log_bytes = rng() % 2 ? 32 * 4096 : 0;
    o.checkpoint_interval_ms = 0;
    // The write buffer: off, small (merging all the time), or the default
    // (merged when a checkpoint waits for it); a reopen may pick another.
    const int wb = static_cast<int>(rng() % 4);
    o.write_buffer_bytes = wb == 0 ? 0 : wb == 3 ? o.write_buffer_bytes : (2 + rng() % 30) * 1024;
    return o;
  }

  static std::string key(int w, int k) {
    return std::string("w").append(std::to_string(w)).append("-").append(std::to_string(1000 + k));
  }

  // The store's pairs of writer w.
  static state pairs_of(store& db, int w) {
    state s;
    const std::string from = "w" + std::to_string(w) + "-", to = "w" + std::to_string(w) + ".";
    std::string last;
    for (auto it = db.scan(from, to); it.valid(); it.next()) {
      EXPECT_GT(it.key(), last) << "keys out of order";
      last = it.key();
      s[it.key()] = it.value();
    }
    return s;
  }

  void verify(store& db, std::vector<writer_model>& writers, totals& t, const std::string& trail) {
    const check_report r = db.check();
    if (!r.clean()) {
      std::string s;
      for (const auto& p : r.problems) s += "  page " + std::to_string(p.page) + ": " + p.what + "\n";
      FAIL() << "check after recovery:\n" << s << "history:\n" << trail;
    }
    for (std::size_t w = 0; w < writers.size(); ++w) {
      writer_model& m = writers[w];
      const state got = pairs_of(db, static_cast<int>(w));
      if (got == m.acked) {
        m.pending.reset();
        continue;
      }
      if (m.pending) {
        state with = m.acked;
        apply_op(with, *m.pending);
        if (got == with) {
          m.acked = with;
          m.pending.reset();
          ++t.pending_applied;
          continue;
        }
      }
      std::string diff;
      for (const auto& [k, v] : m.acked) {
        auto it = got.find(k);
        if (it == got.end()) {
          diff += "  " + k + ": acknowledged, missing\n";
        } else if (it->second != v) {
          diff += "  " + k + ": value of " + std::to_string(it->second.size()) + " bytes, acknowledged " +
                  std::to_string(v.size()) + "\n";
        }
      }
      for (const auto& [k, v] : got) {
        if (!m.acked.count(k)) diff += "  " + k + ": present, not acknowledged\n";
      }
      FAIL() << "writer " << w << "'s keys match neither its acknowledged state nor the one with its pending "
             << (m.pending ? "operation of " + std::to_string(m.pending->size()) + " changes" : "(none)") << ":\n"
             << diff << "history:\n"
             << trail;
    }
  }

  void run_until_cut(store& db, std::vector<writer_model>& writers, std::mt19937_64& rng, totals& t,
                     std::string& trail) {
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> acks{0};
    std::mutex mu;
    std::string unexpected;
    auto note_unless_cut = [&](const std::string& what) {
      if (fs_->power_cut()) return;
      std::lock_guard lk(mu);
      if (unexpected.empty()) unexpected = what;
    };
    std::vector<std::thread> ts;
    for (std::size_t w = 0; w < writers.size(); ++w) {
      const std::uint64_t seed = rng();
      ts.emplace_back([&, w, seed] {
        std::mt19937_64 r(seed);
        writer_model& m = writers[w];
        for (std::uint64_t n = 0; !stop.load(); ++n) {
          auto value = [&] {
            const std::size_t len = r() % 12 == 0 ? 5'000 + r() % 20'000 : r() % 200;
            std::string v = std::to_string(seed % 1000) + ":" + std::to_string(n) + ":";
            v.resize(std::max(v.size(), len), static_cast<char>('a' + r() % 26));
            return v;
          };
          op o;
          const int what = static_cast<int>(r() % 10);
          const int nops = what < 2 ? 2 + static_cast<int>(r() % 6) : 1;
          if (what == 9 && r() % 2 == 0) {
            // A run of 15 neighbouring keys deleted at once: empties leaves,
            // which the store unlinks and frees.
            const int from = static_cast<int>(r() % 45);
            for (int k = from; k < from + 15; ++k) o.emplace_back(key(static_cast<int>(w), k), std::nullopt);
          }
          for (int i = 0; i < nops && o.empty(); ++i) {
            const std::string k = key(static_cast<int>(w), static_cast<int>(r() % 60));
            if (r() % 4 == 0) {
              o.emplace_back(k, std::nullopt);
            } else {
              o.emplace_back(k, value());
            }
          }
          m.pending = o;
          try {
            if (o.size() > 1) {
              write_batch b;
              for (const auto& [k, v] : o) {
                if (v) {
                  b.put(k, *v);
                } else {
                  b.del(k);
                }
              }
              db.write(b);
            } else if (o[0].second) {
              db.put(o[0].first, *o[0].second);
            } else {
              db.del(o[0].first);
            }
          } catch (const std::exception& e) {
            note_unless_cut(std::string("a write failed with the power on: ") + e.what());
            return;
          }
          apply_op(m.acked, o);
          m.pending.reset();
          acks.fetch_add(1);
        }
      });
    }
    std::thread checkpointer;
    if (rng() % 3 != 0) {
      const std::uint64_t seed = rng();
      checkpointer = std::thread([&, seed] {
        std::mt19937_64 r(seed);
        while (!stop.load()) {
          std::this_thread::sleep_for(std::chrono::microseconds(50 + r() % 800));
          try {
            ++t.checkpoints_started;
            db.checkpoint();
            ++t.checkpoints;
          } catch (const std::exception& e) {
            note_unless_cut(std::string("a checkpoint failed with the power on: ") + e.what());
            return;
          }
        }
      });
    }
    const std::uint64_t target = rng() % 30;
    const auto extra = std::chrono::microseconds(rng() % 3 == 0 ? rng() % 4000 : 0);
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    while (acks.load() < target && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
    std::this_thread::sleep_for(extra);
    fs_->cut_power();
    stop = true;
    for (auto& th : ts) th.join();
    if (checkpointer.joinable()) checkpointer.join();
    EXPECT_TRUE(unexpected.empty()) << unexpected << "\nhistory:\n" << trail;
    t.acked += acks.load();
    trail += "    " + std::to_string(acks.load()) + " operations acknowledged\n";
  }

  // Opens the store (recovery), possibly cutting the power during it.
  std::unique_ptr<store> open(const std::filesystem::path& dir, std::mt19937_64& rng, bool cut, totals& t,
                              const std::string& trail) {
    const auto began = std::chrono::steady_clock::now();
    struct add_time {
      double& to;
      std::chrono::steady_clock::time_point from;
      ~add_time() { to += std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count(); }
    } timer{t.open_s, began};
    std::thread cutter;
    if (cut) {
      const auto delay = std::chrono::microseconds(rng() % 5000);
      cutter = std::thread([this, delay] {
        std::this_thread::sleep_for(delay);
        fs_->cut_power();
      });
    }
    std::unique_ptr<store> db;
    try {
      db = std::make_unique<store>(store_options(dir, rng));
    } catch (const std::exception& e) {
      if (!cut) ADD_FAILURE() << "recovery failed without a power cut: " << e.what() << "\nhistory:\n" << trail;
    }
    if (cutter.joinable()) cutter.join();
    if (db && fs_->power_cut()) db.reset();
    if (db) {
      const statistics st = db->stats();
      t.recovered_records += st.recovered_records;
      t.pairs_rebuilt += st.buffered_pairs;
    }
    return db;
  }

  void settle(std::mt19937_64& rng, totals& t) {
    const auto began = std::chrono::steady_clock::now();
    pageio::test::add_report(t.model, fs_->settle(rng()));
    t.settle_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    ++t.points;
  }

  std::optional<test::test_dir> dir_;
  std::shared_ptr<crash_file_system> fs_ = std::make_shared<crash_file_system>();
};

TEST_F(kv_crash_test, EveryAcknowledgedWriteSurvivesAndEveryBatchIsAtomic) {
  const std::uint64_t seed = env_u64("PAGEIO_SEED", static_cast<std::uint64_t>(
                                                        std::chrono::system_clock::now().time_since_epoch().count()));
  const std::uint64_t points = env_u64("PAGEIO_CRASH_POINTS", 1000);
  std::cout << "[crash] kv: " << points << " crash points, seed " << seed << "; rerun with PAGEIO_SEED=" << seed
            << std::endl;
  SCOPED_TRACE("PAGEIO_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const auto started = std::chrono::steady_clock::now();
  totals t;
  for (std::uint64_t sequence = 0; t.points < points; ++sequence) {
    SCOPED_TRACE("sequence " + std::to_string(sequence));
    const auto dir = dir_->path() / ("store" + std::to_string(sequence));
    const int crashes = rng() % 10 < 4 ? 1 : 2 + static_cast<int>(rng() % 4);
    std::vector<writer_model> writers(1 + rng() % 3);
    std::string trail;
    for (int c = 0; c < crashes && t.points < points; ++c) {
      const bool cut_in_recovery = c > 0 && rng() % 5 == 0;
      trail += "  round " + std::to_string(c + 1) + (cut_in_recovery ? " (cut during recovery)" : "") + "\n";
      std::unique_ptr<store> db = open(dir, rng, cut_in_recovery, t, trail);
      if (HasFailure()) return;
      if (!db) {
        settle(rng, t);
        ++t.cuts_in_recovery;
        continue;
      }
      if (c > 0) {
        verify(*db, writers, t, trail);
        if (HasFailure()) return;
      }
      auto began = std::chrono::steady_clock::now();
      run_until_cut(*db, writers, rng, t, trail);
      try {
        const statistics st = db->stats();  // counters in memory, whatever the power did
        t.buffered_puts += st.buffered_puts;
        t.merged_pairs += st.merged_pairs;
      } catch (const std::exception&) {
      }
      t.run_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
      began = std::chrono::steady_clock::now();
      db.reset();
      t.close_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
      settle(rng, t);
      if (HasFailure()) return;
    }
    {
      trail += "  final recovery\n";
      std::unique_ptr<store> db = open(dir, rng, false, t, trail);
      ASSERT_TRUE(db);
      verify(*db, writers, t, trail);
      if (HasFailure()) return;
      // A clean close and reopen changes nothing.
      db->close();
      db = open(dir, rng, false, t, trail);
      ASSERT_TRUE(db);
      verify(*db, writers, t, trail);
      if (HasFailure()) return;
    }
    ++t.sequences;
    std::filesystem::remove_all(dir);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "[crash] kv: " << t.points << " crash points in " << t.sequences << " sequences ("
            << t.cuts_in_recovery << " cuts during recovery) in " << secs << " s; " << t.acked
            << " operations acknowledged, " << t.pending_applied << " unacknowledged ones found applied; "
            << t.recovered_records << " records redone or skipped at open; " << t.checkpoints_started
            << " checkpoints started, " << t.checkpoints << " finished before a cut; writes dropped " << t.model.dropped << ", applied " << t.model.applied << ", torn "
            << t.model.torn << "; names undone " << t.model.names_undone << "; write buffer: " << t.buffered_puts
            << " puts buffered, " << t.merged_pairs << " pairs merged, " << t.pairs_rebuilt
            << " pairs rebuilt at open; seconds opening " << t.open_s
            << ", running " << t.run_s << ", closing " << t.close_s << ", settling " << t.settle_s << std::endl;
  EXPECT_GE(t.points, points);
  if (points >= 50) {
    // The runs crossed the write buffer's paths: puts into it, merges out of
    // it, and pairs that only the log held at a power cut.
    EXPECT_GT(t.buffered_puts, 0u);
    EXPECT_GT(t.merged_pairs, 0u);
    EXPECT_GT(t.pairs_rebuilt, 0u);
  }
}

// Pairs in the write buffer exist only in the log: a checkpoint must not
// truncate it past them, nor write a checkpoint record that starts recovery
// after them, even with every page written.
TEST_F(kv_crash_test, ACheckpointKeepsTheLogOfBufferedPairs) {
  std::mt19937_64 rng(1);
  options o = store_options(dir_->path() / "store", rng);
  o.cache_bytes = 24 * 4096;
  o.write_buffer_bytes = 1 << 20;
  o.checkpoint_log_bytes = 0;
  std::map<std::string, std::string> want;
  {
    store db(o);
    for (int k = 0; k < 3000; k += 2) {
      db.put(key(0, k), "tree" + std::to_string(k));
      want[key(0, k)] = "tree" + std::to_string(k);
    }
    db.checkpoint();  // every leaf clean or out of the pool: the next puts are buffered
    for (int k = 1; k < 3000; k += 2) {
      db.put(key(0, k), "buffered" + std::to_string(k));
      want[key(0, k)] = "buffered" + std::to_string(k);
    }
    ASSERT_GT(db.stats().buffered_pairs, 100u);
    db.checkpoint();
    db.checkpoint();  // and its record durable with the next one
    db.sync();
    fs_->cut_power();
  }
  fs_->settle(rng());
  store db(o);
  state got;
  for (auto it = db.scan(); it.valid(); it.next()) got[it.key()] = it.value();
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want);
  EXPECT_TRUE(db.check().clean());
}

// A checkpoint may truncate below a buffered pair once something newer made
// it stale; that something must then be durable first, or a power cut right
// after the truncation keeps neither.
TEST_F(kv_crash_test, ACheckpointMakesWhatSupersededABufferedPairDurableBeforeTruncating) {
  std::mt19937_64 rng(2);
  options o = store_options(dir_->path() / "store", rng);
  o.sync = false;
  o.cache_bytes = 16 * 4096;
  o.write_buffer_bytes = 1 << 20;
  o.checkpoint_log_bytes = 0;
  {
    store db(o);
    db.put("a", "x");
    db.checkpoint();  // the leaf is clean: the next put of k is buffered
    db.put("k", "v1");
    ASSERT_EQ(db.stats().buffered_pairs, 1u);
    db.sync();  // v1 durable
    // Enough other keys that k's leaf leaves the pool and every page of the
    // tree is written, so the pool's checkpoint holds nothing back.
    for (int i = 0; i < 3000; ++i) {
      write_batch b;
      b.put(key(1, i), std::string(200, 'f'));
      db.write(b);
    }
    db.sync();
    const auto before = db.stats().buffered_puts;
    db.put("k", "v2");  // buffered again: v1 is stale, v2 not yet durable
    ASSERT_EQ(db.stats().buffered_puts, before + 1);
    db.checkpoint();
    fs_->cut_power();
    try {
      db.close();
    } catch (const std::exception&) {
    }
  }
  fs_->settle(rng());
  store db(o);
  const auto v = db.get("k");
  EXPECT_TRUE(v == std::optional<std::string>("v1") || v == std::optional<std::string>("v2"))
      << "k = " << v.value_or("<absent>");
}

}  // namespace
}  // namespace pageio::kv
