// pageio::kv: an embedded key-value store. A B+tree on 4 KiB pages in one
// data file, read and written through pagecache::buffer_pool, every change
// logged through wal::log first. docs/kv.md has the page layout, the logging
// and recovery rules and the concurrency design.
//
//   pageio::kv::store db(pageio::kv::options{.dir = "mydb"});
//   db.put("user:1", "alice");                 // durable when it returns
//   if (auto v = db.get("user:1")) use(*v);
//   for (auto it = db.scan("user:", "user;"); it.valid(); it.next()) use(it.key(), it.value());
//
// A directory holds one store: `data` (the pages), `data.dwb` (the pool's
// double-write area), `wal/` (the log) and `LOCK`. One process opens it at a
// time; a second gets locked_error at once.
#pragma once

#include <pageio/engine/error.hpp>
#include <pageio/engine/units.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace pageio {
class io_backend;
class file_system;
}  // namespace pageio

namespace pageio::kv {

using pageio::lsn_t;

inline constexpr std::size_t max_key_bytes = 1024;
inline constexpr std::uint64_t max_value_bytes = 64ull << 20;

struct options {
  std::filesystem::path dir;  // created (with its parents) if missing
  // Memory for the buffer pool in bytes: its 4 KiB frames and their
  // bookkeeping (about 512 bytes a frame) together.
  std::uint64_t cache_bytes = 64ull << 20;
  // The write buffer: a put whose leaf is not in the cache is logged and
  // kept in memory (at most this many bytes, bookkeeping included, on top
  // of cache_bytes), and a background merger puts such pairs into their
  // leaves later, many to a leaf read, instead of the put reading its leaf
  // on the commit path. Reads see buffered pairs at once; a crash loses
  // none (recovery rebuilds the buffer from the log). 0 turns it off. A
  // filter that spares gets of unbuffered keys the look-up takes 1/40 to
  // 1/20 of this more (1 MiB for the default; at least 64 KiB).
  // docs/kv.md, "The write buffer".
  std::uint64_t write_buffer_bytes = 32ull << 20;
  // put/del/write return once their change is durable (a group commit shared
  // with concurrent writers). false: they return after appending to the log;
  // the change is durable at the next group commit (within the log's
  // lazy_flush_ms) or at sync().
  bool sync = true;
  std::string backend = "default";
  // Tests: backends and file systems for the log and the pool (crash and
  // fault wrappers). Empty: the real ones.
  std::function<std::unique_ptr<io_backend>()> make_backend{};
  std::shared_ptr<file_system> fs{};
  // A background checkpoint runs when this many bytes were logged since the
  // last one, or this long after it with anything logged; 0 turns each off.
  std::uint64_t checkpoint_log_bytes = 64ull << 20;
  std::uint32_t checkpoint_interval_ms = 60'000;
  // false: opening a directory that holds no store throws
  // std::system_error (ENOENT) instead of creating one.
  bool create_if_missing = true;
  // The log's segment size and buffer (wal::options); a record is at most
  // the smaller of the two, and large values are logged in pieces of at most
  // a quarter of it.
  std::uint64_t wal_segment_bytes = 64ull << 20;
  std::size_t wal_buffer_bytes = 8u << 20;
  // Log archiving (docs/wal-format.md, "Archive"): every log segment is
  // copied into this directory, durably, before a checkpoint recycles it.
  // The store records the directory (<dir>/wal-archive, its absolute path),
  // and every later opening archives there too, with or without this
  // option; wal_archive_off stops archiving and removes the record. Empty
  // and false: the recorded one, if any. A segment that cannot be archived
  // stays in the log (statistics::archive_error says why).
  std::filesystem::path wal_archive{};
  bool wal_archive_off = false;
  // A replica (pageio-wal replay): the store takes only records replayed
  // from the log of the store it was backed up from (store::replay), so its
  // LSNs stay that store's: put, del, write and backup are refused, no
  // merger runs, and its checkpoints go to <dir>/replica-checkpoint instead
  // of its log (docs/kv.md, "Point-in-time restore"). Reads work. The
  // directory must hold a store.
  bool replica = false;
  // With replica: nobody reads the store while it is open (pageio-wal
  // replay without --follow). The write buffer's pairs are then not kept in
  // memory: they stay in the log, where the next opening rebuilds them, and
  // checkpoints keep the log from the source's last checkpoint on (every
  // pair buffered since has its record there). Replaying then costs no
  // hash or tree update per buffered pair: several times faster. get, scan
  // and check throw std::logic_error.
  bool replica_unread = false;
  // Read-only: reads only. Nothing is logged or checkpointed (recovery
  // still redoes the log into the cache), so a replica being replayed into
  // stays one: pageio-kv's get, scan, stats and check open stores so. The
  // directory must hold a store.
  bool read_only = false;
};

// A file in a backup's directory (store::backup): its log is a copy of its
// source's, so the source's later records may be replayed into it
// (pageio-wal replay). Removed, durably, before the store logs a record of
// its own (opened neither as a replica nor read-only).
inline constexpr const char* replayable_marker = "replayable";

// The store is open in another process (or another store object here).
// code() is pageio::errc::locked.
class locked_error : public pageio::error {
 public:
  explicit locked_error(const std::string& what) : pageio::error(errc::locked, what) {}
};
// The data file or the log holds something the store cannot have written
// (a page of the wrong kind, a record that does not apply): which page and
// what is wrong are in what(). code() is pageio::errc::corruption.
class corruption_error : public pageio::error {
 public:
  explicit corruption_error(const std::string& what) : pageio::error(errc::corruption, what) {}
};

// An atomic group of puts and deletes: all of them or none survive a crash.
class write_batch {
 public:
  void put(std::string_view key, std::string_view value);
  void del(std::string_view key);
  std::size_t size() const noexcept { return ops_.size(); }
  void clear() noexcept { ops_.clear(); }

