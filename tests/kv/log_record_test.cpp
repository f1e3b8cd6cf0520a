// describe_log_record over a real store's log: the user's puts and deletes
// read back from the log in order, with their keys and value lengths,
// whatever path each write took (a cached leaf, the write buffer, a split,
// an overflow value, a batch); the merger's records are merges, never
// writes; checkpoints are checkpoints; and bytes that are not a record are
// refused.
#include <pageio/kv/log_record.hpp>
#include <pageio/kv/store.hpp>
#include <pageio/wal/reader.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "support/test_dir.hpp"

namespace pageio::kv {
namespace {

struct expected_change {
  bool put;
  std::string key;
  std::uint64_t value_bytes;
  bool operator==(const expected_change&) const = default;
};

std::string key_of(std::uint64_t i) {
  char k[32];
  std::snprintf(k, sizeof k, "key%08llu", static_cast<unsigned long long>(i));
  return k;
}

class kv_log_record_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
  }
  std::optional<test::test_dir> dir_;
};

TEST_F(kv_log_record_test, EveryWriteReadsBackFromTheLogInOrderAndMergesAreNotWrites) {
  options o;
  o.dir = dir_->path() / "db";
  o.cache_bytes = 1u << 20;            // a few hundred frames: most leaves not cached
  o.write_buffer_bytes = 64u << 10;    // merges all the time
  o.checkpoint_interval_ms = 0;
  o.checkpoint_log_bytes = 0;          // the whole log stays
  o.sync = false;
  std::vector<expected_change> expect;
  std::map<std::string, bool> present;
  statistics st;
  {
    store db(o);
    for (int i = 0; i < 20000; ++i) {
      db.put(key_of(i), std::string(100, 'v'));
      expect.push_back({true, key_of(i), 100});
      present[key_of(i)] = true;
    }
    std::mt19937_64 rng(7);
    auto value = [&] {
      const std::size_t n = rng() % 50 == 0 ? 3000 + rng() % 6000 : rng() % 200;  // some overflow values
      return std::string(n, static_cast<char>('a' + rng() % 26));
    };
    for (int n = 0; n < 3000; ++n) {
      const std::string k = key_of(rng() % 22000);  // some keys never loaded
      const unsigned what = rng() % 20;
      if (what < 14) {
        const std::string v = value();
        db.put(k, v);
        expect.push_back({true, k, v.size()});
        present[k] = true;
      } else if (what < 17) {
        db.del(k);
        if (present[k]) expect.push_back({false, k, 0});
        present[k] = false;
      } else {
        write_batch b;
        std::vector<expected_change> ops;
        bool changes = false;
        for (int j = 0; j < 3; ++j) {
          const std::string bk = key_of(rng() % 22000);
          if (rng() % 2 == 0) {
            const std::string v = value();
            b.put(bk, v);
            ops.push_back({true, bk, v.size()});
            present[bk] = true;
            changes = true;
          } else {
            b.del(bk);
            ops.push_back({false, bk, 0});
            changes |= present[bk];
            present[bk] = false;
          }
        }
        db.write(b);
        if (changes) expect.insert(expect.end(), ops.begin(), ops.end());
      }
    }
    st = db.stats();
  }
  // Read the log once the store is closed: the merger may append a record
  // after any sync, and a store that does not sync on commit writes it out
  // only later; closing writes out everything appended.
  ASSERT_GT(st.buffered_puts, 100u) << "the test never used the write buffer";
  ASSERT_GT(st.merged_pairs, 0u) << "the test never merged";
  {
    std::vector<expected_change> got;
    std::uint64_t merges = 0, merged = 0;
    const wal::scan_result r = wal::scan_log(o.dir / "wal", 0, [&](const wal::record_view& v) {
      const logged_record rec = describe_log_record(v.data);
      EXPECT_GT(rec.time_us, 1'700'000'000'000'000u) << "LSN " << v.lsn << ": no commit time";
      if (rec.what == logged_record::kind::merge) {
        ++merges;
        merged += rec.merged_pairs;
        EXPECT_TRUE(rec.changes.empty()) << "LSN " << v.lsn << ": a merge told as writes";
      }
      if (rec.what == logged_record::kind::write) {
        merged += rec.merged_pairs;
        for (const auto& c : rec.changes) got.push_back({c.what == logged_change::kind::put, c.key, c.value_bytes});
      }
      return true;
    });
    ASSERT_FALSE(r.corruption) << r.corruption->what;
    EXPECT_GT(merges, 0u);
    EXPECT_GE(merged, st.merged_pairs);
    EXPECT_EQ(got.size(), expect.size());
    for (std::size_t i = 0; i < std::min(got.size(), expect.size()); ++i) {
      ASSERT_EQ(got[i], expect[i]) << "change " << i << ": logged " << (got[i].put ? "put " : "del ") << got[i].key
                                   << " (" << got[i].value_bytes << " B), made " << (expect[i].put ? "put " : "del ")
                                   << expect[i].key << " (" << expect[i].value_bytes << " B)";
    }
  }
  // A checkpoint record says where recovery starts.
  bool saw_checkpoint = false;
  wal::scan_log(o.dir / "wal", 0, [&](const wal::record_view& v) {
    const logged_record rec = describe_log_record(v.data);
    if (rec.what == logged_record::kind::checkpoint) {
      saw_checkpoint = true;
      EXPECT_GT(rec.checkpoint_lsn, 0u);
      EXPECT_LE(rec.checkpoint_lsn, v.lsn);
      EXPECT_GE(rec.checkpoint_pages_from, rec.checkpoint_lsn);
    }
    return true;
  });
  EXPECT_TRUE(saw_checkpoint) << "closing the store logged no checkpoint";
}

TEST_F(kv_log_record_test, BytesThatAreNoRecordAreRefusedSayingWhy) {
  const std::string junk = "this is not a record of a store";
  try {
    describe_log_record(std::as_bytes(std::span(junk)));
    FAIL() << "junk was described";
  } catch (const corruption_error& e) {
    EXPECT_NE(std::string(e.what()).find("not a record of a pageio::kv store"), std::string::npos) << e.what();
  }
  const std::string short_one = "\x01";
  EXPECT_THROW(describe_log_record(std::as_bytes(std::span(short_one))), corruption_error);
}

}  // namespace
}  // namespace pageio::kv
