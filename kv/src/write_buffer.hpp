// The write buffer (InnoDB's change buffer; a B-tree's answer to an LSM's
// memtable): a put whose leaf is not in the pool, or is clean there, is
// logged as a `buffer_put` record (key and value, no page) and kept here,
// instead of reading or dirtying the leaf on the writer's commit path; a
// background merger later puts buffered pairs into their leaves a run at a
// time, many pairs to a leaf write. Reads look here first. docs/kv.md ("The
// write buffer") has the rules; in short:
//  - every change that makes a buffered pair stale (a put or delete of its
//    key through the tree, a merge) logs `buffer_drop` of the key in the
//    same record, and drops the pair only once the tree has the change;
//  - recovery rebuilds the buffer from the log: buffer_put adds, buffer_drop
//    removes, whatever the pages' LSNs;
//  - a checkpoint never lets the log go below the oldest buffered pair's
//    record (oldest_lsn()), and has the merger move the pairs that held it
//    back.
//
// Pairs are kept in shards by a hash of the key, each with its own lock:
// whoever logs a change of a key holds the key's shard lock (exclusively to
// buffer or drop it, shared otherwise) from its look-up until after its
// append, so the shard changes in the log's order; 64 writers on one lock
// were slower than reading the leaves. Lock order: tree_mu, page latches,
// then one shard lock at a time, except the merger, which holds its run's
// shards shared, taken in address order after the leaf's latch.
#pragma once

#include "tree_lock.hpp"

#include <pageio/engine/units.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pageio::kv {

class write_buffer {
 public:
  struct pair {
    std::string key, value;
    lsn_t lsn = 0;
  };

  // At most `limit_bytes` of pairs (cost() each); 0: no buffering at all.
  explicit write_buffer(std::uint64_t limit_bytes);

  std::uint64_t limit() const noexcept { return limit_; }
  // Without a lock: whether there is anything, and whether a pair of these
  // sizes would fit now (hints; exact under the shard locks).
  bool empty_hint() const noexcept { return count_.load(std::memory_order_acquire) == 0; }
  bool room_hint(std::size_t key_bytes, std::size_t value_bytes) const noexcept {
    return limit_ != 0 && bytes() + cost(key_bytes, value_bytes) <= limit_;
  }
  std::uint64_t bytes() const noexcept { return bytes_.load(std::memory_order_relaxed); }
  std::size_t size() const noexcept { return count_.load(std::memory_order_relaxed); }

  // The key's shard lock, for a caller that holds it across its append.
  tree_lock& lock_of(std::string_view key) const noexcept { return shard_of(key).mu; }
  // Under that lock (shared for lsn_of_locked, exclusive for the others).
  lsn_t lsn_of_locked(std::string_view key) const;  // 0: not buffered
  void put_locked(std::string_view key, std::string_view value, lsn_t lsn);
  bool drop_locked(std::string_view key);  // false: the key was not buffered

  // Without a lock: false when the key is surely not buffered (a counting
  // filter of the buffered keys' hashes; true may be a false positive).
  bool may_hold(std::string_view key) const noexcept;
  std::size_t filter_slot(std::string_view key) const noexcept;  // which count may_hold reads

  // Each of these takes the shard locks itself; get() asks may_hold() first.
  std::optional<std::string> get(std::string_view key) const;
  lsn_t lsn_of(std::string_view key) const;
  bool drop(std::string_view key);
  // Drops the key's pair only if it is still the one logged at `lsn`.
  bool drop_if(std::string_view key, lsn_t lsn);
  void put(std::string_view key, std::string_view value, lsn_t lsn);  // recovery
  // The first `max` pairs with from <= key (from < key with from_open) and
  // key < *to (to null: no end), in key order, appended to `out`.
  void range(std::string_view from, bool from_open, const std::string* to, std::vector<pair>& out,
             std::size_t max = SIZE_MAX) const;
  // Up to `n` pairs in key order from the first key >= `from`; from the
  // smallest key when there is none.
  std::vector<pair> run_from(std::string_view from, std::size_t n) const;
  // The oldest pair (the smallest LSN): its LSN (0 when empty) and key.
  std::pair<lsn_t, std::string> oldest() const;

  // What a pair costs in memory, at most: its map node and by_age entry
  // (stale ones included) with malloc's headers, about 160 bytes, and the
  // heap blocks of a key or value too long for std::string's 15 inline.
  static constexpr std::size_t cost(std::size_t key_bytes, std::size_t value_bytes) noexcept {
    return 160 + (key_bytes > 15 ? key_bytes + 32 : 0) + (value_bytes > 15 ? value_bytes + 32 : 0);
  }

 private:
  struct slot {
    std::string value;
    lsn_t lsn;
    std::uint64_t age = 0;  // its entry's number in the shard's by_age
  };
  // A pair's newest record, or a stale entry (key null) of a record since
  // overwritten or dropped.
  struct aged {
    lsn_t lsn;
    const std::string* key;
    slot* s;
  };
  struct shard {
    mutable tree_lock mu;
    std::map<std::string, slot, std::less<>> by_key;
    // Each pair's newest record, in LSN order, the first not stale being
    // the oldest (which holds the log). A shard changes in the log's order
    // (its lock is held from the append to the change), so an entry is
    // added at the back: no tree, no allocation per pair; stale entries
    // leave from the front, or all at once when they outnumber the rest.
    std::deque<aged> by_age;
    std::uint64_t first_age = 0;  // the number of by_age.front()
    std::size_t stale = 0;
    void add_aged(const std::string* key, slot& sl, lsn_t lsn);
    void make_stale(const slot& sl);
  };
  static constexpr std::size_t shards = 64;
  // One hash of a key picks both its shard and its filter slot.
  static std::size_t hash_of(std::string_view key) noexcept;
  shard& shard_at(std::size_t hash) const noexcept;
  std::atomic<std::uint8_t>& filter_at(std::size_t hash) const noexcept;
  shard& shard_of(std::string_view key) const noexcept;
  static void count(std::atomic<std::uint8_t>& slot, bool add) noexcept;  // under the key's shard lock

  std::uint64_t limit_;
  // How many buffered keys hash to each slot, changed with the key's shard
  // lock held exclusively (released), read without it (acquired): a slot
  // reads 0 only once every key hashing to it has been dropped, which is
  // after the tree has the change that made it stale. A count that reaches
  // 255 stays there (a slot that always says "maybe": slower, never wrong).
  // Four one-byte slots for each pair the limit allows, rounded up to a
  // power of two (1/40 to 1/20 of the limit), at least 64 Ki (the buffer
  // may hold pairs rebuilt by recovery while it is off).
  std::size_t filter_mask_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> filter_;
  static constexpr std::uint8_t filter_sticky = 255;
  mutable std::array<shard, shards> shards_;
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::size_t> count_{0};
};

// For a change of `key` through the tree: holds the key's shard lock
// (shared, or exclusively when the key is buffered) from the look-up until
// it goes; drop() drops the key's pair, once the tree has the change.
// Nothing at all when the buffer is off and empty.
class buffer_guard {
 public:
  buffer_guard(write_buffer& b, std::string_view key);
  ~buffer_guard();
  buffer_guard(const buffer_guard&) = delete;
  buffer_guard& operator=(const buffer_guard&) = delete;
  bool buffered() const noexcept { return buffered_; }
  void drop();

 private:
  write_buffer& b_;
  std::string_view key_;
  tree_lock* mu_ = nullptr;
  enum { none, shared, exclusive } held_ = none;
  bool buffered_ = false;
};

}  // namespace pageio::kv
