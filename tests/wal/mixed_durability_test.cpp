// Mixed sequences of RWF_DSYNC and write-then-fdatasync group commits, which
// `automatic` durability makes by batch size and by load (docs/wal-format.md,
// "Group commits", "A lone committer or several"). A test backend with a
// completion eventfd (so the flusher overlaps batches as it does on aio and
// uring) runs each request at submission,
// delivers its completion after a scripted delay, and keeps a durability
// oracle: a write is durable when it was an RWF_DSYNC write that completed
// successfully, or when a successful fdatasync of its file was SUBMITTED after
// the write's completion was DELIVERED. The oracle parses the log pages each
// write carries, so it knows which LSNs are durable.
#include <pageio/engine/backend.hpp>
#include <pageio/wal/format.hpp>
#include <pageio/wal/log.hpp>

#include <gtest/gtest.h>

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "log_dir_fixture.hpp"

namespace pageio::wal {
namespace {

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;
namespace fmt = format;

class delayed_backend final : public io_backend {
 public:
  delayed_backend()
      : io_backend(capabilities{.name = "delayed",
                                .queue_depth = 64,
                                .async_flush = false,
                                .per_write_dsync = true,
                                .registered_buffers = false,
                                .registered_files = false,
                                .cancel_in_kernel = false},
                   backend_options{}, 1) {}
  ~delayed_backend() override {
    for (auto& t : timers_) t.join();
    abandon_all();
  }

  struct step {
    std::chrono::microseconds delay{0};
    std::optional<std::int64_t> result;
  };
  // n counts WAL page writes (writes whose data starts with the page magic)
  // and fdatasyncs, from 1.
  void on_write(unsigned n, std::chrono::microseconds d, std::optional<std::int64_t> r = {}) {
    std::lock_guard l(mu_);
    wscript_[n] = {d, r};
  }
  void on_flush(unsigned n, std::chrono::microseconds d, std::optional<std::int64_t> r = {}) {
    std::lock_guard l(mu_);
    fscript_[n] = {d, r};
  }
  // Random delays up to `max` for every request without a script.
  void random_delays(std::uint64_t seed, std::chrono::microseconds max) {
    std::lock_guard l(mu_);
    rng_.seed(seed);
    max_random_ = max;
  }
  unsigned wal_writes_submitted() const {
    std::lock_guard l(mu_);
    return wal_writes_;
  }
  unsigned flushes_submitted() const {
    std::lock_guard l(mu_);
    return flushes_;
  }
  unsigned dsync_writes_submitted() const {
    std::lock_guard l(mu_);
    return dsync_writes_;
  }
  // The largest L such that every record with LSN <= L is in a write the
  // oracle holds durable.
  lsn_t durable_prefix() const {
    std::lock_guard l(mu_);
    lsn_t upto = 0;
    for (const auto& w : writes_) {  // in submission order, as batches are formed
      if (w.lsns_max == 0) continue;
      if (!w.durable) break;
      upto = std::max(upto, w.lsns_max);
    }
    return upto;
  }
  // Kind changes between consecutive WAL writes: dsync->plain, plain->dsync.
  std::array<unsigned, 2> transitions() const {
    std::lock_guard l(mu_);
    std::array<unsigned, 2> t{};
    for (std::size_t i = 1; i < writes_.size(); ++i) {
      if (writes_[i - 1].dsync != writes_[i].dsync) ++t[writes_[i - 1].dsync ? 0 : 1];
    }
    return t;
  }

 protected:
  void kernel_cycle(std::size_t min_wait, std::chrono::nanoseconds timeout, bool harvest) override {
    while (io_request* r = pop_queued()) {
      entered_kernel(*r, 0);
      start(*r);
    }
    if (!harvest) return;
    const auto deadline = timeout == forever ? clk::time_point::max() : clk::now() + timeout;
    std::size_t got = 0;
    for (;;) {
      const auto now = clk::now();
      for (;;) {  // deliver in due order
        const auto it = earliest();
        if (it == held_.end() || it->due > now) break;
        const held h = *it;
        held_.erase(it);
        delivered(h);
        kernel_done(*h.r, h.res);
        ++got;
      }
      if (got >= min_wait || held_.empty() || now >= deadline) return;
      std::this_thread::sleep_until(std::min(earliest()->due, deadline));
    }
  }

