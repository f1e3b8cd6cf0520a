// Memory running out on the log's flusher thread fails the log with that
// error; it does not terminate the process. Its own executable: it replaces
// the global operator new to make one allocation fail on another thread.
#include <pageio/wal/log.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <thread>
#include <vector>

#include "support/test_dir.hpp"

// The replacements below pair malloc with free, which GCC cannot see through.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {
std::atomic<bool> fail_one_elsewhere{false};  // the next allocation off the armed thread fails
std::atomic<std::thread::id> armed_by{};
}  // namespace

void* operator new(std::size_t n) {
  if (fail_one_elsewhere.load(std::memory_order_relaxed) && std::this_thread::get_id() != armed_by.load() &&
      fail_one_elsewhere.exchange(false)) {
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(n != 0 ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace pageio::wal {
namespace {

TEST(wal_out_of_memory, BadAllocInTheFlusherFailsTheLogNotTheProcess) {
  std::string why;
  auto dir = test::test_dir::create(&why);
  if (!dir) GTEST_SKIP() << why;
  options o;
  o.dir = dir->path() / "log";
  o.backend = "sync";
  o.segment_bytes = 16 * 4096;
  log w(o);
  const std::vector<std::byte> rec(100, std::byte{1});
  ASSERT_EQ(w.commit(rec), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the preparer has made segment 2 and sleeps
  const lsn_t l = w.append(rec);
  armed_by = std::this_thread::get_id();
  fail_one_elsewhere = true;  // the flusher's next allocation: the group commit it forms for LSN 2
  try {
    w.flush(l);
    FAIL() << "LSN 2 was acknowledged although the flusher could not form its group commit";
  } catch (const log_error& e) {
    EXPECT_EQ(e.code(), pageio::errc::log_failed) << e.what();
    EXPECT_EQ(e.cause(), std::make_error_code(std::errc::not_enough_memory)) << e.what();
  }
  fail_one_elsewhere = false;
  EXPECT_EQ(w.failure(), std::make_error_code(std::errc::not_enough_memory));
  EXPECT_EQ(w.durable_lsn(), 1u);
}

}  // namespace
}  // namespace pageio::wal
