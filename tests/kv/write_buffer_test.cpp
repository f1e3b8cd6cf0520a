// The write buffer (kv/src/write_buffer.hpp) by itself, and the store with
// puts going into it: puts into leaves that are clean or not in the pool are
// buffered, read back by get and scans at once, made stale by deletes,
// overwrites and batches, rebuilt at reopen from the log, and merged into
// their leaves (also when the buffer is turned off with pairs still in it),
// and changes of one key planned together in one group of the writers' queue.
#include "../../kv/src/store_impl.hpp"
#include "../../kv/src/write_buffer.hpp"

#include <pageio/kv/store.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/test_dir.hpp"

namespace pageio::kv {

struct store_test_access {
  static store::impl& of(store& db) { return *db.impl_; }
};

namespace {

using namespace std::chrono_literals;

// prefix + n, spelled so that GCC 12 does not warn (-Wrestrict, a false
// alarm it gives for "k" + std::to_string(n) inlined into some tests).
std::string numbered(std::string_view prefix, std::uint64_t n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

TEST(write_buffer_test, KeepsTheNewestPairOfAKeyAndTheOldestLsnOfAll) {
  write_buffer b(1 << 20);
  EXPECT_TRUE(b.empty_hint());
  EXPECT_EQ(b.oldest().first, 0u);
  b.put("b", "1", 10);
  b.put("a", "2", 11);
  b.put("c", std::string(100, 'x'), 12);
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(b.oldest(), (std::pair<lsn_t, std::string>{10, "b"}));
  b.put("b", "3", 13);  // newer: b no longer holds the log back
  EXPECT_EQ(b.oldest(), (std::pair<lsn_t, std::string>{11, "a"}));
  EXPECT_EQ(b.get("b"), "3");
  EXPECT_EQ(b.lsn_of("b"), 13u);
  EXPECT_EQ(b.lsn_of("zz"), 0u);
  EXPECT_FALSE(b.get("zz").has_value());

  std::vector<write_buffer::pair> r;
  b.range("a", true, nullptr, r);  // after "a"
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].key, "b");
  EXPECT_EQ(r[1].key, "c");
  r.clear();
  const std::string to = "c";
  b.range("a", false, &to, r);  // [a, c)
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].key, "a");
  EXPECT_EQ(r[1].value, "3");

  const auto run = b.run_from("bb", 10);  // from c on; no wrap within a run
  ASSERT_EQ(run.size(), 1u);
  EXPECT_EQ(run[0].key, "c");
  const auto wrapped = b.run_from("d", 2);  // nothing at or after d: from the smallest
  ASSERT_EQ(wrapped.size(), 2u);
  EXPECT_EQ(wrapped[0].key, "a");
  EXPECT_EQ(wrapped[1].key, "b");

  EXPECT_TRUE(b.drop("a"));
  EXPECT_FALSE(b.drop("a"));
  EXPECT_TRUE(b.drop("b"));
  EXPECT_TRUE(b.drop("c"));
  EXPECT_EQ(b.bytes(), 0u);  // the accounting of overwrites and drops adds up
  EXPECT_TRUE(b.empty_hint());
  EXPECT_EQ(b.oldest().first, 0u);
}

// The oldest pair against a model, through a long run of overwrites and
// drops (stale entries leaving from the front, and all at once when they
// outnumber the rest) and, rarely, a put whose LSN is below the shard's
// newest (no caller does that; it must stay right all the same).
TEST(write_buffer_test, TheOldestPairStaysRightThroughOverwritesDropsAndLateLsns) {
  write_buffer b(64 << 20);
  std::map<std::string, lsn_t> model;
  std::mt19937_64 rng(17);
  lsn_t lsn = 1000;
  auto model_oldest = [&] {
    std::pair<lsn_t, std::string> best{0, {}};
    for (const auto& [k, l] : model) {
      if (best.first == 0 || l < best.first) best = {l, k};
    }
    return best;
  };
  for (int i = 0; i < 60000; ++i) {
    // A few keys that stay (they hold the front), many that churn.
    const std::string k = rng() % 50 == 0 ? "cold" + std::to_string(rng() % 8) : "hot" + std::to_string(rng() % 300);
    const unsigned what = rng() % 10;
    if (what < 6) {
      lsn_t l = ++lsn;
      if (rng() % 500 == 0 && lsn > 1500) l = lsn - 1 - rng() % 400;  // late, and never one in use
      bool used = false;
      for (const auto& [mk, ml] : model) used |= ml == l && mk != k;
      if (used) l = ++lsn;
      b.put(k, "v", l);
      model[k] = l;
    } else if (what < 9) {
      EXPECT_EQ(b.drop(k), model.erase(k) == 1);
    } else if (model.count(k) != 0) {
      const lsn_t l = model[k];
      EXPECT_TRUE(b.drop_if(k, l));
      model.erase(k);
    }
    if (i % 97 == 0) {
      ASSERT_EQ(b.oldest(), model_oldest()) << "after step " << i;
    }
  }
  ASSERT_EQ(b.oldest(), model_oldest());
  while (!model.empty()) {
    ASSERT_EQ(b.oldest(), model_oldest());
    EXPECT_TRUE(b.drop(model_oldest().second));
    model.erase(model_oldest().second);
  }
  EXPECT_EQ(b.oldest().first, 0u);
}

