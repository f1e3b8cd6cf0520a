// store::backup: taken while writers write, the backup opens as a store
// equal to a model of the store at the LSN it reports, passes check(), and
// is a store of its own (no log archive inherited); an existing target is
// refused and a failed backup leaves nothing behind.
#include <pageio/kv/store.hpp>
#include <pageio/wal/reader.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/test_dir.hpp"

namespace pageio::kv {
namespace {

struct logged_write {
  lsn_t lsn;
  std::string key;
  std::optional<std::string> value;  // empty: deleted
};

class kv_backup_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
  }
  options opts(const std::string& name) const {
    options o;
    o.dir = dir_->path() / name;
    o.cache_bytes = 2u << 20;  // the data file is larger than the cache: pages written back while copied
    o.checkpoint_interval_ms = 0;
    o.wal_segment_bytes = 1u << 20;  // several segments to copy, quickly
    return o;
  }
  std::optional<test::test_dir> dir_;
};

std::map<std::string, std::string> contents(store& db) {
  std::map<std::string, std::string> out;
  for (auto it = db.scan(); it.valid(); it.next()) out.emplace(it.key(), it.value());
  return out;
}

TEST_F(kv_backup_test, ABackupTakenWhileWritersWriteIsTheStoreAtTheLsnItReports) {
  std::vector<logged_write> log;
  std::mutex log_mu;
  store::backup_result res;
  {
    options o = opts("db");
    o.wal_archive = dir_->path() / "archive";
    o.sync = false;  // the LSNs order the writes; durability is not what is tested
    store db(o);
    for (int i = 0; i < 20000; ++i) {
      const std::string k = "pre" + std::to_string(i);
      const lsn_t l = db.put(k, std::string(150, 'p'));
      log.push_back({l, k, std::string(150, 'p')});
    }
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < 4; ++w) {
      writers.emplace_back([&, w] {
        std::mt19937_64 rng(w + 1);
        for (int n = 0; !stop.load(); ++n) {
          const std::string k = (rng() % 3 == 0 ? "pre" : "w" + std::to_string(w) + "-") + std::to_string(rng() % 5000);
          if (rng() % 6 == 0) {
            const lsn_t l = db.del(k);
            std::lock_guard g(log_mu);
            if (l != 0) log.push_back({l, k, std::nullopt});
          } else {
            const std::string v = std::to_string(w) + ":" + std::to_string(n) + std::string(rng() % 300, 'v');
            const lsn_t l = db.put(k, v);
            std::lock_guard g(log_mu);
            log.push_back({l, k, v});
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::uint64_t calls = 0, last_done = 0;
    res = db.backup(dir_->path() / "backup", [&](std::uint64_t done, std::uint64_t total) {
      ++calls;
      EXPECT_GE(done, last_done);
      EXPECT_LE(done, total);
      last_done = done;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stop = true;
    for (auto& t : writers) t.join();
    EXPECT_GT(calls, 0u);
    RecordProperty("backup_seconds", std::to_string(res.seconds));
    EXPECT_GT(res.data_pages, 0u);
    EXPECT_GT(res.log_segments, 0u);
    EXPECT_GT(res.lsn, 20000u);
    EXPECT_LT(res.lsn, db.stats().last_lsn) << "the writers wrote nothing after the backup: the test shows little";
  }
  // The model at res.lsn: every write at or below it, in LSN order.
  std::sort(log.begin(), log.end(), [](const auto& a, const auto& b) { return a.lsn < b.lsn; });
  std::map<std::string, std::string> expect;
  for (const auto& w : log) {
    if (w.lsn > res.lsn) break;
    if (w.value) {
      expect[w.key] = *w.value;
    } else {
      expect.erase(w.key);
    }
  }
  EXPECT_FALSE(std::filesystem::exists(dir_->path() / "backup.tmp-backup"));
  EXPECT_FALSE(std::filesystem::exists(dir_->path() / "backup" / "wal-archive"))
      << "the backup inherited the store's log archive";
  store b(opts("backup"));
  EXPECT_TRUE(b.stats().wal_archive.empty());
  EXPECT_EQ(b.stats().last_lsn, res.lsn);
  const auto got = contents(b);
  EXPECT_EQ(got.size(), expect.size());
  EXPECT_TRUE(got == expect) << "the backup is not the store at LSN " << res.lsn;
  EXPECT_TRUE(b.check().clean());
  // A store of its own: it takes writes.
  b.put("after", "backup");
  EXPECT_EQ(b.get("after"), "backup");
}

TEST_F(kv_backup_test, AnExistingTargetIsRefusedAndAFailedBackupLeavesNothing) {
  store db(opts("db"));
  db.put("k", "v");
  std::filesystem::create_directories(dir_->path() / "taken");
  try {
    db.backup(dir_->path() / "taken");
    FAIL() << "an existing directory was backed up into";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::file_exists);
    EXPECT_NE(std::string(e.what()).find("exists"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir_->path() / "taken"));
  EXPECT_THROW(db.backup(dir_->path() / "no" / "such" / "parent"), std::system_error);
  EXPECT_FALSE(std::filesystem::exists(dir_->path() / "no"));
  // A leftover of a backup that did not finish is replaced, not reported.
  std::filesystem::create_directories(dir_->path() / "b.tmp-backup" / "junk");
  const auto res = db.backup(dir_->path() / "b");
  EXPECT_FALSE(std::filesystem::exists(dir_->path() / "b.tmp-backup"));
  store b(opts("b"));
  EXPECT_EQ(b.get("k"), "v");
  EXPECT_EQ(b.stats().last_lsn, res.lsn);
}

// A replayed record that does not apply part-way (histories that differ)
// must never be checkpointed as applied: the replica refuses to open until
// the record is dealt with, rather than open with half of it.
TEST_F(kv_backup_test, AReplayedRecordThatDoesNotApplyIsNeverCheckpointed) {
  {
    store db(opts("db"));
    db.put("k", "v");
    db.backup(dir_->path() / "b");
  }
  EXPECT_TRUE(std::filesystem::exists(dir_->path() / "b" / replayable_marker));
  // A record deleting a key the root leaf (page 1) lacks.
  std::vector<std::byte> bad(16 + 5 + 2 + 3, std::byte{0});
  bad[0] = std::byte{1};   // changes
  bad[4] = std::byte{1};   // one change
  bad[16] = std::byte{2};  // leaf_del
  bad[17] = std::byte{1};  // page 1
  bad[21] = std::byte{3};  // key length
  bad[23] = bad[24] = bad[25] = std::byte{'z'};
  options r = opts("b");
  r.replica = true;
  {
    store b(r);
    const lsn_t next = b.stats().last_lsn + 1;
    EXPECT_THROW(b.replay(next, bad), corruption_error);
    EXPECT_THROW(b.checkpoint(), corruption_error) << "a half-applied record was checkpointed";
  }
  EXPECT_THROW(store b(r), corruption_error) << "the replica opened with a record half applied";
}

// store::replay of a batch is the records one by one, under one hold of
// the locks; a record that does not follow stops the batch, with every
// record before it replayed and none after.
TEST_F(kv_backup_test, ABatchOfReplayedRecordsIsTheRecordsOneByOne) {
  std::map<std::string, std::string> model;
  options src = opts("db");
  src.wal_archive = dir_->path() / "arch";  // every record since the backup stays readable
  {
    store db(src);
    db.backup(dir_->path() / "b");
    for (int i = 0; i < 3000; ++i) {
      const std::string k = std::string("k").append(std::to_string(i * 7919 % 1000));
      const std::string v(20 + i % 50, static_cast<char>('a' + i % 26));
      db.put(k, v);
      model[k] = v;
    }
  }
  options r = opts("b");
  r.replica = true;
  store b(r);
  const lsn_t from = b.stats().last_lsn + 1;
  std::vector<std::pair<lsn_t, std::vector<std::byte>>> recs;
  const wal::scan_result scanned =
      wal::scan_logs({dir_->path() / "arch", dir_->path() / "db" / "wal"}, from, [&](const wal::record_view& v) {
    recs.emplace_back(v.lsn, std::vector<std::byte>(v.data.begin(), v.data.end()));
    return true;
  });
  ASSERT_FALSE(scanned.corruption) << scanned.corruption->what;
  ASSERT_GT(recs.size(), 100u);
  auto batch_of = [&](std::size_t begin, std::size_t end) {
    std::vector<store::replay_record> v;
    for (std::size_t i = begin; i < end; ++i) v.push_back({recs[i].first, recs[i].second});
    return v;
  };
  const std::size_t half = recs.size() / 2;
  b.replay(batch_of(0, half));
  EXPECT_EQ(b.stats().last_lsn, recs[half - 1].first);
  // A batch with a gap after its tenth record: the ten go in, the rest not.
  auto gapped = batch_of(half, std::min(recs.size(), half + 40));
  gapped.erase(gapped.begin() + 10);
  EXPECT_THROW(b.replay(gapped), std::invalid_argument);
  EXPECT_EQ(b.stats().last_lsn, recs[half + 9].first);
  b.replay(batch_of(half + 10, recs.size()));
  EXPECT_EQ(b.stats().last_lsn, recs.back().first);
  EXPECT_TRUE(contents(b) == model) << "the replica differs from the source";
  EXPECT_TRUE(b.check().clean());
}

}  // namespace
}  // namespace pageio::kv

namespace pageio::kv {
namespace {

// A replica nobody reads (options::replica_unread, pageio-wal replay without
// --follow) keeps no write buffer in memory: its checkpoints must keep the
// log from the source's last checkpoint on, so that the pairs buffered when
// the replay ends come back when it is opened again. Here the replica
// checkpoints (and recycles its log) many times while pairs are buffered.
TEST_F(kv_backup_test, AnUnreadReplicaKeepsItsBufferedPairsInItsLogThroughItsCheckpoints) {
  options src = opts("db");
  src.checkpoint_log_bytes = 256u << 10;  // the source logs many checkpoint records
  src.wal_archive = dir_->path() / "arch";
  std::map<std::string, std::string> model;
  std::mt19937_64 rng(7);
  {
    store db(src);
    db.backup(dir_->path() / "b");
    for (int i = 0; i < 20000; ++i) {
      const std::string k = "key" + std::to_string(rng() % 5000);
      if (rng() % 10 == 0) {
        db.del(k);
        model.erase(k);
      } else {
        const std::string v(10 + rng() % 60, static_cast<char>('a' + rng() % 26));
        db.put(k, v);
        model[k] = v;
      }
    }
    ASSERT_GT(db.stats().buffered_pairs, 0u) << "the test needs pairs buffered at the end";
  }
  options r = opts("b");
  r.replica = true;
  r.replica_unread = true;
  r.checkpoint_log_bytes = 128u << 10;  // and the replica checkpoints often
  std::uint64_t checkpoints = 0;
  {
    store b(r);
    const lsn_t from = b.stats().last_lsn + 1;
    const wal::scan_result scanned =
        wal::scan_logs({dir_->path() / "arch", dir_->path() / "db" / "wal"}, from, [&](const wal::record_view& v) {
          b.replay(v.lsn, v.data);
          // Besides the background ones (every 128 KiB of log, as fast as
          // they go), one every 2,000 records: how many the background
          // thread manages depends on the machine's speed.
          if (v.lsn % 2000 == 0) b.checkpoint();
          return true;
        });
    ASSERT_FALSE(scanned.corruption) << scanned.corruption->what;
    EXPECT_THROW((void)b.get("key1"), std::logic_error) << "an unread replica answered a read";
    EXPECT_THROW((void)b.scan(), std::logic_error);
    b.sync();
    b.checkpoint();
    checkpoints = b.stats().checkpoints;
  }
  EXPECT_GT(checkpoints, 3u) << "the replica should have checkpointed while replaying";
  // Opened again (as a replica others read, here read-only): the buffered
  // pairs come back from its log, and it is the source's store.
  options ro = opts("b");
  ro.read_only = true;
  store b(ro);
  EXPECT_GT(b.stats().buffered_pairs, 0u) << "no buffered pair came back from the replica's log";
  EXPECT_TRUE(contents(b) == model) << "the replica differs from the source";
  EXPECT_TRUE(b.check().clean());
}

}  // namespace
}  // namespace pageio::kv
