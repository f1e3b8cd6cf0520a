// Linux futex calls on a 32-bit atomic word, for the waits the layers above
// build without a mutex (the log's committers, the page cache's frames and
// latches).
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <ctime>

namespace pageio::detail {

// Sleeps while `word` holds `expected`: returns at once if it does not, and
// may return spuriously, so callers re-check in a loop.
inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

// The same, for at most `timeout_ns` (relative).
inline void futex_wait_for(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::int64_t timeout_ns) noexcept {
  if (timeout_ns <= 0) return;
  timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000), static_cast<long>(timeout_ns % 1'000'000'000)};
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, &ts, nullptr, 0);
}

// Wakes up to `n` threads sleeping on the word's address. It never touches
// the word in user space, so it may be called after the word's owner, having
// seen the new value, has gone (a stray wake of whatever lives there next is
// a spurious wakeup, which every futex user tolerates).
inline void futex_wake(std::atomic<std::uint32_t>* word, int n) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, n, nullptr, nullptr, 0);
}

}  // namespace pageio::detail
