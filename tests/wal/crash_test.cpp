// Crash simulation over the whole file layer: committers (and sometimes a
// checkpointer recycling segments under them) run against a log whose
// backend and file system share one crash model (crash_file_system), the
// power is cut at a random moment, and the disk is settled as a power cut
// could leave it: every write no flush covers dropped, applied or torn at
// 512-byte sectors, every size change no sync covers kept or lost, every
// create, rename and unlink no directory sync covers kept or undone. Then
// the log is recovered and checked. Many sequences crash again and again on
// the same directory (crash, recover, commit, crash...), and some cut the
// power while the log is being opened and recovered.
//
// Invariants at every point: every acknowledged record is back, intact and
// in order (except those a checkpoint was asked to drop); LSNs only grow
// across every reopen (the log never numbers below what was acknowledged);
// nothing comes back that was not appended under that LSN in its history;
// recovery never reports corruption.
//
//   PAGEIO_CRASH_POINTS  crash points on the sync backend (default 2000; the
//                        aio and uring runs do a tenth), for a longer soak
//   PAGEIO_SEED          seed (printed by every run)
#include <pageio/engine/crash_file_system.hpp>
#include <pageio/wal/log.hpp>
#include <pageio/wal/reader.hpp>

#include <gtest/gtest.h>

#include <pageio/wal/format.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "support/crash_totals.hpp"
#include "support/test_dir.hpp"

namespace pageio::wal {
namespace {

using test::test_dir;
using namespace std::chrono_literals;

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

// What one directory's history promises, across its crashes.
struct history {
  std::map<lsn_t, std::uint64_t> appended;  // LSN -> key of what was last appended under it
  lsn_t acked = 0;                          // every record up to here was acknowledged
  lsn_t may_drop_below = 0;                 // a checkpoint was asked to drop records before this
  lsn_t recovered = 0;                      // the last LSN the previous recovery found
  std::string trail;                        // what each round did, for a failure's report
};

// Every segment's size and each page's header, for a failure's report.
std::string describe_log(const std::filesystem::path& dir) {
  std::ostringstream out;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    out << f.filename().string() << " " << std::filesystem::file_size(f) << " bytes\n";
    std::ifstream in(f, std::ios::binary);
    std::vector<char> pg(format::page_size);
    for (std::uint32_t i = 0; in.read(pg.data(), static_cast<std::streamsize>(pg.size())); ++i) {
      format::page_header h;
      std::memcpy(&h, pg.data(), sizeof h);
      if (h.magic != format::page_magic) {
        const bool zero = std::all_of(pg.begin(), pg.end(), [](char c) { return c == 0; });
        out << "  page " << i << ": " << (zero ? "zero" : "not a log page") << "\n";
        continue;
      }
      format::fragment_header fh;
      std::memcpy(&fh, pg.data() + format::page_header_size, sizeof fh);
      out << "  page " << i << ": seg " << h.segment << " idx " << h.index << " batch " << h.batch_first << "+"
          << h.batch_pages << " flags " << int(h.flags) << " prev " << h.prev_pages << " writer " << std::hex
          << (h.writer & 0xffff) << std::dec << " used " << h.used << " first lsn " << fh.lsn << "\n";
    }
  }
  return out.str();
}

struct totals {
  std::uint64_t points = 0, sequences = 0, multi_crash_sequences = 0, crashes_in_open = 0;
  std::uint64_t acked = 0, recovered = 0, checkpoints = 0, recycled = 0, torn_tails = 0;
  crash_report model;
};

class wal_crash_test : public ::testing::TestWithParam<std::string> {
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

  options log_options(const std::filesystem::path& dir, std::mt19937_64& rng) {
    options o;
    o.dir = dir;
    o.fs = fs_;
    o.segment_bytes = 8 * 4096;  // segment changes inside most runs
    o.buffer_bytes = 32 * 4096;
    o.max_batch_bytes = 4 * 4096;
    // Every way of making a group commit durable; automatic here mixes both
    // (RWF_DSYNC up to 2 pages, fdatasync above) within one run.
    const durability modes[] = {durability::automatic, durability::dsync_writes, durability::write_then_fdatasync};
    o.mode = modes[rng() % 3];
    o.dsync_max_bytes = 2 * 4096;
    o.make_backend = [fs = fs_, name = GetParam()]() -> std::unique_ptr<io_backend> {
      return fs->wrap(make_backend(name));
    };
    return o;
  }

