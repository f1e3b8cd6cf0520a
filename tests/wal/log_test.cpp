// The write-ahead log writer with the reader: records come back in order and
// intact, across segments and reopening, with many committers at once; faults
// fail the log and reach every waiter.
#include <pageio/engine/fault_backend.hpp>
#include <pageio/wal/log.hpp>
#include <pageio/wal/format.hpp>
#include <pageio/wal/reader.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "support/test_dir.hpp"

namespace pageio::wal {
namespace {

using test::test_dir;

// The content of record `lsn` written by `writer`, `size` bytes: recognisable
// from its bytes alone.
std::vector<std::byte> make_record(std::uint64_t key, std::size_t size) {
  std::vector<std::byte> r(size);
  std::uint64_t x = key * 0x9E3779B97F4A7C15ULL + 1;
  for (std::size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r[i] = static_cast<std::byte>(x);
  }
  return r;
}

std::vector<std::pair<lsn_t, std::vector<std::byte>>> read_all(const std::filesystem::path& dir, scan_result* out = nullptr) {
  std::vector<std::pair<lsn_t, std::vector<std::byte>>> recs;
  scan_result r = scan_log(dir, 0, [&](const record_view& v) {
    recs.emplace_back(v.lsn, std::vector<std::byte>(v.data.begin(), v.data.end()));
    return true;
  });
  if (out) *out = r;
  return recs;
}

// `writers` threads each committing `each` records of `size` bytes through a
// log opened with `o`; `after(w, lsn)` runs after each commit. The log's
// statistics once they are done, before it closes.
log::statistics commit_from_threads(const options& o, int writers, int each, std::size_t size,
                                    const std::function<void(log&, lsn_t)>& after = {}) {
  log w(o);
  std::vector<std::thread> ts;
  for (int t = 0; t < writers; ++t) {
    ts.emplace_back([&, t] {
      for (int k = 0; k < each; ++k) {
        const lsn_t l = w.commit(make_record(static_cast<std::uint64_t>(t) * 1000000 + k, size));
        if (after) after(w, l);
      }
    });
  }
  for (auto& t : ts) t.join();
  return w.stats();
}

class wal_test : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
    try {
      make_backend(GetParam());
    } catch (const backend_unavailable& e) {
      GTEST_SKIP() << GetParam() << " cannot start here: " << e.what();
    }
  }

  options small_log(const std::string& name) {
    options o;
    o.dir = dir_->path() / name;
    o.backend = GetParam();
    o.segment_bytes = 16 * 4096;  // many segment changes
    o.buffer_bytes = 64 * 4096;
    o.max_batch_bytes = 8 * 4096;
    return o;
  }

  std::optional<test_dir> dir_;
};

TEST_P(wal_test, RecordsComeBackInOrderAcrossSegmentsAndReopening) {
  const options o = small_log("roundtrip");
  std::mt19937_64 rng(7);
  std::vector<std::size_t> sizes;
  for (int i = 0; i < 400; ++i) {
    const int kind = static_cast<int>(rng() % 10);
    sizes.push_back(kind == 0 ? 0 : kind < 7 ? rng() % 200 : kind < 9 ? rng() % 9000 : 30000 + rng() % 20000);
  }
  {
    log w(o);
    EXPECT_EQ(w.last_lsn(), 0u);
    for (std::size_t i = 0; i < 200; ++i) {
      const lsn_t l = w.commit(make_record(i + 1, sizes[i]));
      ASSERT_EQ(l, i + 1);
      ASSERT_GE(w.durable_lsn(), l);
    }
  }
  {
    log w(o);  // recovers and continues
    EXPECT_EQ(w.recovered().last_lsn, 200u);
    EXPECT_TRUE(w.recovered().tail.empty()) << w.recovered().tail;
    for (std::size_t i = 200; i < sizes.size(); ++i) {
      const lsn_t l = w.append(make_record(i + 1, sizes[i]));
      ASSERT_EQ(l, i + 1);
    }
    w.flush(sizes.size());
  }
  scan_result res;
  const auto recs = read_all(o.dir, &res);
  ASSERT_FALSE(res.corruption) << res.corruption->what;
  ASSERT_EQ(recs.size(), sizes.size());
  for (std::size_t i = 0; i < recs.size(); ++i) {
    ASSERT_EQ(recs[i].first, i + 1);
    ASSERT_EQ(recs[i].second, make_record(i + 1, sizes[i])) << "record " << i + 1;
  }
  EXPECT_GT(res.segments.size(), 10u) << "the test meant to cross many segments";
}