 private:
  struct held {
    io_request* r;
    std::int64_t res;
    clk::time_point due;
    int write_ix;  // index into writes_ (-1: not a WAL write)
    bool is_flush;
    int fd;
    std::vector<int> covers;  // a flush: the writes of its file delivered before it was submitted
  };
  std::vector<held>::iterator earliest() {
    return std::min_element(held_.begin(), held_.end(), [](const held& a, const held& b) { return a.due < b.due; });
  }
  struct write_rec {
    int fd;
    bool dsync;
    bool delivered = false, ok = false, durable = false;
    lsn_t lsns_max = 0;
  };

  static lsn_t max_lsn_in(const std::vector<std::byte>& data) {
    lsn_t m = 0;
    for (std::size_t off = 0; off + fmt::page_size <= data.size(); off += fmt::page_size) {
      fmt::page_header h;
      std::memcpy(&h, data.data() + off, sizeof h);
      if (h.magic != fmt::page_magic) continue;
      std::size_t p = fmt::page_header_size;
      while (p + fmt::fragment_header_size <= fmt::page_header_size + h.used) {
        fmt::fragment_header f;
        std::memcpy(&f, data.data() + off + p, sizeof f);
        if (f.type == static_cast<std::uint8_t>(fmt::fragment_type::full) ||
            f.type == static_cast<std::uint8_t>(fmt::fragment_type::last))
          m = std::max<lsn_t>(m, f.lsn);
        p += fmt::fragment_header_size + f.length;
      }
    }
    return m;
  }

  void start(io_request& r) {
    const segment s = next_segment(r);
    std::int64_t res = 0;
    held h{&r, 0, {}, -1, false, r.fd, {}};
    step st{};
    std::lock_guard l(mu_);
    if (s.op == op_code::write || s.op == op_code::writev) {
      std::vector<std::byte> data;
      if (s.op == op_code::write) {
        data.assign(static_cast<std::byte*>(s.buf), static_cast<std::byte*>(s.buf) + s.length);
      } else {
        for (std::uint32_t i = 0; i < s.iov_count; ++i)
          data.insert(data.end(), static_cast<std::byte*>(s.iov[i].iov_base),
                      static_cast<std::byte*>(s.iov[i].iov_base) + s.iov[i].iov_len);
      }
      const bool dsync = has(r.flags, io_flags::dsync);
      const int rwf = dsync ? RWF_DSYNC : 0;
      ssize_t n;
      if (s.op == op_code::write) {
        iovec v{s.buf, s.length};
        n = ::pwritev2(r.fd, &v, 1, static_cast<off_t>(s.offset), rwf);
      } else {
        n = ::pwritev2(r.fd, s.iov, static_cast<int>(s.iov_count), static_cast<off_t>(s.offset), rwf);
      }
      res = n >= 0 ? n : -errno;
      std::uint32_t magic = 0;
      if (data.size() >= 4) std::memcpy(&magic, data.data(), 4);
      if (magic == fmt::page_magic) {
        ++wal_writes_;
        if (dsync) ++dsync_writes_;
        if (auto it = wscript_.find(wal_writes_); it != wscript_.end()) st = it->second;
        else st.delay = random_delay();
        writes_.push_back({r.fd, dsync, false, false, false, max_lsn_in(data)});
        h.write_ix = static_cast<int>(writes_.size() - 1);
      }
    } else if (s.op == op_code::fdatasync || s.op == op_code::fsync) {
      res = (s.op == op_code::fdatasync ? ::fdatasync(r.fd) : ::fsync(r.fd)) == 0 ? 0 : -errno;
      ++flushes_;
      if (auto it = fscript_.find(flushes_); it != fscript_.end()) st = it->second;
      else st.delay = random_delay();
      h.is_flush = true;
      // Covers the writes of this file whose completion was delivered before
      // it was submitted, and only those.
      for (std::size_t i = 0; i < writes_.size(); ++i)
        if (writes_[i].fd == r.fd && writes_[i].delivered && writes_[i].ok) h.covers.push_back(static_cast<int>(i));
    } else if (s.op == op_code::read) {
      const ssize_t n = ::pread(r.fd, s.buf, s.length, static_cast<off_t>(s.offset));
      res = n >= 0 ? n : -errno;
    } else {
      const ssize_t n = ::preadv(r.fd, s.iov, static_cast<int>(s.iov_count), static_cast<off_t>(s.offset));
      res = n >= 0 ? n : -errno;
    }
    if (st.result) res = *st.result;
    h.res = res;
    h.due = clk::now() + st.delay;
    held_.push_back(std::move(h));
    if (st.delay.count() > 0) {
      timers_.emplace_back([this, d = st.delay] {
        std::this_thread::sleep_for(d);
        signal_notify();
      });
    } else {
      signal_notify();
    }
  }

