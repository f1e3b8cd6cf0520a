// The page table: page id -> frame, in shards each under its own mutex.
// A pin only rises under the shard lock of its page, which is also where an
// eviction checks that it is zero.

#include <algorithm>

#include "pool_internal.hpp"

namespace pageio::pagecache {

buffer_pool::shard& buffer_pool::shard_for(const page_id& id) noexcept {
  return *shards_[(hash_page(id) >> 40) & shard_mask_];
}

void buffer_pool::insert_loading_locked(shard& s, frame* f, const page_id& id) {
  f->id = id;
  f->pins.store(1, std::memory_order_relaxed);
  f->freq.store(0, std::memory_order_relaxed);
  f->state.store(detail::st_loading, std::memory_order_release);
  f->dirty.store(false, std::memory_order_relaxed);
  f->lsn.store(0, std::memory_order_relaxed);
  f->sleepers = false;
  f->read_ahead = false;
  s.table.insert(*f);
}

bool buffer_pool::publish_loading(frame* f, const page_id& id) {
  shard& s = shard_for(id);
  {
    std::lock_guard lock(s.mu);
    if (s.table.find(id, frame_hash{}, frame_equal{}) != s.table.end()) return false;
    insert_loading_locked(s, f, id);
    f->read_ahead = true;
  }
  std::lock_guard el(evict_mu_);
  enqueue_new_locked(f);
  return true;
}

frame* buffer_pool::lookup_or_insert(const page_id& id, bool* created, bool* ready) {
  shard& s = shard_for(id);
  frame* fresh = nullptr;
  for (;;) {
    {
      std::unique_lock lock(s.mu);
      auto it = s.table.find(id, frame_hash{}, frame_equal{});
      if (it != s.table.end()) {
        frame* f = &*it;
        f->pins.fetch_add(1, std::memory_order_acq_rel);
        note_access_locked(f);
        *created = false;
        *ready = f->state.load(std::memory_order_acquire) == detail::st_ready;
        if (*ready) {
          ++s.hits;
        } else {
          ++s.misses;
          ++s.waits;
        }
        lock.unlock();
        if (fresh != nullptr) release_frame(fresh);  // lost the race: someone else is reading it
        return f;
      }
      if (fresh != nullptr) {
        insert_loading_locked(s, fresh, id);
        ++s.misses;
        lock.unlock();
        {
          std::lock_guard el(evict_mu_);
          enqueue_new_locked(fresh);
        }
        *created = true;
        *ready = false;
        return fresh;
      }
    }
    fresh = allocate_frame();  // outside the shard lock; then look again
  }
}


}  // namespace pageio::pagecache
