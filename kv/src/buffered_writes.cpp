// The write buffer's side of the store (write_buffer.hpp): a put into the
// buffer when its leaf is not in the pool, and the merger that moves
// buffered pairs into their leaves in the background.
//
// Why this is safe (docs/kv.md, "The write buffer"):
//  - a buffered put holds tree_mu shared and the buffer's lock exclusively
//    from before its append until the pair is in the buffer; every change
//    of a key through the tree (leaf_write.cpp, leaf_split.cpp: under its
//    leaf's latch; the queue's leader: under tree_mu exclusive) looks the
//    key up under the buffer's lock held across its own append, so the
//    buffer and the log agree on which came last;
//  - a change that makes a buffered pair stale logs buffer_drop in its own
//    record and drops the pair only after the tree has the change, so a
//    reader (buffer first, then tree) never misses the key;
//  - a merge is a put through the queue's leader that happens only if the
//    pair is still the buffered one (its LSN), with the drop in the same
//    record: redo repeats it whatever happened to the buffer since;
//  - the log keeps every buffered pair's record (store.cpp,
//    checkpoint_now), so recovery rebuilds the buffer.
#include "record.hpp"
#include "store_impl.hpp"

#include <chrono>
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
  return wbuf->bytes() > wbuf->limit() / 2 || (oldest != 0 && oldest < merge_below.load(std::memory_order_relaxed));
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
  // Their leaves into the pool now, outside every lock, so that the leader
  // does not read them under tree_mu.
  for (const auto& p : run) warm_path(p.key);
  run_write(nullptr, {}, {}, 3, &run);  // counts merged_pairs
}

}  // namespace pageio::kv