  void delivered(const held& h) {
    std::lock_guard l(mu_);
    if (h.write_ix >= 0) {
      write_rec& w = writes_[static_cast<std::size_t>(h.write_ix)];
      w.delivered = true;
      const std::size_t want = h.r->total_bytes();
      w.ok = h.res >= 0 && static_cast<std::size_t>(h.res) == want;
      if (w.ok && w.dsync) w.durable = true;
    }
    if (h.is_flush && h.res >= 0) {
      for (int i : h.covers) writes_[static_cast<std::size_t>(i)].durable = true;
    }
  }

  std::chrono::microseconds random_delay() {
    if (max_random_.count() == 0) return 0us;
    return std::chrono::microseconds(rng_() % static_cast<std::uint64_t>(max_random_.count() + 1));
  }

  mutable std::mutex mu_;
  std::map<unsigned, step> wscript_, fscript_;
  unsigned wal_writes_ = 0, flushes_ = 0, dsync_writes_ = 0;
  std::vector<write_rec> writes_;
  std::vector<held> held_;  // flusher thread only
  std::vector<std::thread> timers_;
  std::mt19937_64 rng_{1};
  std::chrono::microseconds max_random_{0};
};

std::vector<std::byte> rec(std::size_t n, std::uint8_t v = 7) { return std::vector<std::byte>(n, std::byte{v}); }

class wal_mixed_durability_test : public test_support::log_dir_test {
 protected:
  void SetUp() override {
    log_dir_test::SetUp();
    if (IsSkipped()) return;
    opts_.segment_bytes = 16 * 4096;
    opts_.mode = durability::automatic;
    opts_.dsync_max_bytes = 4096;  // 1-page batches: RWF_DSYNC; 3-page ones: write, then fdatasync
    opts_.make_backend = [this]() -> std::unique_ptr<io_backend> {
      auto b = std::make_unique<delayed_backend>();
      be_ = b.get();
      return b;
    };
  }
  delayed_backend* be_ = nullptr;

  struct result {
    int a = 0, b = 0;  // 1 acknowledged, 2 error
    lsn_t durable_while_pending = 0;
    int b_outcome_while_pending = 0;
    lsn_t l1 = 0, l2 = 0, pre = 0;
    unsigned dsync_ab = 0, writes_ab = 0;
    log::statistics st;
    std::vector<std::uint64_t> segs;
  };