TEST_P(wal_test, ManyConcurrentCommittersShareGroupCommits) {
  const options o = small_log("concurrent");
  constexpr int writers = 8, each = 300;
  std::mutex mu;
  std::map<lsn_t, std::uint64_t> key_of;  // which record got which LSN
  log::statistics st;
  {
    log w(o);
    std::vector<std::thread> ts;
    for (int t = 0; t < writers; ++t) {
      ts.emplace_back([&, t] {
        for (int k = 0; k < each; ++k) {
          const std::uint64_t key = static_cast<std::uint64_t>(t) * 1000000 + k;
          const lsn_t l = w.commit(make_record(key, 100 + (key % 300)));
          EXPECT_GE(w.durable_lsn(), l);
          std::lock_guard lock(mu);
          key_of[l] = key;
        }
      });
    }
    for (auto& t : ts) t.join();
    st = w.stats();
  }
  ASSERT_EQ(key_of.size(), static_cast<std::size_t>(writers * each)) << "every LSN handed out once";
  const auto recs = read_all(o.dir);
  ASSERT_EQ(recs.size(), key_of.size());
  for (const auto& [l, data] : recs) {
    const std::uint64_t key = key_of.at(l);
    ASSERT_EQ(data, make_record(key, 100 + (key % 300))) << "LSN " << l;
  }
  EXPECT_EQ(st.records, key_of.size());
  EXPECT_LE(st.batches, st.records);
  std::printf("[          ] %s: %llu records in %llu group commits\n", GetParam().c_str(),
              static_cast<unsigned long long>(st.records), static_cast<unsigned long long>(st.batches));
}

