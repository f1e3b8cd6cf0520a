// pageio::kv::store on real files: puts, gets, deletes, batches and scans
// against a std::map across reopens; splits down to a deep tree; values in
// overflow pages; space reuse; recovery from the log alone; the lock file;
// errors that change nothing; concurrent writers and readers.
#include <pageio/kv/store.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/test_dir.hpp"

namespace pageio::kv {
namespace {

class kv_store_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
  }
  options opts(const std::string& name = "db") const {
    options o;
    o.dir = dir_->path() / name;
    o.cache_bytes = 4u << 20;
    o.checkpoint_interval_ms = 0;
    return o;
  }
  static std::string key_of(int i) {
    char k[32];
    std::snprintf(k, sizeof k, "key%08d", i);
    return k;
  }
  std::optional<test::test_dir> dir_;
};

std::vector<std::pair<std::string, std::string>> all(store& db, std::optional<std::string> from = std::nullopt,
                                                     std::optional<std::string> to = std::nullopt,
                                                     std::uint64_t limit = 0) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto it = db.scan(from, to, limit); it.valid(); it.next()) out.emplace_back(it.key(), it.value());
  return out;
}

TEST_F(kv_store_test, PutGetDeleteAndOverwrite) {
  store db(opts());
  EXPECT_FALSE(db.get("a").has_value());
  const lsn_t l1 = db.put("a", "1");
  const lsn_t l2 = db.put("b", "2");
  EXPECT_GT(l2, l1);
  EXPECT_EQ(db.get("a"), "1");
  db.put("a", "one");
  EXPECT_EQ(db.get("a"), "one");
  EXPECT_GT(db.del("a"), l2);
  EXPECT_FALSE(db.get("a").has_value());
  EXPECT_EQ(db.del("a"), 0u);  // absent: nothing logged
  EXPECT_EQ(db.get("b"), "2");
  db.put("empty", "");
  EXPECT_EQ(db.get("empty"), "");
}

TEST_F(kv_store_test, BadArgumentsChangeNothingAndSaySo) {
  store db(opts());
  db.put("k", "v");
  const lsn_t before = db.stats().last_lsn;
  EXPECT_THROW(db.put("", "v"), std::invalid_argument);
  EXPECT_THROW(db.put(std::string(1025, 'k'), "v"), std::invalid_argument);
  EXPECT_NO_THROW(db.put(std::string(1024, 'k'), "v"));
  const std::string too_big((64u << 20) + 1, 'x');
  try {
    db.put("big", too_big);
    FAIL() << "a value over 64 MiB was taken";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("64 MiB"), std::string::npos) << e.what();
  }
  write_batch b;
  b.put("fine", "1");
  b.put("", "bad");
  EXPECT_THROW(db.write(b), std::invalid_argument);
  EXPECT_FALSE(db.get("fine").has_value());  // all or nothing, even before logging
  EXPECT_EQ(db.stats().last_lsn, before + 1);  // only the 1024-byte key's put
  db.close();
  for (auto call : {std::function<void()>([&] { db.put("k", "v"); }), std::function<void()>([&] { db.get("k"); })}) {
    try {
      call();
      ADD_FAILURE() << "a closed store took a call";
    } catch (const pageio::error& e) {
      EXPECT_EQ(e.code(), pageio::errc::closed) << e.what();
    }
  }
}