// A run is the n smallest keys at or after its start over all 64 shards,
// in order, with their newest values: checked against a std::map for runs
// of every length from every kind of start.
TEST(write_buffer_test, ARunIsTheSmallestKeysFromItsStartOverEveryShard) {
  write_buffer b(64 << 20);
  std::map<std::string, std::pair<std::string, lsn_t>> oracle;
  std::mt19937_64 rng(7);
  lsn_t lsn = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::string k = numbered("k", rng() % 2000);
    const std::string v = std::to_string(++lsn);
    b.put(k, v, lsn);
    oracle[k] = {v, lsn};
  }
  for (int probe = 0; probe < 200; ++probe) {
    const std::string from = probe % 10 == 0 ? std::string() : numbered("k", rng() % 2100);
    const std::size_t n = 1 + rng() % 70;
    auto it = oracle.lower_bound(from);
    if (it == oracle.end()) it = oracle.begin();  // nothing at or after: from the smallest
    std::vector<write_buffer::pair> want;
    for (; it != oracle.end() && want.size() < n; ++it) want.push_back({it->first, it->second.first, it->second.second});
    const auto run = b.run_from(from, n);
    ASSERT_EQ(run.size(), want.size()) << "from " << from << ", n " << n;
    for (std::size_t i = 0; i < run.size(); ++i) {
      EXPECT_EQ(run[i].key, want[i].key) << "from " << from << ", n " << n << ", at " << i;
      EXPECT_EQ(run[i].value, want[i].value);
      EXPECT_EQ(run[i].lsn, want[i].lsn);
    }
  }
  EXPECT_TRUE(b.run_from("a", 0).empty());
}

// The filter a get asks first: never false for a buffered key, false again
// once every key is dropped, and false for most keys never buffered.
TEST(write_buffer_test, TheFilterHoldsEveryBufferedKeyAndFewOthers) {
  write_buffer b(32 << 20);
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(b.may_hold(numbered("k", i)));
  for (int i = 0; i < 1000; ++i) b.put(numbered("k", i), "v", static_cast<lsn_t>(i + 1));
  for (int i = 0; i < 1000; ++i) b.put(numbered("k", i), "w", static_cast<lsn_t>(i + 1001));  // overwrites
  int false_positives = 0;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(b.may_hold(numbered("k", i))) << i;
    ASSERT_EQ(b.get(numbered("k", i)), "w");
    false_positives += b.may_hold(numbered("absent", i)) ? 1 : 0;
  }
  EXPECT_LT(false_positives, 50);  // 1,000 keys in 1 Mi slots: a handful at most
  for (int i = 0; i < 1000; i += 2) ASSERT_TRUE(b.drop(numbered("k", i)));
  for (int i = 1; i < 1000; i += 2) ASSERT_TRUE(b.may_hold(numbered("k", i))) << i;
  for (int i = 1; i < 1000; i += 2) ASSERT_TRUE(b.drop_if(numbered("k", i), static_cast<lsn_t>(i + 1001)));
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(b.may_hold(numbered("k", i))) << i;
  write_buffer off(0);  // off: recovery may still fill it
  off.put("k", "v", 1);
  EXPECT_TRUE(off.may_hold("k"));
  EXPECT_EQ(off.get("k"), "v");
}

