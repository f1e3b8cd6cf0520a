// The store's state, shared by its source files (store.cpp: open, recovery,
// writes, checkpoints; reads.cpp: get and scans).
//
// Locks (docs/kv.md, "Concurrency"):
//  - writers queue (newest_writer, a lock-free stack); the first in line plans,
//    appends and applies the changes of a group of them under writer_mu
//    and wakes them; each then waits for durability outside every lock, so
//    concurrent writers share group commits;
//  - tree_mu: readers hold it shared while they walk the tree, and so does a
//    write that stays in its leaf (leaf_write.cpp: it changes the leaf under
//    the leaf's latch); the queue's leader holds it exclusively while it
//    plans its group and copies the pages into the pool (no wait for the
//    log under it);
//  - each page's pool latch, exclusively, while its bytes change, so the
//    pool's write-back never copies half a change.
#pragma once

#include "page.hpp"
#include "tree_lock.hpp"
#include "tree_writer.hpp"
#include "write_buffer.hpp"

#include <pageio/engine/file.hpp>
#include <pageio/kv/store.hpp>
#include <pageio/pagecache/buffer_pool.hpp>
#include <pageio/wal/log.hpp>

#include <atomic>
#include <pageio/engine/detail/futex.hpp>
#include <exception>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>
#include <thread>

namespace pageio::kv {

struct store::impl {
  options opts;
  std::string wal_archive;  // the log archive this opening uses (empty: none)
  pageio::file lock_file;  // LOCK, flock()ed from opening to close(): one process at a time
  std::unique_ptr<wal::log> log;
  std::unique_ptr<pagecache::buffer_pool> pool;
  pagecache::file_id file = 0;

  std::mutex writer_mu;
  tree_writer::page_stock page_stock;  // under writer_mu
  tree_lock tree_mu;
  // Page allocation by leaf splits under tree_mu shared (leaf_split.cpp):
  // the meta page and the free list change under it (or under tree_mu
  // exclusive, the queue's leader), from planning to the pages' update.
  std::mutex alloc_mu;
  tree_writer::page_stock split_stock;  // under alloc_mu
  // The root and the height, as of the last applied change (read under
  // tree_mu; the root also without it, as a hint: see warm_path).
  std::atomic<std::uint32_t> root{0};
  std::uint32_t height = 0;

  // Puts whose leaf was not in the pool, logged and kept in memory until
  // the merger puts them into their leaves (write_buffer.hpp).
  std::unique_ptr<write_buffer> wbuf;
  std::atomic<std::uint64_t> buffered_puts{0}, merged_pairs{0};
  // options::replica_unread: wbuf stays empty; every pair the log has
  // buffered has its record at or above buffer_floor (where recovery
  // started, then each replayed source checkpoint's recovery LSN). Changed
  // under writer_mu and tree_mu exclusively (replay, recovery).
  bool unread = false;
  lsn_t buffer_floor = 1;
  // Reads need the write buffer: refused on an unread replica.
  void check_readable() const;
  // The merger: wakes when the buffer is half full, or when a checkpoint
  // found pairs older than its redo point holding the log back
  // (merge_below), and merges runs of pairs in key order from merge_cursor.
  std::mutex merge_mu;
  std::condition_variable merge_cv;
  bool merge_stop = false;
  std::atomic<lsn_t> merge_below{0};
  std::string merge_cursor;  // the merger's own
  std::thread merger;

  bool closed = false;
  // A replayed record failed to apply part-way (store::replay): its pages
  // may hold part of it, so nothing is checkpointed or written back; the
  // next opening redoes the record from the log, and says why it fails.
  std::atomic<bool> replay_failed{false};
  std::atomic<std::uint64_t> puts{0}, deletes{0}, batches{0}, gets{0}, scans{0}, checkpoints{0};
  std::uint64_t recovered_records = 0;
  lsn_t recovered_from = 0;  // the checkpoint LSN recovery started at
  std::atomic<lsn_t> checkpoint_lsn{0};

  // Background checkpoints.
  std::mutex bg_mu;
  std::condition_variable bg_cv;
  bool bg_stop = false;
  std::atomic<bool> bg_kick{false};  // a writer saw enough logged for a checkpoint
  std::atomic<std::uint64_t> logged_since_checkpoint{0};  // bytes
  std::thread bg;
  std::mutex checkpoint_mu;  // one checkpoint at a time

