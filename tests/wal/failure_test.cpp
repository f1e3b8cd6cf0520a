// What the log acknowledges when things go wrong around it: a close with
// group commits still in flight, a write that transfers less than asked, a
// durability callback that throws, a record the format cannot hold; and
// what the flush of a group commit covers.
#include <pageio/wal/log.hpp>
#include <pageio/wal/reader.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "log_dir_fixture.hpp"
#include "support/scripted_backend.hpp"
#include "support/test_dir.hpp"

namespace pageio::wal {
namespace {

using namespace std::chrono_literals;

class failure_test : public test_support::log_dir_test {
 protected:
  void SetUp() override {
    log_dir_test::SetUp();
    if (IsSkipped()) return;
    opts_.segment_bytes = 16 * 4096;
    opts_.mode = durability::dsync_writes;  // two group commits may be in flight at once
    opts_.make_backend = [this]() -> std::unique_ptr<io_backend> {
      auto b = std::make_unique<test::scripted_backend>(make_backend("sync"));
      script_ = b.get();
      return b;
    };
  }
  test::scripted_backend* script_ = nullptr;
};

std::vector<std::byte> rec(std::size_t n) { return std::vector<std::byte>(n, std::byte{7}); }

TEST_F(failure_test, ClosingNeverAcknowledgesAGroupCommitStillInFlight) {
  // Group commit A (LSN 1) is written; group commit B (LSN 2), appended
  // meanwhile, is sent once A's write is done, and fails 400 ms later. The
  // log is closed while both are in flight: LSN 2's committer must not hear
  // success; it must get B's error. (A's flush waits for B's write, to cover
  // both, so A's committer hears of the failure too; the flush it would
  // have had takes 200 ms.)
  opts_.mode = durability::write_then_fdatasync;
  std::optional<log> w(std::in_place, opts_);
  script_->on_write(1, 50ms);  // room for LSN 2 to be appended meanwhile
  script_->on_flush(1, 200ms);
  script_->on_write(2, 400ms, -EIO);
  const lsn_t l1 = w->append(rec(100));
  std::thread c1([&] {
    try {
      w->flush(l1);
    } catch (const log_error&) {
      // Its flush was to cover B's write too, which failed.
    }
  });
  // A is on its way before LSN 2 exists: otherwise (c1 slow to start) one
  // batch held both, no second write ever came, and the wait below hung
  // (a CI run timed out there).
  while (script_->writes_seen() < 1) std::this_thread::sleep_for(1ms);
  const lsn_t l2 = w->append(rec(100));
  std::atomic<int> outcome{0};  // 1 acknowledged, 2 error
  std::thread c2([&] {
    try {
      w->flush(l2);
      outcome = 1;
    } catch (const log_error&) {
      outcome = 2;
    }
  });
  while (script_->writes_seen() < 2) std::this_thread::sleep_for(1ms);
  std::thread closer([&] { w.reset(); });  // ~log while both are in flight
  c1.join();
  c2.join();
  closer.join();
  EXPECT_EQ(outcome.load(), 2) << "LSN 2 was acknowledged although its write failed";
}

TEST_F(failure_test, TwoGroupCommitsWrittenBackToBackShareOneFlush) {
  // A's write takes 300 ms; B is appended and waited for meanwhile, and
  // written once A's write is done. A's flush waits for B's write and covers
  // both: one fdatasync for two group commits (it was one each). Both are
  // then acknowledged, in order. (300 ms: B's committer must be waiting
  // before A's write completes, even on a loaded machine.)
  opts_.mode = durability::write_then_fdatasync;
  log w(opts_);
  script_->on_write(1, 300ms);
  const lsn_t l1 = w.append(rec(100));
  std::thread c1([&] { w.flush(l1); });
  while (script_->writes_seen() < 1) std::this_thread::sleep_for(1ms);  // A alone in its batch
  const lsn_t l2 = w.append(rec(100));
  w.flush(l2);
  c1.join();
  EXPECT_EQ(script_->writes_seen(), 2u);
  EXPECT_EQ(script_->flushes_seen(), 1u) << "each group commit had its own flush";
  EXPECT_EQ(w.stats().batches, 2u);
  EXPECT_GE(w.durable_lsn(), l2);
  // A flush covers one file: a group commit in the next segment has its own.
}

TEST_F(failure_test, AWriteThatTransfersLessThanAskedFailsTheLog) {
  log w(opts_);
  w.commit(rec(50));
  script_->on_write(2, 0us, 0);  // the next write transfers nothing
  try {
    w.commit(rec(50));
    FAIL() << "a write that transferred 0 of 4096 bytes was acknowledged";
  } catch (const log_error& e) {
    EXPECT_NE(std::string(e.what()).find("short"), std::string::npos) << e.what();
  }
  EXPECT_EQ(w.durable_lsn(), 1u);
  EXPECT_THROW(w.commit(rec(10)), log_error);
}

TEST_F(failure_test, ADurabilityCallbackThatThrowsFailsTheLogNotTheProcess) {
  log w(opts_);
  const lsn_t l = w.append(rec(10));
  w.when_durable(l, [](std::error_code) { throw std::runtime_error("callback failed"); });
  // The callback runs on the flusher once LSN l is durable, and fails the log.
  for (int i = 0; i < 2000 && !w.failure(); ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(w.failure());
  EXPECT_GE(w.durable_lsn(), l);
  try {
    w.commit(rec(10));
    FAIL() << "the log went on after a callback threw";
  } catch (const log_error& e) {
    EXPECT_NE(std::string(e.what()).find("callback failed"), std::string::npos) << e.what();
  }
}

TEST_F(failure_test, ARecordLargerThanTheFormatHoldsIsRefusedBeforeItIsRead) {
  log w(opts_);
  std::byte one{};
  // A span that claims 4 GiB: refused on its size, never read.
  const std::span<const std::byte> huge(&one, std::size_t{1} << 32);
  EXPECT_THROW(w.append(huge), std::invalid_argument);
  EXPECT_EQ(w.commit(rec(1)), 1u);
}

}  // namespace
}  // namespace pageio::wal