 private:
  friend class store;
  struct entry {
    bool is_put;
    std::string key, value;
  };
  std::vector<entry> ops_;
};

struct statistics {
  std::uint64_t puts = 0, deletes = 0, batches = 0, gets = 0, scans = 0;
  std::uint64_t pages = 0;        // in the data file (used or free)
  std::uint64_t free_pages = 0;
  std::uint32_t height = 0;       // levels of the tree, leaves included
  std::uint64_t checkpoints = 0;
  lsn_t last_lsn = 0, durable_lsn = 0, checkpoint_lsn = 0;
  std::uint64_t recovered_records = 0;  // records redone at open
  std::uint64_t cache_hits = 0, cache_misses = 0;
  // Data-file writes since open: pages written in place, and fdatasyncs
  // (of the data file and of its double-write area).
  std::uint64_t pages_written = 0, data_syncs = 0;
  // The write buffer: pairs and bytes in it now; puts that went into it
  // and pairs merged from it into their leaves since open.
  std::uint64_t buffered_pairs = 0, buffered_bytes = 0, buffered_puts = 0, merged_pairs = 0;
  // The log's group commits since open, and the records they held (a
  // record holds one change, or the changes of several writers together).
  std::uint64_t log_commits = 0, log_records = 0;
  std::uint64_t log_pages = 0;  // 4 KiB log pages those commits wrote (a page rewritten as it fills counts each time)
  // Log archiving (options::wal_archive): the directory (empty: off), and
  // since open the segments archived, the newest LSN archived, the copies
  // that failed, and why the last one failed (empty once a later copy made
  // up for it).
  std::string wal_archive;
  std::uint64_t archived_segments = 0;
  lsn_t archived_lsn = 0;
  std::uint64_t archive_failures = 0;
  std::string archive_error;
};

// What store::check() found.
struct check_problem {
  std::uint64_t page = 0;  // page number in the data file
  std::string what;
};
struct check_report {
  std::vector<check_problem> problems;  // empty: the store is sound
  std::uint64_t pages = 0;              // in the data file, meta included
  std::uint64_t leaf_pages = 0, internal_pages = 0, overflow_pages = 0, trunk_pages = 0, free_pages = 0;
  std::uint64_t keys = 0;            // in the store: in the tree, or only in the write buffer
  std::uint64_t buffered_pairs = 0;  // in the write buffer (logged; not yet merged into their leaves)
  std::uint32_t height = 0;
  bool clean() const noexcept { return problems.empty(); }
};

class store;
struct store_test_access;  // tests/kv: the store's internals, for what no public call can set up

// An ordered range of pairs, read a leaf at a time (no latch is held between
// calls; pairs written meanwhile may or may not be seen). Valid while the
// store is open.
class iterator {
 public:
  bool valid() const noexcept { return pos_ < keys_.size(); }
  void next();
  const std::string& key() const noexcept { return keys_[pos_]; }
  const std::string& value() const noexcept { return values_[pos_]; }