  // One round: open (and recover), commit and maybe checkpoint, cut the
  // power, settle. `in_open`: the cut falls while the log is being opened.
  void crash_round(const std::filesystem::path& dir, history& h, std::mt19937_64& rng, std::uint64_t key_base,
                   bool in_open, totals& t) {
    const options o = log_options(dir, rng);
    if (in_open) {
      const auto delay = std::chrono::microseconds(rng() % 3000);
      std::thread cutter([&] {
        std::this_thread::sleep_for(delay);
        fs_->cut_power();
      });
      try {
        log w(o);
        EXPECT_GE(w.last_lsn(), h.acked) << "the log numbers below an acknowledged record";
      } catch (const std::exception& e) {
        cutter.join();
        ASSERT_TRUE(fs_->power_cut()) << "opening failed without a power cut: " << e.what();
        settle(rng, t);
        ++t.crashes_in_open;
        h.trail += std::string("  round: cut while opening: ") + e.what() + "\n";
        return;
      }
      cutter.join();
      settle(rng, t);
      ++t.crashes_in_open;
      h.trail += "  round: cut while opening (the open succeeded)\n";
      return;
    }

    std::mutex mu;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> acks{0};
    {
      std::optional<log> w;
      ASSERT_NO_THROW(w.emplace(o)) << "recovery failed after a crash";
      ASSERT_GE(w->last_lsn(), h.acked) << "reopened below an acknowledged LSN";
      const lsn_t start = w->last_lsn();
      h.trail += "  round: opened at LSN " + std::to_string(start) + " (end segment " +
                 std::to_string(w->recovered().end_segment) + " page " + std::to_string(w->recovered().end_page) +
                 (w->recovered().dropped ? ", dropped a batch" : "") + "), mode " + std::to_string(int(o.mode)) + "\n";
      // Mostly 1-3 committers; a quarter of the rounds 4-8, enough for
      // `automatic` to pair small group commits under one fdatasync (it does
      // so by the load it sees: docs/wal-format.md, "A lone committer or
      // several"), with longer rounds for its load average to get there.
      const bool many = rng() % 4 == 0;
      const int writers = many ? 4 + static_cast<int>(rng() % 5) : 1 + static_cast<int>(rng() % 3);
      std::vector<std::thread> ts;
      std::atomic<bool> order_ok{true};
      for (int i = 0; i < writers; ++i) {
        ts.emplace_back([&, i] {
          for (std::uint64_t k = 0; !stop.load(); ++k) {
            const std::uint64_t key = key_base | (static_cast<std::uint64_t>(i) << 24) | k;
            lsn_t l = 0;
            try {
              std::lock_guard lock(mu);  // the LSN and its content are known together
              l = w->append(record_for(key));
              if (l <= start) order_ok = false;  // LSNs only grow
              h.appended[l] = key;
            } catch (const log_error&) {
              return;
            }
            try {
              w->flush(l);
            } catch (const log_error&) {
              return;
            }
            std::lock_guard lock(mu);
            h.acked = std::max(h.acked, l);
            acks.fetch_add(1);
          }
        });
      }
      // Sometimes a checkpointer: full checkpoints and partial ones, so
      // segments are recycled and created while the power may go.
      std::thread checkpointer;
      if (rng() % 2 == 0) {
        const std::uint64_t cseed = rng();
        checkpointer = std::thread([&, cseed] {
          std::mt19937_64 r(cseed);
          while (!stop.load()) {
            std::this_thread::sleep_for(std::chrono::microseconds(100 + r() % 900));
            const lsn_t d = w->durable_lsn();
            const lsn_t upto = r() % 2 == 0 ? d + 1 : 1 + r() % (d + 1);
            {
              std::lock_guard lock(mu);
              h.may_drop_below = std::max(h.may_drop_below, upto);
            }
            try {
              t.recycled += w->truncate_before(upto);
              ++t.checkpoints;
            } catch (const log_error&) {
              return;
            }
          }
        });
      }
      const std::uint64_t target = rng() % (many ? 96 : 24);
      const auto extra = std::chrono::microseconds(rng() % 3 == 0 ? rng() % 2000 : 0);
      const auto give_up = std::chrono::steady_clock::now() + 5s;
      while (acks.load() < target && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
      std::this_thread::sleep_for(extra);
      fs_->cut_power();
      stop = true;
      for (auto& th : ts) th.join();
      if (checkpointer.joinable()) checkpointer.join();
      EXPECT_TRUE(order_ok.load()) << "an append got an LSN at or below the recovered end " << start;
      h.trail += "    " + std::to_string(writers) + " committers appended up to LSN " + std::to_string(w->last_lsn()) +
                 ", acknowledged " + std::to_string(h.acked) +
                 ", checkpoints up to " + std::to_string(h.may_drop_below) + "\n";
      try {
        w->flush(w->last_lsn());  // the flusher is then idle or failed
      } catch (const log_error&) {
      }
    }
    settle(rng, t);
  }

  void settle(std::mt19937_64& rng, totals& t) {
    const crash_report rep = fs_->settle(rng());
    pageio::test::add_report(t.model, rep);
    ++t.points;
  }

  // Reads the crashed log as a reader would and holds it to the history.
  void verify(const std::filesystem::path& dir, history& h, totals& t) {
    if (!std::filesystem::exists(dir)) {
      ASSERT_EQ(h.acked, 0u) << "the log directory vanished with acknowledged records in it";
      return;
    }
    std::vector<std::pair<lsn_t, std::vector<std::byte>>> got;
    scan_result res;
    ASSERT_NO_THROW(res = scan_log(dir, 0, [&](const record_view& v) {
                      got.emplace_back(v.lsn, std::vector<std::byte>(v.data.begin(), v.data.end()));
                      return true;
                    }));
    ASSERT_FALSE(res.corruption) << "recovery reported corruption after a crash: " << res.corruption->file.filename()
                                 << " page " << res.corruption->page << ": " << res.corruption->what << "\n"
                                 << describe_log(dir) << "history of this directory:\n" << h.trail;
    if (!res.tail.empty()) ++t.torn_tails;
    for (const auto& [l, data] : got) {
      auto it = h.appended.find(l);
      ASSERT_NE(it, h.appended.end()) << "LSN " << l << " came back but was never appended";
      ASSERT_EQ(data, record_for(it->second)) << "LSN " << l << " came back with other contents (another history's?)";
    }
    ASSERT_GE(res.last_lsn, h.acked) << "acknowledged LSN " << h.acked << " was lost (recovered up to "
                                     << res.last_lsn << ")";
    const lsn_t must_from = std::max<lsn_t>(h.may_drop_below, 1);
    if (h.acked >= must_from) {
      ASSERT_LE(res.first_lsn, must_from) << "acknowledged records from LSN " << must_from
                                          << " on were lost: the log starts at " << res.first_lsn;
    }
    ASSERT_GE(res.last_lsn, h.recovered > h.acked ? h.acked : h.recovered)
        << "a second recovery found less than the first";
    // What the log did not keep is gone: its LSNs will be handed out again.
    h.appended.erase(h.appended.upper_bound(res.last_lsn), h.appended.end());
    h.recovered = res.last_lsn;
    h.trail += "    recovered LSN " + std::to_string(res.first_lsn) + "-" + std::to_string(res.last_lsn) + ", end segment " +
               std::to_string(res.end_segment) + " page " + std::to_string(res.end_page) +
               (res.tail.empty() ? "" : ", torn tail") + (res.dropped ? ", dropped a batch" : "") + "\n";
    t.acked = std::max(t.acked, h.acked);
    t.recovered += got.size();
  }

  std::optional<test_dir> dir_;
  std::shared_ptr<crash_file_system> fs_ = std::make_shared<crash_file_system>();
};

TEST_P(wal_crash_test, AcknowledgedRecordsSurviveEveryCrashPointAndEveryRecovery) {
  const std::uint64_t seed = env_u64("PAGEIO_SEED", static_cast<std::uint64_t>(
                                                        std::chrono::system_clock::now().time_since_epoch().count()));
  std::uint64_t points = env_u64("PAGEIO_CRASH_POINTS", 2000);
  if (GetParam() != "sync") points = std::max<std::uint64_t>(1, points / 10);
  std::cout << "[crash] " << GetParam() << ": " << points << " crash points, seed " << seed
            << "; rerun with PAGEIO_SEED=" << seed << std::endl;
  SCOPED_TRACE("PAGEIO_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const auto started = std::chrono::steady_clock::now();

  totals t;
  for (std::uint64_t sequence = 0; t.points < points; ++sequence) {
    SCOPED_TRACE("sequence " + std::to_string(sequence));
    const auto dir = dir_->path() / ("log" + std::to_string(sequence));
    // 60%: one crash; otherwise 2-5 crashes on the same directory.
    const int crashes = rng() % 10 < 6 ? 1 : 2 + static_cast<int>(rng() % 4);
    history h;
    for (int c = 0; c < crashes && t.points < points; ++c) {
      SCOPED_TRACE("crash " + std::to_string(c + 1) + " of " + std::to_string(crashes));
      const bool in_open = c > 0 && rng() % 4 == 0;  // crash again during recovery
      crash_round(dir, h, rng, (sequence << 36) | (static_cast<std::uint64_t>(c) << 32), in_open, t);
      if (HasFatalFailure()) return;
      verify(dir, h, t);
      if (HasFatalFailure()) return;
    }
    // The log goes on after its last crash: reopened, it commits after
    // everything acknowledged.
    if (std::filesystem::exists(dir)) {
      options o;
      o.dir = dir;
      o.backend = GetParam();
      log w(o);
      const lsn_t before = w.last_lsn();
      EXPECT_GE(before, h.acked);
      EXPECT_EQ(w.commit(record_for(1)), before + 1);
    }
    ++t.sequences;
    if (crashes > 1) ++t.multi_crash_sequences;
    if (points >= 20000 && t.sequences % 2000 == 0) {  // a soak says how far it got
      std::cout << "[crash] " << GetParam() << ": " << t.points << " of " << points << " points, "
                << t.multi_crash_sequences << " multi-crash sequences, "
                << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() << " s"
                << std::endl;
    }
    std::filesystem::remove_all(dir);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "[crash] " << GetParam() << ": " << t.points << " crash points in " << t.sequences << " sequences ("
            << t.multi_crash_sequences << " crashed 2-5 times on one directory, " << t.crashes_in_open
            << " cuts during recovery) in " << secs << " s; " << t.recovered << " records recovered, "
            << t.checkpoints << " checkpoints recycled " << t.recycled << " segments; " << t.torn_tails
            << " torn tails; writes dropped " << t.model.dropped << ", applied " << t.model.applied << ", torn "
            << t.model.torn << "; names undone " << t.model.names_undone << ", kept " << t.model.names_kept
            << "; sizes reverted " << t.model.sizes_reverted << ", kept " << t.model.sizes_kept << std::endl;
  // Whether the run reached far enough: a few dozen points may, by chance,
  // tear nothing (10 points on aio or uring did in 3 runs of 20).
  if (points >= 50) {
    EXPECT_GT(t.model.torn, 0u) << "no crash tore a write: the test exercised too little";
  }
  if (points >= 1000) {
    EXPECT_GE(t.multi_crash_sequences, points / 10) << "too few multi-crash sequences";
    EXPECT_GT(t.model.names_undone, 0u) << "no crash undid a name: the file-system model was not exercised";
    EXPECT_GT(t.recycled, 0u) << "no checkpoint recycled a segment";
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, wal_crash_test,
                         ::testing::Values(std::string("sync"), std::string("aio"), std::string("uring")),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace pageio::wal