  // Reads `pg` (pinned). Throws corruption_error naming the page for a page
  // of an unexpected kind.
  pagecache::page_ref fetch(std::uint32_t pg) { return pool->fetch({file, pg}); }

  // Copies planned pages into the pool, marking them with `lsn`; with `meta`,
  // the root and height it gives become the readers'. The caller holds
  // tree_mu exclusively.
  // Pages in `fresh` are overwritten whole, so not read first if not in the pool.
  void apply_pages(const std::vector<std::pair<std::uint32_t, const std::array<std::byte, page::size>*>>& pages,
                   lsn_t lsn, const page::meta_fields* meta = nullptr,
                   const std::vector<std::uint32_t>* fresh = nullptr);

  // One writer's change, queued (see run_write).
  struct pending_write {
    pending_write(const write_batch* b, std::string_view k, std::string_view v, int what,
                  const std::vector<write_buffer::pair>* m = nullptr)
        : batch(b), key(k), value(v), kind(what), merge(m) {}
    const write_batch* batch;
    std::string_view key, value;
    int kind;  // 0 put, 1 del, 2 batch, 3 merge
    // kind 3: buffered pairs to put into their leaves, each only if it is
    // still the key's buffered pair (same LSN).
    const std::vector<write_buffer::pair>* merge;
    lsn_t lsn = 0;
    std::exception_ptr error;
    bool done = false;          // set by its leader before `ready`
    bool flush_failed = false;  // the group's wait for the log failed
    // Set once (done, or lead the next group), with a futex wake: a plain
    // futex, because std::binary_semaphore's wait spins through
    // sched_yield first, and with 64 writers on two CPUs those yields were
    // 80% of all context switches.
    std::atomic<std::uint32_t> ready{0};
    void wait_ready() noexcept {
      while (ready.load(std::memory_order_acquire) == 0) pageio::detail::futex_wait(ready, 0);
    }
    void set_ready() noexcept {
      ready.store(1, std::memory_order_release);
      pageio::detail::futex_wake(&ready, 1);  // may touch a word whose owner has gone: see futex.hpp
    }
    pending_write* older = nullptr;  // the writer that joined the queue just before
  };
  // The queue of writers, newest first; empty when no writer is in a group.
  std::atomic<pending_write*> newest_writer{nullptr};