 private:
  friend class store;
  void load();  // the next leaf's pairs from `resume_` on
  store* db_ = nullptr;
  std::string resume_;        // the first key not yet loaded
  bool resume_open_ = false;  // resume_ is "after everything loaded so far, exclusive"
  std::optional<std::string> to_;
  std::uint64_t limit_ = 0;   // 0: none
  std::uint64_t returned_ = 0;
  bool exhausted_ = false;
  std::vector<std::string> keys_, values_;
  std::size_t pos_ = 0;
};

class store {
 public:
  // Opens (or creates) the store in opts.dir and recovers it. Throws
  // locked_error, corruption_error, std::system_error.
  explicit store(options opts);
  // Writes everything back, checkpoints and closes (errors are swallowed:
  // call close() to see them).
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  // Each returns the LSN of its log record. Throws std::invalid_argument for
  // an empty key, a key over max_key_bytes or a value over max_value_bytes
  // (nothing changes), pageio::error with errc::closed once closed.
  lsn_t put(std::string_view key, std::string_view value);
  // Returns 0 (and logs nothing) when the key is absent.
  lsn_t del(std::string_view key);
  lsn_t write(const write_batch& batch);

  std::optional<std::string> get(std::string_view key);
  // Pairs with from <= key < to, in key order, at most `limit` (0: all).
  iterator scan(std::optional<std::string_view> from = std::nullopt,
                std::optional<std::string_view> to = std::nullopt, std::uint64_t limit = 0);

  // Reads every page and checks the store: each page's checksum, key order
  // within and across pages, keys within the bounds their parents give
  // (fences), sibling links, overflow chains, the free list disjoint from
  // the tree, every page accounted for once. Writers wait meanwhile.
  check_report check();

  // Writes and syncs the pages, truncates the log; returns the checkpoint LSN.
  lsn_t checkpoint();

  // Online backup into the new directory `to` (its parent must exist),
  // while readers and writers go on: a checkpoint, then the data file's
  // pages (each checked; one caught mid-write is read again) and the log
  // from that checkpoint on, copied into `to`.tmp-backup, made durable, and
  // renamed to `to`; checkpoints wait meanwhile. `to` opens as a store
  // equal to this one at result.lsn, which is at or after the moment the
  // backup started (every change durable when it finished is in it). The
  // log archive setting is not copied. Throws std::system_error (EEXIST)
  // when `to` exists, kv::corruption_error naming a page of this store that
  // fails its check, std::system_error for I/O. `progress` is called with
  // bytes copied and the bytes to copy.
  struct backup_result {
    lsn_t lsn = 0;
    std::uint64_t data_pages = 0, log_segments = 0, bytes = 0;
    double seconds = 0;
  };
  backup_result backup(const std::filesystem::path& to,
                       const std::function<void(std::uint64_t done, std::uint64_t total)>& progress = {});

  // A replica (options::replica) takes the source log's record `lsn` (its
  // payload): appended to this store's log, which must end at lsn - 1 (a
  // std::invalid_argument says where it ends otherwise), and redone into
  // the pages as recovery redoes it. Durable with the log's next group
  // commit, or sync(). Throws corruption_error when the record does not
  // apply (the two stores are not the same history).
  void replay(lsn_t lsn, std::span<const std::byte> payload);
  // Records in LSN order, as replay() takes them one by one, under one hold
  // of the store's writer and tree locks (readers of a standby wait for the
  // batch, not for each record). A record that fails stops the batch: those
  // before it are replayed.
  struct replay_record {
    lsn_t lsn = 0;
    std::span<const std::byte> payload;
  };
  void replay(std::span<const replay_record> records);
  // Reads into the cache, in one batch of reads, the pages the records
  // about to be replayed change (PostgreSQL's recovery prefetch): redo then
  // finds them there instead of reading each on its own. A hint: records it
  // cannot decode are left to replay() to report.
  void prefetch_for_replay(std::span<const std::span<const std::byte>> payloads);
  // Makes every change so far durable (for options::sync = false).
  void sync();
  statistics stats() const;
  void close();

  struct impl;

 private:
  friend class iterator;
  friend struct store_test_access;
  std::unique_ptr<impl> impl_;
};

}  // namespace pageio::kv