  // `pre` one-page commits (RWF_DSYNC, delivered at once), then batch A
  // (a record of a_size) and batch B (b_size), B appended once A is sent.
  // The test scripts delays for A's and B's requests before. While the
  // pending one is held, `probe_after` in, durable_lsn and B's committer are
  // looked at.
  result run(int pre, std::size_t a_size, std::size_t b_size, std::chrono::milliseconds probe_after,
             const std::function<void()>& script) {
    result out;
    log w(opts_);
    for (int i = 0; i < pre; ++i) w.commit(rec(3000));
    out.pre = w.durable_lsn();
    script();
    const unsigned w0 = be_->wal_writes_submitted();
    const unsigned d0 = be_->dsync_writes_submitted();
    std::atomic<int> a{0}, b{0};
    out.l1 = w.append(rec(a_size, 1));
    std::thread c1([&] {
      try {
        w.flush(out.l1);
        a = 1;
      } catch (const log_error&) {
        a = 2;
      }
    });
    while (be_->wal_writes_submitted() < w0 + 1) std::this_thread::sleep_for(100us);
    out.l2 = w.append(rec(b_size, 2));
    std::thread c2([&] {
      try {
        w.flush(out.l2);
        if (be_->durable_prefix() < out.l2) b = 3;  // acknowledged before durable
        else b = 1;
      } catch (const log_error&) {
        b = 2;
      }
    });
    std::this_thread::sleep_for(probe_after);
    out.durable_while_pending = w.durable_lsn();
    out.b_outcome_while_pending = b.load();
    c1.join();
    c2.join();
    out.a = a;
    out.b = b;
    out.st = w.stats();
    out.dsync_ab = be_->dsync_writes_submitted() - d0;
    out.writes_ab = be_->wal_writes_submitted() - w0;
    out.segs = w.live_segments();
    return out;
  }
};

// Offsets of writes/flushes: `pre` one-page commits are writes 1..pre and no flushes.

TEST_F(wal_mixed_durability_test, AnRwfDsyncBatchAfterAPlainOneWaitsForThatOnesFlush) {
  const int pre = 2;
  auto r = run(pre, 10000, 100, 250ms, [&] {
    be_->on_write(be_->wal_writes_submitted() + 1, 50ms);   // A's write: B appended meanwhile
    be_->on_flush(be_->flushes_submitted() + 1, 500ms);        // A's fdatasync, held
  });
  EXPECT_EQ(r.st.batches - pre, 2u);
  EXPECT_EQ(r.st.dsync_batches - pre, 1u) << "not a plain batch then an RWF_DSYNC one";
  EXPECT_EQ(r.durable_while_pending, r.pre) << "B acknowledged while A's fdatasync was still running";
  EXPECT_EQ(r.b_outcome_while_pending, 0);
  EXPECT_EQ(r.a, 1);
  EXPECT_EQ(r.b, 1);
}

TEST_F(wal_mixed_durability_test, AFailedFlushOfAPlainBatchFailsTheRwfDsyncBatchAfterIt) {
  const int pre = 2;
  auto r = run(pre, 10000, 100, 150ms, [&] {
    be_->on_write(be_->wal_writes_submitted() + 1, 50ms);
    be_->on_flush(be_->flushes_submitted() + 1, 300ms, -EIO);
  });
  EXPECT_EQ(r.writes_ab, 2u);
  EXPECT_EQ(r.dsync_ab, 1u) << "B should have been an RWF_DSYNC write";
  EXPECT_EQ(r.durable_while_pending, r.pre);
  EXPECT_EQ(r.a, 2);
  EXPECT_EQ(r.b, 2) << "B acknowledged though A's fdatasync failed";
}

TEST_F(wal_mixed_durability_test, APlainBatchAfterAnRwfDsyncOneWaitsForThatWrite) {
  const int pre = 2;
  auto r = run(pre, 100, 10000, 250ms, [&] {
    // A's RWF_DSYNC write, held; B (plain) is written and flushed meanwhile.
    be_->on_write(be_->wal_writes_submitted() + 1, 500ms);
  });
  EXPECT_EQ(r.st.dsync_batches - pre, 1u);
  EXPECT_EQ(r.st.overlapped_batches, 1u) << "B did not go out beside A";
  EXPECT_EQ(r.durable_while_pending, r.pre);
  EXPECT_EQ(r.b_outcome_while_pending, 0);
  EXPECT_EQ(r.a, 1);
  EXPECT_EQ(r.b, 1);
}

TEST_F(wal_mixed_durability_test, AFailedRwfDsyncWriteFailsThePlainBatchAfterIt) {
  const int pre = 2;
  auto r = run(pre, 100, 10000, 150ms, [&] { be_->on_write(be_->wal_writes_submitted() + 1, 300ms, -EIO); });
  EXPECT_EQ(r.durable_while_pending, r.pre);
  EXPECT_EQ(r.a, 2);
  EXPECT_EQ(r.b, 2) << "B acknowledged though the write before it failed";
}

TEST_F(wal_mixed_durability_test, APlainBatchEndingASegmentThenAnRwfDsyncOneInTheNext) {
  // 13 one-page commits fill pages 0-12; A (3 pages) fills 13-15; B starts the next segment.
  const int pre = 13;
  auto r = run(pre, 10000, 100, 250ms, [&] {
    be_->on_write(be_->wal_writes_submitted() + 1, 50ms);
    be_->on_flush(be_->flushes_submitted() + 1, 500ms);
  });
  EXPECT_EQ(r.segs.size(), 2u);
  EXPECT_EQ(r.st.dsync_batches - pre, 1u);
  EXPECT_EQ(r.durable_while_pending, r.pre);
  EXPECT_EQ(r.a, 1);
  EXPECT_EQ(r.b, 1);
}

TEST_F(wal_mixed_durability_test, AnRwfDsyncBatchEndingASegmentThenAPlainOneInTheNext) {
  const int pre = 15;
  auto r = run(pre, 100, 10000, 250ms, [&] { be_->on_write(be_->wal_writes_submitted() + 1, 500ms); });
  EXPECT_EQ(r.segs.size(), 2u);
  EXPECT_EQ(r.st.dsync_batches - pre, 1u);
  EXPECT_EQ(r.durable_while_pending, r.pre);
  EXPECT_EQ(r.a, 1);
  EXPECT_EQ(r.b, 1);
}

TEST_F(wal_mixed_durability_test, TwoPlainBatchesAcrossASegmentWhoseFirstFlushFails) {
  const int pre = 13;
  auto r = run(pre, 10000, 10000, 150ms, [&] {
    be_->on_write(be_->wal_writes_submitted() + 1, 50ms);
    be_->on_flush(be_->flushes_submitted() + 1, 300ms, -EIO);
  });
  EXPECT_EQ(r.writes_ab, 2u);
  EXPECT_EQ(r.dsync_ab, 0u);
  EXPECT_EQ(r.a, 2);
  EXPECT_EQ(r.b, 2);
}

// Many committers, records of mixed sizes (1- and 3-page group commits), random
// completion delays, the load high enough for pairing at times: every
// commit that returns must be durable by the oracle, durable_lsn never ahead
// of it, and the log must not stall.
TEST_F(wal_mixed_durability_test, RandomMixesNeverAcknowledgeAheadOfDurabilityNorStall) {
  unsigned to_plain = 0, to_dsync = 0;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    opts_.dir = dir_->path() / ("rand" + std::to_string(seed));
    log w(opts_);
    be_->random_delays(seed, std::chrono::microseconds(seed % 3 == 0 ? 3000 : 600));
    const int writers = 2 + static_cast<int>(seed % 6);
    std::atomic<int> early{0}, errors{0};
    std::atomic<bool> stop{false};
    std::atomic<lsn_t> watcher_bad{0};
    std::thread watcher([&] {
      while (!stop) {
        const lsn_t d = w.durable_lsn();
        if (be_->durable_prefix() < d) watcher_bad = d;
        std::this_thread::sleep_for(200us);
      }
    });
    std::vector<std::thread> ts;
    const auto t0 = clk::now();
    for (int t = 0; t < writers; ++t) {
      ts.emplace_back([&, t] {
        std::mt19937_64 r(seed * 100 + static_cast<std::uint64_t>(t));
        for (int k = 0; k < 60; ++k) {
          const std::size_t size = r() % 4 == 0 ? 9000 + r() % 1000 : 50 + r() % 200;
          try {
            const lsn_t l = w.commit(rec(size));
            if (be_->durable_prefix() < l) ++early;
          } catch (const log_error&) {
            ++errors;
          }
        }
      });
    }
    for (auto& t : ts) t.join();
    stop = true;
    watcher.join();
    const auto st = w.stats();
    const double secs = std::chrono::duration<double>(clk::now() - t0).count();
    const auto tr = be_->transitions();
    to_plain += tr[0];
    to_dsync += tr[1];
    EXPECT_EQ(early.load(), 0) << "seed " << seed << ": commits returned before the oracle held them durable";
    EXPECT_EQ(watcher_bad.load(), 0u) << "seed " << seed << ": durable_lsn ahead of durability";
    EXPECT_EQ(errors.load(), 0);
    EXPECT_LT(secs, 30.0) << "seed " << seed;
  }
  // The runs mixed the two kinds, both ways (or they tested nothing new).
  EXPECT_GT(to_plain, 0u) << "no plain group commit followed an RWF_DSYNC one";
  EXPECT_GT(to_dsync, 0u) << "no RWF_DSYNC group commit followed a plain one";
}

// As above, with one injected failure (a write or a flush, at a random
// place): nothing acknowledged that the oracle does not hold durable, and
// every committer not acknowledged hears of the failure.
TEST_F(wal_mixed_durability_test, RandomMixesWithOneFailureAcknowledgeNothingThatIsNotDurable) {
  int failed_logs = 0;
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    opts_.dir = dir_->path() / ("fail" + std::to_string(seed));
    log w(opts_);
    be_->random_delays(seed, 800us);
    std::mt19937_64 sr(seed);
    const unsigned at = 5 + static_cast<unsigned>(sr() % 30);
    const bool flush = seed % 2 == 0;
    if (flush) be_->on_flush(at / 3 + 1, 200us, -EIO);
    else be_->on_write(at, 200us, -EIO);
    const int writers = 3 + static_cast<int>(seed % 5);
    std::atomic<int> early{0}, errors{0}, oks{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < writers; ++t) {
      ts.emplace_back([&, t] {
        std::mt19937_64 r(seed * 100 + static_cast<std::uint64_t>(t));
        for (int k = 0; k < 40; ++k) {
          const std::size_t size = r() % 4 == 0 ? 9000 + r() % 1000 : 50 + r() % 200;
          try {
            const lsn_t l = w.commit(rec(size));
            ++oks;
            if (be_->durable_prefix() < l) ++early;
          } catch (const log_error&) {
            ++errors;
            return;
          }
        }
      });
    }
    for (auto& t : ts) t.join();
    EXPECT_EQ(early.load(), 0) << "seed " << seed;
    EXPECT_LE(w.durable_lsn(), be_->durable_prefix()) << "seed " << seed;
    if (w.failure()) {
      ++failed_logs;
      EXPECT_GT(errors.load(), 0);
    }
  }
  EXPECT_GT(failed_logs, 0) << "no injected failure was reached";
}

}  // namespace
}  // namespace pageio::wal
