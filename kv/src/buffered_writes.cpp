// The write buffer's side of the store (write_buffer.hpp): a put into the
// buffer when its leaf is not in the pool, and the merger that moves
// buffered pairs into their leaves in the background.
//
// Why this is safe (docs/kv.md, "The write buffer"):
//  - a buffered put holds tree_mu shared and its key's shard lock
//    exclusively from before its append until the pair is in the buffer;
//    every change of a key through the tree (leaf_write.cpp,
//    leaf_split.cpp: under its leaf's latch, with buffer_guard; the queue's
//    leader: under tree_mu exclusive) looks the key up under its shard lock
//    held across its own append, so the buffer and the log agree on which
//    came last;
//  - a change that makes a buffered pair stale logs buffer_drop in its own
//    record and drops the pair only after the tree has the change, so a
//    reader (buffer first, then tree) never misses the key;
//  - a merge (try_leaf_merge, or through the queue's leader when the leaf
//    must split) puts a pair into the tree only if it is still the key's
//    buffered one (its LSN), with the drop in the same record: redo repeats
//    it whatever happened to the buffer since;
//  - the log keeps every buffered pair's record (store.cpp,
//    checkpoint_now), so recovery rebuilds the buffer.
#include "record.hpp"
#include "store_impl.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <shared_mutex>