  // Brings the pages from the root to `key`'s leaf into the pool, outside
  // every lock, so that no miss is read under tree_mu (where it would hold
  // up the queue's leader and, behind it, everyone).
  void warm_path(std::string_view key) noexcept;
  // A leaf, pinned and latched shared (the latch, declared last, goes first).
  struct leaf_ref {
    pagecache::page_ref page;
    std::shared_lock<pagecache::page_latch> latch;
  };
  // Walks from the root to the leaf whose range holds `key`, tree_mu held.
  // With may_read false, a page not in the pool ends the walk: nothing.
  std::optional<leaf_ref> descend(std::string_view key, bool may_read = true);
  // The same walk, latch-coupled (reads.cpp), ending with the leaf latched
  // shared (read), exclusively (write), or exclusively together with its
  // parent (split: the parent is empty when the leaf is the root).
  enum class latch_mode { read, write, split };
  struct latched_path {
    pagecache::page_ref parent, leaf;
    // Declared after the pages, so let go before them.
    std::unique_lock<pagecache::page_latch> parent_latch;
    std::unique_lock<pagecache::page_latch> leaf_exclusive;
    std::shared_lock<pagecache::page_latch> leaf_shared;
  };
  // With `high`, the leaf's high fence (its keys are below it; none: the
  // last leaf), valid while the leaf is latched.
  std::optional<latched_path> descend_path(std::string_view key, bool may_read, latch_mode mode,
                                           std::optional<std::string>* high = nullptr);
  // A put or delete that stays in its leaf, done without the queue
  // (leaf_write.cpp): `done` with its LSN (0: a delete of an absent key);
  // `queue` when it reaches beyond the leaf (a split, an emptied leaf,
  // overflow pages); `not_cached` when, without may_read, a page on the way
  // was not in the pool (read it outside the lock, then try again).
  // With may_buffer, a put into a leaf that is clean in the pool is left
  // for the write buffer (`not_cached`, as for a leaf not in the pool): a
  // change to a page already dirty costs no write of its own, one to a
  // clean page costs a write that a merge shares among many pairs.
  struct leaf_write_result {
    enum { done, queue, not_cached } what;
    lsn_t lsn = 0;
  };
  leaf_write_result try_leaf_write(std::string_view key, std::string_view value, int kind, bool may_read,
                                   bool may_buffer = false);
  // A put into a full leaf whose parent has room: the split done by the
  // writer's own thread under tree_mu shared (leaf_split.cpp). `queue` when
  // it needs more (the parent splits too, the leaf is the root, overflow).
  leaf_write_result try_leaf_split(std::string_view key, std::string_view value);
  // A put whose leaf is not in the pool, into the write buffer: `done`, or
  // `not_cached` when the buffer is full or off, or the value too large.
  leaf_write_result try_buffer_put(std::string_view key, std::string_view value);
  // Under tree_mu exclusive: plans one writer's change into `tw`; the keys
  // whose buffered pairs it makes stale go to `drops`. Returns whether it
  // changes anything.
  // `merged` counts the buffered pairs a merge puts into the tree.
  bool plan_write(tree_writer& tw, const pending_write& pw, std::vector<std::string_view>& drops,
                  std::size_t* merged);
  // Adds `pw`'s puts and deletes to its record as notes (record.hpp, op 9),
  // for readers of the log; false for a merge, which has none.
  bool note_writes(record::builder& rec, const pending_write& pw);
  // Drops those pairs from the buffer, once the tree has the change.
  void drop_buffered(const std::vector<std::string_view>& drops);
  // The merger's loop, and one run of it; whether merging is due.
  void merge_loop();
  void merge_run();
  // Merges the pairs of run[at..] that fall in the first one's leaf and fit
  // it, as a leaf write; those that do not fit go to `rest`. Returns the
  // index of the first pair past that leaf.
  std::size_t try_leaf_merge(const std::vector<write_buffer::pair>& run, std::size_t at,
                             std::vector<write_buffer::pair>& rest);
  bool merge_due() const;
  void kick_merger();
  // Counts a record's bytes towards the next checkpoint (and asks for one).
  void note_logged(std::size_t bytes);
  lsn_t run_write(const write_batch* batch, std::string_view key, std::string_view value, int kind,
                  const std::vector<write_buffer::pair>* merge = nullptr);
  // A group's changes, applied under writer_mu; returns the last LSN appended
  // (0: none). A writer's failure is in its own `error`.
  lsn_t apply_writes(const std::vector<pending_write*>& group);
  // Wakes the group's writers (but `leader`) once `last` is durable, or at
  // once when the store does not sync or nothing was appended.
  void release_when_durable(std::vector<pending_write*> group, lsn_t last, const pending_write* leader);
  lsn_t apply_one(const pending_write& w);  // under writer_mu
  std::size_t max_record_bytes() const;     // the largest record the log takes
  tree_writer new_tree_writer();
  // Several writers' changes as one record (under writer_mu); throws
  // group_unplannable, having appended nothing of its own, when they cannot
  // go as one.
  struct group_unplannable {};
  lsn_t apply_group(const std::vector<pending_write*>& group);
  lsn_t checkpoint_now();
  lsn_t checkpoint_locked();  // checkpoint_mu held
  // store::backup's copy into `tmp` (backup.cpp), under checkpoint_mu.
  void backup_copy(file_system& fs, const std::filesystem::path& tmp,
                   const std::function<void(std::uint64_t, std::uint64_t)>& progress, store::backup_result& res);
  void background();
  void recover();
  // Redoes one record (recovery, and a replica's replay): the write buffer's
  // changes always, page changes unless r.lsn < pages_from or the page
  // already has them; false for a checkpoint record. Throws corruption_error.
  bool redo(lsn_t lsn, std::span<const std::byte> payload, lsn_t pages_from);
  bool redo(lsn_t lsn, const record::decoded& d, lsn_t pages_from);  // `d`: the record decoded
  // store::replay of one record, with writer_mu and tree_mu (exclusively)
  // held and the log ending at `last`.
  void replay_locked(lsn_t lsn, std::span<const std::byte> payload, lsn_t last);
  std::vector<std::pair<std::uint32_t, bool>> redo_needs;  // redo's: pages and whether each needs the record
  void create_if_new();
  std::optional<std::string> read_value(std::span<const std::byte> cell);
  void check_open() const;
};

}  // namespace pageio::kv