TEST_F(kv_store_test, ManyKeysSplitIntoADeepTreeAndScanInOrder) {
  store db(opts());
  constexpr int n = 30'000;
  std::vector<int> order(n);
  for (int i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  {
    write_batch b;
    for (int i : order) {
      b.put(key_of(i), std::string(100, static_cast<char>('a' + i % 26)));
      if (b.size() == 100) {
        db.write(b);
        b.clear();
      }
    }
    db.write(b);
  }
  EXPECT_GE(db.stats().height, 3u);
  for (int i = 0; i < n; i += 97) ASSERT_EQ(db.get(key_of(i)), std::string(100, static_cast<char>('a' + i % 26)));
  const auto everything = all(db);
  ASSERT_EQ(everything.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) ASSERT_EQ(everything[i].first, key_of(i));
  const auto some = all(db, key_of(100), key_of(200));
  ASSERT_EQ(some.size(), 100u);
  EXPECT_EQ(some.front().first, key_of(100));
  EXPECT_EQ(some.back().first, key_of(199));
  EXPECT_EQ(all(db, key_of(5), std::nullopt, 7).size(), 7u);
  EXPECT_TRUE(all(db, key_of(200), key_of(100)).empty());
  const check_report r = db.check();
  EXPECT_TRUE(r.clean()) << r.problems.front().page << ": " << r.problems.front().what;
  EXPECT_EQ(r.keys, static_cast<std::uint64_t>(n));
  EXPECT_EQ(r.height, db.stats().height);
  EXPECT_EQ(1 + r.leaf_pages + r.internal_pages + r.overflow_pages + r.trunk_pages + r.free_pages, r.pages);
}

std::string describe(const check_report& r) {
  std::string s;
  for (const auto& p : r.problems) s += "page " + std::to_string(p.page) + ": " + p.what + "\n";
  return s;
}

TEST_F(kv_store_test, AFlippedBitIsReportedByCheckAndByTheGetThatReadsIt) {
  {
    store db(opts());
    write_batch b;
    for (int i = 0; i < 3'000; ++i) {
      b.put(key_of(i), "value of " + key_of(i));
      if (b.size() == 100) {
        db.write(b);
        b.clear();
      }
    }
    ASSERT_TRUE(db.check().clean());
  }
  // One bit of page 3 (a tree page: the store allocates from the front),
  // in the middle of its bytes, flipped on disk.
  {
    const auto path = dir_->path() / "db" / "data";
    std::FILE* f = std::fopen(path.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    const long at = 3 * 4096 + 2000;
    std::fseek(f, at, SEEK_SET);
    const int c = std::fgetc(f);
    std::fseek(f, at, SEEK_SET);
    std::fputc(c ^ 0x10, f);
    std::fclose(f);
  }
  store db(opts());
  const check_report r = db.check();
  ASSERT_FALSE(r.clean());
  bool named = false;
  for (const auto& p : r.problems) named = named || (p.page == 3 && p.what.find("fails its check") != std::string::npos);
  EXPECT_TRUE(named) << describe(r);
  int errors = 0;
  for (int i = 0; i < 3'000; ++i) {
    try {
      const auto v = db.get(key_of(i));
      ASSERT_EQ(v, "value of " + key_of(i));  // never wrong data
    } catch (const std::system_error& e) {
      EXPECT_NE(std::string(e.what()).find("page 3"), std::string::npos) << e.what();
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
}

TEST_F(kv_store_test, ASequentialLoadFillsItsPages) {
  options o = opts();
  o.sync = false;
  store db(o);
  constexpr int n = 10'000;
  write_batch b;
  for (int i = 0; i < n; ++i) {
    b.put(key_of(i), std::string(100, 'v'));
    if (b.size() == 50) {
      db.write(b);
      b.clear();
    }
  }
  db.write(b);
  // 33 cells of 120 bytes fit a page: splits at the end keep pages full
  // (half-full pages would take twice as many).
  const check_report r = db.check();
  ASSERT_TRUE(r.clean()) << describe(r);
  EXPECT_EQ(r.keys, static_cast<std::uint64_t>(n));
  EXPECT_LE(r.leaf_pages, static_cast<std::uint64_t>(n / 33 / 0.9)) << r.leaf_pages << " leaves";
  // Random inserts afterwards still split evenly and stay correct.
  std::mt19937 rng(5);
  for (int i = 0; i < 2'000; ++i) db.put(key_of(static_cast<int>(rng() % n)) + "x", "y");
  EXPECT_TRUE(db.check().clean());
}

TEST_F(kv_store_test, DeletesFreeTheLeavesTheyEmptyAndInsertsReuseThem) {
  options o = opts();
  o.sync = false;
  store db(o);
  constexpr int n = 10'000;
  write_batch b;
  auto flush = [&] {
    db.write(b);
    b.clear();
  };
  for (int i = 0; i < n; ++i) {
    b.put(key_of(i), std::string(100, 'v'));
    if (b.size() == 50) flush();
  }
  flush();
  const auto loaded = db.stats();
  for (int i = 2'000; i < 8'000; ++i) {
    b.del(key_of(i));
    if (b.size() == 50) flush();
  }
  flush();
  const check_report r = db.check();
  ASSERT_TRUE(r.clean()) << describe(r);
  EXPECT_EQ(r.keys, static_cast<std::uint64_t>(n - 6'000));
  // 6,000 keys held about 180 full leaves: most of them are free now.
  EXPECT_GE(db.stats().free_pages, 150u) << "free pages after the deletes";
  EXPECT_EQ(db.stats().pages, loaded.pages);
  // Inserting into the emptied range takes freed pages before new ones.
  for (int i = 2'000; i < 8'000; ++i) {
    b.put(key_of(i) + "b", std::string(100, 'w'));
    if (b.size() == 50) flush();
  }
  flush();
  EXPECT_LE(db.stats().pages, loaded.pages + 200);  // half-full pages from random splits, not 2x
  EXPECT_TRUE(db.check().clean());
  EXPECT_EQ(all(db).size(), static_cast<std::size_t>(n));
}

TEST_F(kv_store_test, LargestKeysSplitToo) {
  options o = opts();
  o.sync = false;
  store db(o);
  std::map<std::string, std::string> model;
  std::mt19937 rng(3);
  for (int i = 0; i < 400; ++i) {
    std::string k(1024, 'k');
    for (int j = 0; j < 8; ++j) k[1016 + j] = static_cast<char>('a' + rng() % 26);
    const std::string v(rng() % 200, 'v');
    db.put(k, v);
    model[k] = v;
  }
  const auto everything = all(db);
  ASSERT_EQ(everything.size(), model.size());
  auto m = model.begin();
  for (const auto& [k, v] : everything) {
    ASSERT_EQ(k, m->first);
    ASSERT_EQ(v, m->second);
    ++m;
  }
}

TEST_F(kv_store_test, LargeValuesLiveInOverflowPagesAndTheirPagesAreReused) {
  store db(opts());
  std::string v1(5000, 'a');
  std::string v3((3u << 20) + 123, 'c');
  for (std::size_t i = 0; i < v3.size(); i += 4096) v3[i] = static_cast<char>(i / 4096);
  db.put("one", v1);
  db.put("three", v3);
  EXPECT_EQ(db.get("one"), v1);
  EXPECT_EQ(db.get("three"), v3);
  // An overwrite writes the new chain before it frees the old one (the old
  // value stays intact on disk until the record that replaces it), so the
  // file holds two chains, and no more: each overwrite reuses the chain the
  // one before it freed.
  v3[0] = 'x';
  db.put("three", v3);
  const auto pages_with_two_chains = db.stats().pages;
  for (int round = 1; round < 6; ++round) {
    v3[round] = 'x';
    db.put("three", v3);
  }
  EXPECT_EQ(db.get("three"), v3);
  EXPECT_LE(db.stats().pages, pages_with_two_chains + 2);
  db.del("three");
  EXPECT_FALSE(db.get("three").has_value());
  EXPECT_GE(db.stats().free_pages, (3u << 20) / 4096);
  db.close();
  store again(opts());
  EXPECT_EQ(again.get("one"), v1);
  EXPECT_FALSE(again.get("three").has_value());
}

TEST_F(kv_store_test, OverwritesDoNotGrowTheFile) {
  options o = opts();
  o.sync = false;
  store db(o);
  for (int i = 0; i < 2'000; ++i) db.put(key_of(i), std::string(100, 'a'));
  const auto pages = db.stats().pages;
  std::mt19937 rng(9);
  write_batch b;
  for (int n = 0; n < 40'000; ++n) {
    b.put(key_of(static_cast<int>(rng() % 2'000)), std::string(50 + rng() % 100, 'b'));
    if (b.size() == 200) {
      db.write(b);
      b.clear();
    }
  }
  EXPECT_LE(db.stats().pages, pages * 2);
}

TEST_F(kv_store_test, ASecondOpenerIsRefusedAtOnce) {
  store db(opts());
  try {
    store second(opts());
    FAIL() << "two stores opened one directory";
  } catch (const locked_error& e) {
    EXPECT_NE(std::string(e.what()).find("LOCK"), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), pageio::errc::locked);
  }
  db.put("still", "works");
  EXPECT_EQ(db.get("still"), "works");
}

TEST_F(kv_store_test, RecoveryRedoesFromTheLogAlone) {
  // A copy of the directory taken while the store is open, after durable
  // puts and before any page is written back: the data file holds nothing,
  // the log everything.
  std::map<std::string, std::string> model;
  {
    options o = opts();
    o.sync = false;  // each record is appended; sync() below makes them durable
    store db(o);
    for (int i = 0; i < 3'000; ++i) {
      const std::string v(10 + i % 300, static_cast<char>('a' + i % 26));
      db.put(key_of(i * 7 % 3'000), v);
      model[key_of(i * 7 % 3'000)] = v;
    }
    db.put("big", std::string(100'000, 'B'));
    model["big"] = std::string(100'000, 'B');
    db.del(key_of(5));
    model.erase(key_of(5));
    db.sync();
    // The log prepares its next segment in the background (a .tmp file
    // renamed into place), so a copy can meet a name that just went away:
    // then it starts over. Temporary files are not copied.
    const auto from = dir_->path() / "db", to = dir_->path() / "copy";
    for (int attempt = 0;; ++attempt) {
      std::filesystem::remove_all(to);
      try {
        for (const auto& e : std::filesystem::recursive_directory_iterator(from)) {
          const auto rel = std::filesystem::relative(e.path(), from);
          if (e.is_directory()) {
            std::filesystem::create_directories(to / rel);
          } else if (e.path().extension() != ".tmp") {
            std::filesystem::create_directories((to / rel).parent_path());
            std::filesystem::copy_file(e.path(), to / rel);
          }
        }
        break;
      } catch (const std::filesystem::filesystem_error&) {
        ASSERT_LT(attempt, 20) << "the store's files kept changing under the copy";
      }
    }
  }
  std::filesystem::remove(dir_->path() / "copy" / "LOCK");
  store db(opts("copy"));
  EXPECT_GT(db.stats().recovered_records, 3'000u);
  const auto everything = all(db);
  ASSERT_EQ(everything.size(), model.size());
  auto m = model.begin();
  for (const auto& [k, v] : everything) {
    ASSERT_EQ(k, m->first);
    ASSERT_EQ(v, m->second);
    ++m;
  }
}

TEST_F(kv_store_test, RandomOperationsMatchAMapAcrossReopens) {
  std::map<std::string, std::string> model;
  std::mt19937_64 rng(12345);
  auto random_key = [&] { return key_of(static_cast<int>(rng() % 5'000)); };
  auto random_value = [&] {
    const std::size_t len = rng() % 10 == 0 ? 1'000 + rng() % 9'000 : rng() % 300;
    std::string v(len, '\0');
    for (auto& c : v) c = static_cast<char>(rng());
    return v;
  };
  for (int session = 0; session < 4; ++session) {
    options o = opts();
    o.sync = false;  // durability is the crash test's; here, what a clean reopen reads back
    store db(o);
    for (int step = 0; step < 3'000; ++step) {
      const int what = static_cast<int>(rng() % 100);
      if (what < 55) {
        const std::string k = random_key(), v = random_value();
        db.put(k, v);
        model[k] = v;
      } else if (what < 75) {
        const std::string k = random_key();
        const lsn_t l = db.del(k);
        EXPECT_EQ(l != 0, model.erase(k) == 1);
      } else if (what < 85) {
        write_batch b;
        const int n = 1 + static_cast<int>(rng() % 20);
        for (int i = 0; i < n; ++i) {
          const std::string k = random_key();
          if (rng() % 3 == 0) {
            b.del(k);
            model.erase(k);
          } else {
            const std::string v = random_value();
            b.put(k, v);
            model[k] = v;
          }
        }
        db.write(b);
      } else if (what < 95) {
        const std::string k = random_key();
        const auto got = db.get(k);
        const auto it = model.find(k);
        ASSERT_EQ(got.has_value(), it != model.end()) << k;
        if (got) {
          ASSERT_EQ(*got, it->second) << k;
        }
      } else {
        std::string a = random_key(), b = random_key();
        if (b < a) std::swap(a, b);
        const std::uint64_t limit = rng() % 2 ? 0 : 1 + rng() % 50;
        const auto got = all(db, a, b, limit);
        std::vector<std::pair<std::string, std::string>> want;
        for (auto it = model.lower_bound(a); it != model.end() && it->first < b; ++it) {
          if (limit && want.size() == limit) break;
          want.emplace_back(*it);
        }
        ASSERT_EQ(got, want);
      }
      if (step == 1'500 && session % 2 == 1) db.checkpoint();
    }
  }
  store db(opts());
  const check_report r = db.check();
  EXPECT_TRUE(r.clean()) << describe(r);
  EXPECT_EQ(r.keys, model.size());  // the tree's and the write buffer's
  const auto everything = all(db);
  ASSERT_EQ(everything.size(), model.size());
  const std::vector<std::pair<std::string, std::string>> want(model.begin(), model.end());
  EXPECT_TRUE(everything == want);
}

TEST_F(kv_store_test, ConcurrentWritersAndReaders) {
  options o = opts();
  store db(o);
  constexpr int writers = 4, per_writer = 800;
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < per_writer; ++i) db.put(key_of(w * per_writer + i), std::to_string(w * per_writer + i));
    });
  }
  std::thread reader([&] {
    std::mt19937 rng(1);
    while (!done.load()) {
      const int i = static_cast<int>(rng() % (writers * per_writer));
      const auto v = db.get(key_of(i));
      if (v && *v != std::to_string(i)) ++bad;
      std::string last;
      for (auto it = db.scan(std::nullopt, std::nullopt, 50); it.valid(); it.next()) {
        if (!last.empty() && it.key() <= last) ++bad;
        last = it.key();
      }
    }
  });
  for (auto& t : threads) t.join();
  done = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0);
  const auto everything = all(db);
  ASSERT_EQ(everything.size(), static_cast<std::size_t>(writers * per_writer));
  for (const auto& [k, v] : everything) ASSERT_EQ(k, key_of(std::stoi(v)));
}

// Leaves split while readers walk to them: a split of a leaf whose parent
// has room runs beside readers and other writers (under tree_mu shared, the
// parent's and the leaf's latches exclusive), so a reader that read the
// parent before the split must not reach the leaf after it and miss a key
// that moved to the new page. Writers put random keys (splits all over the
// tree, several under one parent at once) and publish each key once its put
// has returned; readers check that every published key is found by get and
// by a scan that started after it was published.
TEST_F(kv_store_test, KeysStayVisibleWhileTheirLeavesSplitBesideReaders) {
  options o = opts();
  o.sync = false;
  o.cache_bytes = 64u << 20;
  store db(o);
  constexpr int writers = 8, per_writer = 6000, total = writers * per_writer;
  // A key per slot, in a random order of the key space.
  std::vector<int> order(total);
  for (int i = 0; i < total; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  std::vector<std::atomic<bool>> published(total);
  std::atomic<int> writers_left{writers};
  std::atomic<int> missing_get{0}, missing_scan{0}, disorder{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (int i = w; i < total; i += writers) {
        db.put(key_of(order[i]), std::string(90, static_cast<char>('a' + order[i] % 26)));
        published[order[i]].store(true, std::memory_order_release);
      }
      writers_left.fetch_sub(1);
    });
  }
  for (int r = 0; r < 4; ++r) {
    threads.emplace_back([&, r] {
      std::mt19937 rng(static_cast<unsigned>(100 + r));
      while (writers_left.load() > 0) {
        for (int n = 0; n < 200; ++n) {
          const int k = static_cast<int>(rng() % total);
          if (published[k].load(std::memory_order_acquire) && !db.get(key_of(k))) ++missing_get;
        }
        // A scan of a random stretch of 300 keys, against what was published
        // before it began.
        const int from = static_cast<int>(rng() % total);
        std::vector<char> before(300, 0);
        for (int i = 0; i < 300 && from + i < total; ++i) {
          before[i] = published[from + i].load(std::memory_order_acquire) ? 1 : 0;
        }
        std::vector<char> seen(300, 0);
        std::string last;
        for (auto it = db.scan(key_of(from), key_of(from + 300), 0); it.valid(); it.next()) {
          if (!last.empty() && it.key() <= last) ++disorder;
          last = it.key();
          seen[std::stoi(last.substr(3)) - from] = 1;
        }
        for (int i = 0; i < 300; ++i) {
          if (before[i] && !seen[i]) ++missing_scan;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(missing_get.load(), 0) << "published keys a get did not find";
  EXPECT_EQ(missing_scan.load(), 0) << "published keys a later scan did not return";
  EXPECT_EQ(disorder.load(), 0);
  EXPECT_EQ(all(db).size(), static_cast<std::size_t>(total));
  const auto st = db.stats();
  EXPECT_GT(st.pages, 200u) << "the test needs many splits";
}

// Readers that never pause must not keep the queue's leader out: it holds
// tree_mu exclusively for every split, and a lock that lets each new reader
// in while a writer waits would keep it waiting as long as they read.
TEST_F(kv_store_test, SplitsAreNotStarvedByReadersThatNeverPause) {
  options o = opts();
  o.sync = false;
  store db(o);
  for (int i = 0; i < 200; ++i) db.put(key_of(i), std::string(100, 'v'));
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int r = 0; r < 6; ++r) {
    readers.emplace_back([&, r] {
      std::mt19937 rng(static_cast<unsigned>(r));
      while (!stop.load(std::memory_order_relaxed)) (void)db.get(key_of(static_cast<int>(rng() % 200)));
    });
  }
  const auto start = std::chrono::steady_clock::now();
  for (int i = 200; i < 3000; ++i) db.put(key_of(i), std::string(100, 'v'));  // dozens of splits
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_LT(took, 20.0) << "2,800 puts (dozens of them splits) took " << took << " s beside six readers";
  EXPECT_EQ(all(db).size(), 3000u);
}

}  // namespace
}  // namespace pageio::kv
