// The page latch: a futex reader-writer lock of one word (buffer_pool.hpp).

#include <pageio/engine/detail/futex.hpp>

#include <climits>

#include "pool_internal.hpp"

namespace pageio::pagecache {

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

}  // namespace pageio::pagecache