TEST_P(wal_test, AFailedWriteReachesEveryWaiterAndNothingIsAcknowledgedAfter) {
  options o = small_log("fault");
  fault_backend* fb = nullptr;
  o.make_backend = [&]() -> std::unique_ptr<io_backend> {
    auto f = std::make_unique<fault_backend>(make_backend(GetParam()));
    fb = f.get();
    return f;
  };
  log w(o);
  const lsn_t ok = w.commit(make_record(1, 50));
  fb->fail_next(fault_target::write, EIO, 1000);  // every write from now on
  std::atomic<int> errors{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      try {
        w.commit(make_record(100 + t, 80));
      } catch (const log_error& e) {
        if (e.code() == pageio::errc::log_failed && e.cause() == std::error_code(EIO, std::system_category())) ++errors;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(errors.load(), 4);
  EXPECT_EQ(w.failure(), std::error_code(EIO, std::system_category()));
  EXPECT_EQ(w.durable_lsn(), ok) << "nothing is acknowledged after the failure";
  EXPECT_THROW(w.append(make_record(9, 10)), log_error);
  try {
    w.flush(ok + 1);
    FAIL() << "flush of a record after the failure returned";
  } catch (const log_error& e) {
    EXPECT_NE(std::string(e.what()).find("writing"), std::string::npos) << e.what();
  }
}

TEST_P(wal_test, AFailedFlushFailsTheLogToo) {
  options o = small_log("flushfault");
  o.mode = durability::write_then_fdatasync;
  fault_backend* fb = nullptr;
  o.make_backend = [&]() -> std::unique_ptr<io_backend> {
    auto f = std::make_unique<fault_backend>(make_backend(GetParam()));
    fb = f.get();
    return f;
  };
  log w(o);
  w.commit(make_record(1, 50));
  fb->fail_next(fault_target::flush, EIO);
  EXPECT_THROW(w.commit(make_record(2, 50)), log_error);
  EXPECT_EQ(w.durable_lsn(), 1u);
  EXPECT_THROW(w.commit(make_record(3, 50)), log_error) << "a failed log stays failed";
}

TEST_P(wal_test, RecordsTooLargeForASegmentAreRefusedClearly) {
  const options o = small_log("toolarge");
  log w(o);
  try {
    w.append(make_record(1, 20 * 4096));
    FAIL() << "a record larger than a segment was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("segment"), std::string::npos) << e.what();
  }
  EXPECT_EQ(w.commit(make_record(2, 10)), 1u) << "the refusal used no LSN";
}

TEST_P(wal_test, MaxRecordBytesIsTheLargestRecordAppendTakes) {
  for (const std::uint64_t seg : {2 * 4096ull, 16 * 4096ull}) {
    options o = small_log("max" + std::to_string(seg));
    o.segment_bytes = seg;
    log w(o);
    const std::size_t max = w.max_record_bytes();
    ASSERT_GT(max, 0u);
    EXPECT_THROW(w.append(make_record(1, max + 1)), std::invalid_argument) << seg;
    const lsn_t l = w.commit(make_record(2, max));
    EXPECT_EQ(l, 1u) << seg;
  }
}

TEST_P(wal_test, GroupCommitsStayWithinTheirBound) {
  options o = small_log("bounded");
  o.max_batch_bytes = 2 * 4096;  // two pages, plus the rest of a record that crosses the bound
  {
    log w(o);
    std::vector<std::thread> ts;
    for (int t = 0; t < 6; ++t) {
      ts.emplace_back([&, t] {
        for (int k = 0; k < 60; ++k) w.commit(make_record(static_cast<std::uint64_t>(t) * 1000 + k, 3000));
      });
    }
    for (auto& t : ts) t.join();
  }
  // Every page names the size of the group commit it was written in.
  std::uint32_t largest = 0;
  std::size_t pages = 0;
  for (const auto& e : std::filesystem::directory_iterator(o.dir)) {
    if (!parse_segment_file_name(e.path().filename().string())) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::vector<char> pg(format::page_size);
    while (in.read(pg.data(), static_cast<std::streamsize>(pg.size()))) {
      format::page_header h;
      std::memcpy(&h, pg.data(), sizeof h);
      if (h.magic != format::page_magic) continue;
      largest = std::max(largest, h.batch_pages);
      ++pages;
    }
  }
  EXPECT_GT(pages, 0u);
  // A 3000-byte record spans at most 2 pages: a bound of 2 pages allows 3.
  EXPECT_LE(largest, 3u) << "a group commit grew past max_batch_bytes";
  EXPECT_EQ(read_all(o.dir).size(), 360u);
}

TEST_P(wal_test, AutomaticDurabilityUsesDsyncWritesOnlyForSmallGroupCommits) {
  options o = small_log("automatic");
  ASSERT_EQ(o.mode, durability::automatic) << "automatic is the default";
  o.dsync_max_bytes = 4096;
  std::vector<std::vector<std::byte>> written;
  {
    log w(o);
    for (int k = 0; k < 5; ++k) {  // one committer: each record is its own one-page group commit
      written.push_back(make_record(static_cast<std::uint64_t>(k), 100));
      w.commit(written.back());
    }
    const auto small = w.stats();
    EXPECT_EQ(small.batches, 5u);
    EXPECT_EQ(small.dsync_batches, 5u);
    EXPECT_EQ(small.flush_ns, 0u) << "an RWF_DSYNC group commit needs no fdatasync";
    written.push_back(make_record(99, 10000));  // three pages: written, then fdatasync
    w.commit(written.back());
    const auto large = w.stats();
    EXPECT_EQ(large.batches, 6u);
    EXPECT_EQ(large.dsync_batches, 5u);
    EXPECT_GT(large.flush_ns, 0u);
  }
  const auto back = read_all(o.dir);
  ASSERT_EQ(back.size(), written.size());
  for (std::size_t i = 0; i < back.size(); ++i) EXPECT_EQ(back[i].second, written[i]) << "record " << i;
}

TEST_P(wal_test, AutomaticDurabilitySharesAFlushBetweenSmallGroupCommitsOfSeveralCommitters) {
  // A lone committer waits least for one RWF_DSYNC write per group commit;
  // with several committers at once, those writes each pay a flush of
  // their own, and two group commits written and then flushed together
  // commit 1.3x as many (4 and 8 writers here). automatic chooses by the
  // load it sees, and goes back to RWF_DSYNC writes when one committer is
  // left. It once made every small group commit an RWF_DSYNC write.
  options o = small_log("pairing");
  o.segment_bytes = 256 * 4096;
  ASSERT_EQ(o.mode, durability::automatic);
  constexpr int writers = 8, each = 150, alone = 40;
  log w(o);
  std::vector<std::thread> ts;
  for (int t = 0; t < writers; ++t) {
    ts.emplace_back([&, t] {
      for (int k = 0; k < each; ++k) w.commit(make_record(static_cast<std::uint64_t>(t) * 1000000 + k, 100));
    });
  }
  for (auto& t : ts) t.join();
  const log::statistics busy = w.stats();
  EXPECT_EQ(busy.records, static_cast<std::uint64_t>(writers * each));
  EXPECT_LT(busy.dsync_batches * 2, busy.batches)
      << busy.dsync_batches << " of " << busy.batches << " group commits of " << writers
      << " committers were RWF_DSYNC writes (" << static_cast<double>(busy.records) / static_cast<double>(busy.batches)
      << " records each)";
  for (int k = 0; k < alone; ++k) w.commit(make_record(9000000 + static_cast<std::uint64_t>(k), 100));
  const log::statistics after = w.stats();
  ASSERT_EQ(after.batches - busy.batches, static_cast<std::uint64_t>(alone)) << "one committer: one record per group commit";
  // The average forgets the busy phase within ~20 group commits.
  EXPECT_GE(after.dsync_batches - busy.dsync_batches, static_cast<std::uint64_t>(alone / 2))
      << "a lone committer again: its group commits should be RWF_DSYNC writes";
  std::printf("[          ] %s: %llu of %llu group commits of %d committers were RWF_DSYNC writes; %llu of %d alone\n",
              GetParam().c_str(), static_cast<unsigned long long>(busy.dsync_batches),
              static_cast<unsigned long long>(busy.batches), writers,
              static_cast<unsigned long long>(after.dsync_batches - busy.dsync_batches), alone);
}

TEST_P(wal_test, ARecordNobodyWaitsForIsWrittenWithinLazyFlushMs) {
  // After a commit the flusher sleeps with an empty open page, so with no
  // deadline. A record appended then, with nobody flushing it (as the
  // key-value store's merges are), must still be durable within
  // lazy_flush_ms: it once stayed in memory until the next commit.
  options o = small_log("lazy");
  o.lazy_flush_ms = 20;
  log w(o);
  for (int round = 0; round < 5; ++round) {
    w.commit(make_record(static_cast<std::uint64_t>(round), 100));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // the flusher is asleep by now
    const lsn_t l = w.append(make_record(1000 + static_cast<std::uint64_t>(round), 100));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (w.durable_lsn() < l && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_GE(w.durable_lsn(), l) << "round " << round << ": LSN " << l << " was not written in 2 s with nobody waiting";
  }
}

TEST_P(wal_test, DsyncGroupCommitsOverlapWhileCommittersKeepComing) {
  // An RWF_DSYNC group commit may be sent while the one before it is still
  // in flight. The flusher once slept in reap() with one in flight, so the
  // next was formed only after it completed: never two at a time.
  if (GetParam() == "sync") GTEST_SKIP() << "the sync backend completes each write before the next is formed";
  options o = small_log("overlap");
  o.segment_bytes = 256 * 4096;
  o.mode = durability::dsync_writes;
  constexpr int writers = 16, each = 150;
  const log::statistics st = commit_from_threads(o, writers, each, 100);
  EXPECT_EQ(st.records, static_cast<std::uint64_t>(writers * each));
  EXPECT_EQ(st.dsync_batches, st.batches);
  EXPECT_GT(st.overlapped_batches, 0u) << "of " << st.batches << " group commits, none went out beside another";
  EXPECT_EQ(read_all(o.dir).size(), static_cast<std::size_t>(writers * each));
  std::printf("[          ] %s: %llu of %llu group commits overlapped the one before\n", GetParam().c_str(),
              static_cast<unsigned long long>(st.overlapped_batches), static_cast<unsigned long long>(st.batches));
}

TEST_P(wal_test, TheCommittersOfAGroupCommitAreWokenTogether) {
  // A wake-up is a system call of several microseconds on a virtual machine
  // (an inter-processor interrupt). The committers of one group commit
  // sleep on one word and one call wakes them all: one per committer once
  // cost more CPU than the commit's own work.
  options o = small_log("wake");
  o.segment_bytes = 256 * 4096;
  constexpr int writers = 16, each = 150;
  const log::statistics st = commit_from_threads(o, writers, each, 100);
  EXPECT_EQ(st.records, static_cast<std::uint64_t>(writers * each));
  EXPECT_EQ(read_all(o.dir).size(), static_cast<std::size_t>(writers * each));
  ASSERT_GT(st.committer_waits, static_cast<std::uint64_t>(writers)) << "the committers never waited";
  EXPECT_GT(st.committer_wakeups, 0u);
  EXPECT_LE(st.committer_wakeups, st.batches) << "more wake-up calls than group commits";
  EXPECT_LT(st.committer_wakeups * 2, st.committer_waits)
      << st.committer_wakeups << " wake-up calls for " << st.committer_waits << " waits: committers woken one by one";
  std::printf("[          ] %s: %llu waits, %llu wake-up calls, %llu group commits\n", GetParam().c_str(),
              static_cast<unsigned long long>(st.committer_waits), static_cast<unsigned long long>(st.committer_wakeups),
              static_cast<unsigned long long>(st.batches));
}

TEST_P(wal_test, ACommitterWhoseRecordMissesTheNextGroupCommitWaitsForTheOneAfter) {
  // A committer whose record is in no batch yet waits with the next one to
  // be formed; a batch bound smaller than the records waiting leaves some
  // of them to a later batch, and those committers are released with that
  // batch's but must wait again, not return before their record is durable.
  options o = small_log("bound");
  o.segment_bytes = 256 * 4096;
  o.max_batch_bytes = 4096;
  constexpr int writers = 8, each = 40;
  std::atomic<int> early{0};
  const log::statistics st = commit_from_threads(o, writers, each, 5000, [&](log& w, lsn_t l) {
    if (w.durable_lsn() < l) early.fetch_add(1);
  });
  EXPECT_EQ(early.load(), 0) << "commit() returned before its record was durable";
  EXPECT_EQ(st.records, static_cast<std::uint64_t>(writers * each));
  EXPECT_GT(st.batches, static_cast<std::uint64_t>(writers * each / 2)) << "the bound did not split the waiting records";
  EXPECT_EQ(read_all(o.dir).size(), static_cast<std::size_t>(writers * each));
}

INSTANTIATE_TEST_SUITE_P(Backends, wal_test, ::testing::Values(std::string("sync"), std::string("aio"), std::string("uring")),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace pageio::wal