// More keys on one filter slot than a one-byte count holds: the count
// stops at its top and stays there, so no buffered key is ever missed.
TEST(write_buffer_test, AFilterSlotWithMoreKeysThanItCountsSaysMaybeForever) {
  write_buffer b(0);  // the smallest filter: 64 Ki slots
  std::vector<std::string> keys;
  const std::size_t target = b.filter_slot("k0");
  for (std::uint64_t i = 0; keys.size() < 300; ++i) {
    std::string k = numbered("k", i);
    if (b.filter_slot(k) == target) keys.push_back(std::move(k));
  }
  lsn_t lsn = 0;
  for (const auto& k : keys) b.put(k, "v", ++lsn);
  for (std::size_t i = 0; i < 200; ++i) ASSERT_TRUE(b.drop(keys[i]));
  for (std::size_t i = 200; i < keys.size(); ++i) {
    ASSERT_TRUE(b.may_hold(keys[i])) << i;  // a count that wrapped would read 300 - 200 - 256 < 0
    ASSERT_EQ(b.get(keys[i]), "v") << i;
  }
  for (std::size_t i = 200; i < keys.size(); ++i) ASSERT_TRUE(b.drop(keys[i]));
  EXPECT_TRUE(b.may_hold(keys[0]));  // sticky: "maybe", and the map says no
  EXPECT_EQ(b.get(keys[0]), std::nullopt);
  EXPECT_TRUE(b.empty_hint());
}

TEST(write_buffer_test, RoomCountsEveryPairsCostAgainstTheLimit) {
  const std::size_t one = write_buffer::cost(16, 100);
  write_buffer b(3 * one);
  EXPECT_TRUE(b.room_hint(16, 100));
  b.put("k000000000000001", std::string(100, 'v'), 1);
  b.put("k000000000000002", std::string(100, 'v'), 2);
  b.put("k000000000000003", std::string(100, 'v'), 3);
  EXPECT_EQ(b.bytes(), 3 * one);
  EXPECT_FALSE(b.room_hint(16, 100));
  EXPECT_FALSE(write_buffer(0).room_hint(1, 0));  // off
}

class kv_write_buffer_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
  }
  options opts() const {
    options o;
    o.dir = dir_->path() / "db";
    o.cache_bytes = 48 * 4608;  // 48 frames: most leaves are not in the pool
    o.checkpoint_interval_ms = 0;
    o.sync = false;
    return o;
  }
  static std::string key_of(int i) {
    char k[32];
    std::snprintf(k, sizeof k, "key%08d", i);
    return k;
  }
  static std::vector<std::pair<std::string, std::string>> all(store& db, std::optional<std::string> from = {},
                                                              std::optional<std::string> to = {},
                                                              std::uint64_t limit = 0) {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto it = db.scan(from, to, limit); it.valid(); it.next()) out.emplace_back(it.key(), it.value());
    return out;
  }
  static std::vector<std::pair<std::string, std::string>> want(const std::map<std::string, std::string>& m,
                                                               std::optional<std::string> from = {},
                                                               std::optional<std::string> to = {},
                                                               std::uint64_t limit = 0) {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto it = from ? m.lower_bound(*from) : m.begin(); it != m.end() && (!to || it->first < *to); ++it) {
      if (limit != 0 && out.size() == limit) break;
      out.emplace_back(*it);
    }
    return out;
  }
  // Loads keys 0, 2, 4, ... and checkpoints: every leaf is clean or gone
  // from the pool, so the next puts are buffered.
  static void load(store& db, std::map<std::string, std::string>& model, int n) {
    for (int i = 0; i < n; i += 2) {
      db.put(key_of(i), "tree" + std::to_string(i));
      model[key_of(i)] = "tree" + std::to_string(i);
    }
    db.checkpoint();
  }
  void expect_matches(store& db, const std::map<std::string, std::string>& model) {
    for (const auto& [k, v] : model) ASSERT_EQ(db.get(k), v) << k;
    EXPECT_EQ(all(db), want(model));
    std::mt19937_64 rng(7);
    for (int i = 0; i < 40; ++i) {
      std::string a = key_of(static_cast<int>(rng() % 4200)), b = key_of(static_cast<int>(rng() % 4200));
      if (b < a) std::swap(a, b);
      const std::uint64_t limit = rng() % 2 ? 0 : 1 + rng() % 30;
      ASSERT_EQ(all(db, a, b, limit), want(model, a, b, limit)) << a << " " << b << " " << limit;
    }
    const check_report r = db.check();
    EXPECT_TRUE(r.clean());
    EXPECT_EQ(r.keys, model.size());
  }
  std::optional<test::test_dir> dir_;
};

