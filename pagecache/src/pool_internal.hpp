// The buffer pool's internals, shared by its source files (not installed):
// the frame, the page table's types, the eviction queues, the I/O lanes and
// the per-file state. Each .cpp next to this one holds one concern:
//   page_table.cpp   page id -> frame, in shards (lookups, inserts)
//   replacement.cpp  the free list, S3-FIFO / CLOCK, choosing a victim
//   io_lanes.cpp     the small pool of backends the pool's I/O runs on
//   write_back.cpp   the dirty list, write-back, checkpoint, the cleaner
//   buffer_pool.cpp  construction, files, and the read paths (fetch)
#pragma once

#include <pageio/pagecache/buffer_pool.hpp>

#include <boost/intrusive/list.hpp>

#include <cstddef>
#include <optional>
#include <set>
#include <vector>

namespace pageio::pagecache {

namespace bi = boost::intrusive;

namespace detail {

enum : std::uint32_t { st_free = 0, st_loading = 1, st_ready = 2, st_failed = 3 };
enum : std::uint8_t { q_none = 0, q_free = 1, q_small = 2, q_main = 3 };
// Set in `pins` when a failed read unpublishes the frame: whoever drops the
// last pin sees it in the same atomic step and frees the frame.
constexpr std::uint32_t pin_failed = 1u << 31;
// Set in `pins` while the frame is in no page table (free, or taken for a
// page not yet published). An eviction sets it with a compare-and-swap from
// 0 and then adds up the frame's reader stripes: a lock-free hit that
// counted its pin there first wins, and one that counts afterwards sees the
// bit and lets go (buffer_pool::try_hit).
constexpr std::uint32_t pin_free = 1u << 30;

// One cache line holds everything a hit reads (the tags, the state, the
// latch, the access counter). A hit writes none of it: its pin and its
// shared latch are counted in its thread's reader stripe (buffer_pool's
// pin_stripes_, the latch's readers_), so hits on other CPUs leave the line
// shared in every cache. `pins` counts the other pins (misses, waits,
// batches, asynchronous misses, write-back).
struct alignas(64) frame {
  // The page table: the page id again as atomics for lock-free lookups,
  // which may meet a frame while it changes hands, and the next frame of its
  // bucket's chain (changed under the shard lock; followed without it).
  std::atomic<std::uint64_t> tag_page{UINT64_MAX};
  std::atomic<std::uint32_t> tag_file{UINT32_MAX};
  std::atomic<std::uint32_t> pins{pin_free};
  // The futex word: loading -> ready or failed, changed under the shard lock.
  std::atomic<std::uint32_t> state{st_free};
  std::atomic<std::uint8_t> freq{0};       // accesses since the eviction scan last looked (capped)
  std::atomic<bool> read_ahead{false};     // read ahead and not asked for yet
  std::atomic<bool> dirty{false};          // set and cleared under dirty_mu_
  std::uint8_t queue = 0;                  // q_none, q_free, q_small or q_main (evict_mu_)
  page_latch latch;
  std::atomic<frame*> chain{nullptr};
  std::byte* data = nullptr;
  // Cold: misses, eviction, write-back, changes.
  std::atomic<lsn_t> lsn{0};               // highest LSN it was marked with
  bi::list_member_hook<> queue_hook;           // free list, or an eviction FIFO (evict_mu_)
  bi::list_member_hook<> dirty_hook;           // the dirty list (dirty_mu_)
  page_id id;
  lsn_t rec_lsn = 0;                       // first LSN since it was last clean (dirty_mu_)
  bool sleepers = false;                   // a thread sleeps on `state` (shard lock)
  std::vector<std::function<void()>> waiters;  // run when it stops loading (shard lock)
  std::error_code error;                   // why it failed (before state = failed)
  std::string error_what;
};
static_assert(offsetof(frame, data) + sizeof(std::byte*) <= 64, "a hit's fields share one cache line");

}  // namespace detail

using detail::frame;

namespace detail {

inline std::uint64_t hash_page(const page_id& id) noexcept {
  std::uint64_t h = id.page * 0x9E3779B97F4A7C15ull ^ (std::uint64_t{id.file} + 1) * 0xC2B2AE3D27D4EB4Full;
  h ^= h >> 31;
  h *= 0xD6E8FEB86659FD93ull;
  h ^= h >> 32;
  return h;
}

using frame_list = bi::list<frame, bi::member_hook<frame, bi::list_member_hook<>, &frame::queue_hook>>;
using dirty_list = bi::list<frame, bi::member_hook<frame, bi::list_member_hook<>, &frame::dirty_hook>>;

inline std::size_t round_up_pow2(std::size_t n) {
  std::size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

inline void count_done(io_request& r) noexcept { ++*static_cast<std::size_t*>(r.user_data); }

}  // namespace detail

using namespace detail;

// One shard of the page table: buckets of frames chained through
// frame::chain. Inserts and erases take `mu`; a lookup may walk a chain
// without it (frames are never freed while the pool lives, so a stale
// pointer still points at a frame) and then validates what it found.
struct alignas(64) buffer_pool::shard {
  std::mutex mu;
  std::uint64_t misses = 0, waits = 0;  // under `mu`
  std::unique_ptr<std::atomic<frame*>[]> heads;
  std::size_t mask = 0;