namespace pageio::kv {

store::impl::leaf_write_result store::impl::try_buffer_put(std::string_view key, std::string_view value) {
  const std::size_t n = page::leaf_cell_size(key.size(), value.size(), false);
  if (wbuf->limit() == 0 || n > page::max_leaf_cell) return {leaf_write_result::not_cached};
  std::vector<std::byte> cell(n);
  page::make_leaf_cell(cell.data(), key, std::as_bytes(std::span(value)));
  record::builder rec;
  rec.buffer_put(cell);
  const auto bytes = rec.finish();
  lsn_t lsn = 0;
  bool half_full = false;
  {
    std::shared_lock tree(tree_mu);  // no leader plans meanwhile
    check_open();
    std::unique_lock b(wbuf->lock_of(key));
    if (!wbuf->room_hint(key.size(), value.size())) {
      b.unlock();
      kick_merger();
      return {leaf_write_result::not_cached};
    }
    lsn = log->append(bytes);
    wbuf->put_locked(key, value, lsn);
    half_full = wbuf->bytes() > wbuf->limit() / 2;
  }
  note_logged(bytes.size());
  buffered_puts.fetch_add(1, std::memory_order_relaxed);
  if (half_full) kick_merger();
  return {leaf_write_result::done, lsn};
}

void store::impl::drop_buffered(const std::vector<std::string_view>& drops) {
  for (std::string_view k : drops) wbuf->drop(k);
}

void store::impl::kick_merger() {
  // No lock: a missed wake-up costs one merge_loop timeout.
  merge_cv.notify_one();
}

bool store::impl::merge_due() const {
  if (wbuf->empty_hint()) return false;
  if (wbuf->bytes() > wbuf->limit() / 2) return true;
  const lsn_t oldest = wbuf->oldest().first;
  return oldest != 0 && oldest < merge_below.load(std::memory_order_relaxed);
}

void store::impl::merge_loop() {
  using namespace std::chrono;
  std::unique_lock lk(merge_mu);
  for (;;) {
    merge_cv.wait_for(lk, milliseconds(200), [&] { return merge_stop || merge_due(); });
    if (merge_stop) return;
    if (!merge_due()) continue;
    lk.unlock();
    try {
      merge_run();
    } catch (...) {
      // A failed log or pool: the pairs stay buffered (and logged); the
      // writers see the failure themselves. Try again later.
      lk.lock();
      merge_cv.wait_for(lk, seconds(1), [&] { return merge_stop; });
      continue;
    }
    lk.lock();
  }
}

void store::impl::merge_run() {
  // A run of pairs in key order: from the oldest when a checkpoint waits for
  // it, else on from where the last run ended (a sweep over the key space).
  // Pairs next to each other in key order mostly share leaves, so a run of
  // 32 reads a few leaves, not 32.
  constexpr std::size_t run_pairs = 32;
  std::vector<write_buffer::pair> run;
  {
    const auto [oldest, oldest_key] = wbuf->oldest();
    if (oldest == 0) return;
    const bool old = oldest < merge_below.load(std::memory_order_relaxed);
    run = wbuf->run_from(old ? oldest_key : merge_cursor, run_pairs);
  }
  if (run.empty()) return;
  merge_cursor = run.back().key;
  merge_cursor.push_back('\0');  // the next key after it
  // Their leaves into the pool now, outside every lock.
  for (const auto& p : run) warm_path(p.key);
  // Leaf by leaf beside the other writers, as a leaf write; what does not
  // fit its leaf (a split) goes through the queue's leader.
  std::vector<write_buffer::pair> rest;
  for (std::size_t at = 0; at < run.size();) at = try_leaf_merge(run, at, rest);
  if (rest.empty()) return;
  try {
    run_write(nullptr, {}, {}, 3, &rest);  // counts merged_pairs
  } catch (const std::invalid_argument&) {
    // Their splits together make a record larger than the log takes (a
    // small wal_segment_bytes): one at a time.
    for (const auto& p : rest) {
      const std::vector<write_buffer::pair> one{p};
      run_write(nullptr, {}, {}, 3, &one);
    }
  }
}

std::size_t store::impl::try_leaf_merge(const std::vector<write_buffer::pair>& run, std::size_t at,
                                        std::vector<write_buffer::pair>& rest) {
  // As a leaf write (leaf_write.cpp): tree_mu shared, the leaf latched
  // exclusively, the record appended, the leaf copied back and marked. The
  // pairs' shard locks are held shared from their check (still the key's
  // buffered pair?) until after the append: no buffered put of those keys
  // falls between (it takes its shard exclusively), and one after is later
  // in the log than this record, so the drop after it (drop_if, by LSN)
  // leaves its pair alone.
  std::shared_lock tree(tree_mu);
  check_open();
  std::optional<std::string> high;
  std::optional<latched_path> path = descend_path(run[at].key, /*may_read=*/true, latch_mode::write, &high);
  pagecache::page_ref& leaf = path->leaf;
  std::size_t end = at;
  while (end < run.size() && (!high || run[end].key < *high)) ++end;
  struct shard_locks {
    std::vector<tree_lock*> held;
    ~shard_locks() { release(); }
    void release() {
      for (tree_lock* l : held) l->unlock_shared();
      held.clear();
    }
  } locks;
  {
    std::vector<tree_lock*> wanted;
    for (std::size_t i = at; i < end; ++i) wanted.push_back(&wbuf->lock_of(run[i].key));
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    locks.held.reserve(wanted.size());
    for (tree_lock* l : wanted) {
      l->lock_shared();
      locks.held.push_back(l);
    }
  }
  std::array<std::byte, page::size> copy;
  std::memcpy(copy.data(), leaf.data(), page::size);
  page::view v(copy.data());
  const auto pg = static_cast<std::uint32_t>(leaf.id().page);
  record::builder rec;
  const std::size_t max_record = max_record_bytes();
  std::vector<const write_buffer::pair*> merged;
  std::vector<std::byte> cell;
  std::size_t i = at;
  for (; i < end; ++i) {
    const write_buffer::pair& p = run[i];
    if (wbuf->lsn_of_locked(p.key) != p.lsn) continue;  // put again or dropped meanwhile
    cell.resize(page::leaf_cell_size(p.key.size(), p.value.size(), false));
    // A record the log takes: the rest of the run goes next time.
    if (!merged.empty() && rec.size() + 14 + cell.size() + p.key.size() > max_record) break;
    bool eq = false;
    const std::size_t slot = v.lower_bound(p.key, &eq);
    page::make_leaf_cell(cell.data(), p.key, std::as_bytes(std::span(p.value)));
    if ((eq && page::parse_leaf_value(v.cell(slot)).overflow) || !v.upsert(cell)) {
      rest.push_back(p);  // a chain to free, or a split: the leader's
      continue;
    }
    rec.leaf_put(pg, cell);
    rec.buffer_drop(p.key);
    merged.push_back(&p);
  }
  if (!merged.empty()) {
    rec.set_merge();
    const auto bytes = rec.finish();
    const lsn_t lsn = log->append(bytes);
    std::memcpy(leaf.data(), copy.data(), page::size);
    leaf.mark_dirty(lsn);
    locks.release();
    // Still under the leaf's latch and tree_mu: the tree has the pairs now.
    for (const write_buffer::pair* p : merged) wbuf->drop_if(p->key, p->lsn);
    note_logged(bytes.size());
    merged_pairs.fetch_add(merged.size(), std::memory_order_relaxed);
  }
  return i;
}

}  // namespace pageio::kv