TEST_F(kv_write_buffer_test, PutsIntoCleanOrAbsentLeavesAreBufferedAndReadBackAtOnce) {
  std::map<std::string, std::string> model;
  store db(opts());
  load(db, model, 4000);
  const auto before = db.stats();
  // New keys between the old ones, and overwrites of old ones.
  for (int i = 1; i < 4000; i += 4) {
    db.put(key_of(i), "buf" + std::to_string(i));
    model[key_of(i)] = "buf" + std::to_string(i);
  }
  for (int i = 0; i < 4000; i += 8) {
    db.put(key_of(i), "over" + std::to_string(i));
    model[key_of(i)] = "over" + std::to_string(i);
  }
  const auto after = db.stats();
  EXPECT_GT(after.buffered_puts - before.buffered_puts, 500u);
  EXPECT_GT(after.buffered_pairs, 0u);
  expect_matches(db, model);

  // A key only in the buffer is present: its delete counts, once.
  std::string only_buffered;
  for (int i = 1; i < 4000 && only_buffered.empty(); i += 4) {
    const std::string k = key_of(i);
    db.put(k, "again");  // buffered again or in the tree: either way present
    model[k] = "again";
    if (db.stats().buffered_pairs > 0) only_buffered = k;
  }
  ASSERT_FALSE(only_buffered.empty());
  EXPECT_NE(db.del(only_buffered), 0u);
  model.erase(only_buffered);
  EXPECT_FALSE(db.get(only_buffered).has_value());
  EXPECT_EQ(db.del(only_buffered), 0u);

  // A batch over buffered keys: its puts and deletes win over the buffer.
  write_batch b;
  for (int i = 5; i < 400; i += 4) {
    if (i % 8 == 1) {
      b.del(key_of(i));
      model.erase(key_of(i));
    } else {
      b.put(key_of(i), "batch");
      model[key_of(i)] = "batch";
    }
  }
  db.write(b);
  expect_matches(db, model);
}

TEST_F(kv_write_buffer_test, BufferedPairsSurviveAReopenAndAreMergedWhenTheBufferIsTurnedOff) {
  std::map<std::string, std::string> model;
  {
    store db(opts());
    load(db, model, 4000);
    for (int i = 1; i < 4000; i += 2) {
      db.put(key_of(i), "odd" + std::to_string(i));
      model[key_of(i)] = "odd" + std::to_string(i);
    }
    ASSERT_GT(db.stats().buffered_pairs, 0u);
    db.close();  // the pairs stay in the log, not merged
  }
  {
    store db(opts());
    EXPECT_GT(db.stats().buffered_pairs, 0u);  // rebuilt from the log
    expect_matches(db, model);
  }
  options off = opts();
  off.write_buffer_bytes = 0;
  store db(off);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (db.stats().buffered_pairs != 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(db.stats().buffered_pairs, 0u);
  EXPECT_GT(db.stats().merged_pairs, 0u);
  expect_matches(db, model);
  // Nothing buffers while it is off.
  db.put(key_of(3), "off");
  model[key_of(3)] = "off";
  EXPECT_EQ(db.stats().buffered_puts, 0u);
  expect_matches(db, model);
}

TEST_F(kv_write_buffer_test, ASmallBufferMergesWhileWritersAndReadersRun) {
  options o = opts();
  o.write_buffer_bytes = 64 << 10;  // about 200 pairs: merges all the time
  std::map<std::string, std::string> model;
  store db(o);
  load(db, model, 40000);  // 20,000 keys on some 150 leaves: most not in the pool
  constexpr int writers = 4;
  std::vector<std::map<std::string, std::string>> theirs(writers);
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int w = 0; w < writers; ++w) {
    ts.emplace_back([&, w] {
      std::mt19937_64 rng(100 + w);
      for (int n = 0; n < 1500; ++n) {
        const int i = static_cast<int>(rng() % 10000) * writers + w;  // keys of its own
        const std::string v = numbered("w", w) + "-" + std::to_string(n);
        if (rng() % 5 == 0) {
          db.del(key_of(i));
          theirs[w].erase(key_of(i));
          theirs[w][key_of(i) + "!"] = "";  // a marker: deleted (see below)
        } else {
          db.put(key_of(i), v);
          theirs[w][key_of(i)] = v;
          theirs[w].erase(key_of(i) + "!");
        }
        // Read your own write, whatever the merger does meanwhile.
        const auto got = db.get(key_of(i));
        if (theirs[w].count(key_of(i)) ? got != theirs[w][key_of(i)] : got.has_value()) ++bad;
      }
    });
  }
  ts.emplace_back([&] {
    std::mt19937_64 rng(9);
    while (!done.load()) {
      const auto a = key_of(static_cast<int>(rng() % 40000));
      std::string last;
      for (auto it = db.scan(a, std::nullopt, 50); it.valid(); it.next()) {
        if (!last.empty() && it.key() <= last) ++bad;  // order, no duplicates
        last = it.key();
      }
    }
  });
  for (int w = 0; w < writers; ++w) ts[static_cast<std::size_t>(w)].join();
  done = true;
  ts.back().join();
  EXPECT_EQ(bad.load(), 0);
  for (int w = 0; w < writers; ++w) {
    for (const auto& [k, v] : theirs[w]) {
      if (k.back() == '!') {
        model.erase(k.substr(0, k.size() - 1));
      } else {
        model[k] = v;
      }
    }
  }
  const auto st = db.stats();
  EXPECT_GT(st.merged_pairs, 0u) << st.buffered_puts << " buffered puts, " << st.buffered_pairs << " pairs, "
                                 << st.buffered_bytes << " bytes";
  expect_matches(db, model);
}