  explicit shard(std::size_t n) : heads(new std::atomic<frame*>[n]), mask(n - 1) {
    for (std::size_t i = 0; i < n; ++i) heads[i].store(nullptr, std::memory_order_relaxed);
  }
  std::atomic<frame*>& bucket(const page_id& id) noexcept { return heads[hash_page(id) & mask]; }
  frame* find_locked(const page_id& id) noexcept {
    for (frame* f = bucket(id).load(std::memory_order_relaxed); f != nullptr;
         f = f->chain.load(std::memory_order_relaxed)) {
      if (f->id == id) return f;
    }
    return nullptr;
  }
  void insert_locked(frame* f) noexcept {
    std::atomic<frame*>& head = bucket(f->id);
    f->chain.store(head.load(std::memory_order_relaxed), std::memory_order_relaxed);
    head.store(f, std::memory_order_release);  // its tags and chain before it is reachable
  }
  void erase_locked(frame* f) noexcept {
    std::atomic<frame*>* link = &bucket(f->id);
    for (frame* g = link->load(std::memory_order_relaxed); g != nullptr; g = link->load(std::memory_order_relaxed)) {
      if (g == f) {
        // f keeps its own chain pointer, so a lookup standing on it goes on.
        link->store(f->chain.load(std::memory_order_relaxed), std::memory_order_release);
        return;
      }
      link = &g->chain;
    }
  }
};

// Hits are counted per thread stripe, not per shard: two threads hitting
// pages of one shard would otherwise bounce its counter between their CPUs.
struct alignas(64) buffer_pool::hit_stripe {
  std::atomic<std::uint64_t> n{0};
};
inline constexpr std::size_t hit_stripes = detail::reader_stripes;

struct buffer_pool::queues {
  frame_list free, small, main;
  dirty_list dirty;  // under dirty_mu_, oldest first
  // First-dirty LSNs of the pages a write-back has copied (so they left the
  // dirty list) and not yet finished with (under dirty_mu_).
  std::multiset<lsn_t> writing;
  lsn_t max_marked = 0;  // the highest LSN mark_dirty was given (under dirty_mu_)
  std::size_t small_target = 0;
  std::uint8_t freq_cap = 3;
  // Ghosts: pages recently dropped from the small FIFO without a second
  // access; one that comes back goes straight to the main FIFO. A
  // direct-mapped table of page hashes, twice the main FIFO's share of the
  // frames: a new ghost overwrites whatever shares its slot, so a ghost
  // lives for about as many evictions as the main FIFO holds pages (the
  // FIFO of ghosts S3-FIFO describes, without a node or a list per page).
  std::vector<std::uint64_t> ghosts;  // 0: empty
  std::uint64_t ghost_mask = 0;
  static std::uint64_t ghost_tag(std::uint64_t h) noexcept { return h != 0 ? h : 1; }
};

struct buffer_pool::lane {
  std::unique_ptr<io_backend> backend;
  bool lone = false;  // built from options::lone_backend
};

struct buffer_pool::file_entry {
  pageio::file f;
  std::atomic<std::uint64_t> size_pages{0};  // pages that exist on disk (read-ahead stops there)
  std::atomic<std::uint64_t> next_sequential{UINT64_MAX};  // a miss here continues a run
  pageio::file dw;  // its double-write area (options::doublewrite)

  // Under dirty_mu_. The oldest first-dirty LSN of the pages written since
  // the file's last sync began, and of those the sync now running covers
  // (kept for ever if it fails).
  std::optional<lsn_t> unsynced, syncing;
  // fsyncgate: an fdatasync of the file failed. Nothing more is written to
  // it, and nothing written since its last good sync is reported durable.
  bool failed = false;
  std::error_code failed_ec;
  std::string failed_what;

  std::uint64_t dw_batches = 0;  // under write_mu_
};

inline void lower(std::optional<lsn_t>& slot, lsn_t v) noexcept {
  if (!slot || v < *slot) slot = v;
}


}  // namespace pageio::pagecache
