// The page latch: a futex reader-writer lock (buffer_pool.hpp). In a pool
// its readers count themselves in per-thread stripes; a writer adds the
// stripes up and sleeps on drain_ until they come to zero.

#include <pageio/engine/detail/futex.hpp>

#include <climits>

#include "pool_internal.hpp"

namespace pageio::pagecache {

std::uint32_t detail::assign_thread_stripe() noexcept {
  static std::atomic<std::uint32_t> next{0};
  const std::uint32_t mine = next.fetch_add(1, std::memory_order_relaxed) % reader_stripes;
  thread_stripe_plus_one = mine + 1;
  return mine;
}

void page_latch::wait(std::uint32_t seen) noexcept {
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  // Returns at once if the state moved on since `seen` (the futex compares).
  if (state_.load(std::memory_order_seq_cst) == seen) {
    pageio::detail::futex_wait(state_, seen);
  }
  sleepers_.fetch_sub(1, std::memory_order_seq_cst);
}

void page_latch::wake() noexcept {
  pageio::detail::futex_wake(&state_, INT_MAX);
}

std::uint32_t page_latch::striped_readers() const noexcept {
  // Modulo 2^32: a shared hold released on another thread than the one that
  // took it leaves +1 in one stripe and -1 in another, which add up to 0.
  // Only the stripes used in this pool: a reader marks its stripe used
  // before it counts there (seq_cst both), so a stripe this load of `used`
  // misses holds no reader that got past the writer bit.
  std::uint32_t sum = 0;
  const std::uint32_t used = stripes_->used.load(std::memory_order_seq_cst);
  for (std::uint32_t s = 0; s < detail::reader_stripes; ++s) {
    if ((used & (1u << s)) != 0) {
      sum += stripes_->latches[std::size_t{s} * stripes_->frames + index_].load(std::memory_order_seq_cst);
    }
  }
  return sum;
}

void page_latch::reader_left() noexcept {
  drain_.fetch_add(1, std::memory_order_seq_cst);
  pageio::detail::futex_wake(&drain_, INT_MAX);
}

void page_latch::drain() noexcept {
  // No wake-up is lost: a reader's count dropped after this sum read it is
  // followed by that reader seeing the writer bit (set before) and bumping
  // drain_, which was read before the sum.
  for (int spins = 0;; ++spins) {
    const std::uint32_t gen = drain_.load(std::memory_order_seq_cst);
    if (striped_readers() == 0) return;
    if (spins < 100) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#elif defined(__aarch64__)
      asm volatile("yield");
#endif
      continue;
    }
    pageio::detail::futex_wait(drain_, gen);
  }
}

}  // namespace pageio::pagecache