// With the smallest log segments a store takes, a record holds about one
// page: the merger must still merge (in records the log takes), or the
// buffer never empties and the log is never truncated.
TEST_F(kv_write_buffer_test, TheMergerMergesWithTheSmallestLogSegments) {
  options o = opts();
  o.wal_segment_bytes = 8192;
  o.write_buffer_bytes = 0;  // off: what recovery rebuilds is merged
  std::map<std::string, std::string> model;
  {
    options on = opts();
    on.wal_segment_bytes = 8192;
    store db(on);
    load(db, model, 4000);
    for (int i = 1; i < 4000; i += 2) {
      db.put(key_of(i), std::string(100, 'm'));
      model[key_of(i)] = std::string(100, 'm');
    }
    ASSERT_GT(db.stats().buffered_pairs, 500u);
  }
  store db(o);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (db.stats().buffered_pairs != 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(db.stats().buffered_pairs, 0u);
  expect_matches(db, model);
  const lsn_t c = db.checkpoint();
  EXPECT_GT(c, 0u);
  EXPECT_EQ(db.stats().checkpoint_lsn, c);
}

// The write buffer inside one group of the writers' queue: changes of the
// same key planned together by the leader, in an order no public call can
// pin down (it depends on who queues behind whom), set up through the
// store's internals.
using kv_write_buffer_group_test = kv_write_buffer_test;

// A batch's put of K, then the merger's run holding K's older buffered pair,
// in one group: the merge must not put the older value back.
TEST_F(kv_write_buffer_group_test, AMergeAfterAPutOfItsKeyInTheSameGroupLeavesThePut) {
  {
    store db(opts());
    db.put("a", "x");
    db.checkpoint();    // the leaf is clean: the next put is buffered
    db.put("k", "v1");
    ASSERT_EQ(db.stats().buffered_pairs, 1u);
    store::impl& s = store_test_access::of(db);
    const auto run = s.wbuf->run_from("k", 1);
    ASSERT_EQ(run.size(), 1u);
    write_batch b;
    b.put("k", "v2");
    store::impl::pending_write batch(&b, {}, {}, 2);
    store::impl::pending_write merge(nullptr, {}, {}, 3, &run);
    s.apply_writes({&batch, &merge});
    ASSERT_FALSE(batch.error);
    ASSERT_FALSE(merge.error);
    EXPECT_EQ(db.get("k"), "v2");
    EXPECT_EQ(db.stats().buffered_pairs, 0u);
    EXPECT_EQ(db.stats().merged_pairs, 0u);  // the merge found its pair stale
  }
  store db(opts());
  EXPECT_EQ(db.get("k"), "v2");  // and so does redo
}

// Two deletes of a key that is in the tree and (newer) in the buffer, in one
// group: the first deletes it, the second finds nothing.
TEST_F(kv_write_buffer_group_test, TheSecondDeleteOfABufferedKeyInOneGroupFindsNothing) {
  store db(opts());
  db.put("k", "v0");
  db.checkpoint();
  db.put("k", "v1");  // buffered over the tree's v0
  ASSERT_EQ(db.stats().buffered_pairs, 1u);
  store::impl& s = store_test_access::of(db);
  store::impl::pending_write first(nullptr, "k", {}, 1), second(nullptr, "k", {}, 1);
  s.apply_writes({&first, &second});
  EXPECT_NE(first.lsn, 0u);
  EXPECT_EQ(second.lsn, 0u);
  EXPECT_FALSE(db.get("k").has_value());
}

}  // namespace
}  // namespace pageio::kv
