// Opening (lock, log, pool, recovery), writes, checkpoints and closing.
// Reads are in reads.cpp; planning a change in tree_writer.cpp.
#include "archive_setting.hpp"
#include "replica_checkpoint.hpp"
#include "record.hpp"
#include "store_impl.hpp"
#include "tree_writer.hpp"

#include <pageio/engine/file_system.hpp>
#include <pageio/wal/reader.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <stdexcept>
#include <system_error>

namespace pageio::kv {

namespace {

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::system_category(), what);
}

void validate_key(std::string_view key) {
  if (key.empty()) throw std::invalid_argument("empty key: keys are 1 to 1024 bytes");
  if (key.size() > max_key_bytes) {
    throw std::invalid_argument("key of " + std::to_string(key.size()) + " bytes: keys are at most 1024 bytes");
  }
}

void validate_value(std::string_view value) {
  if (value.size() > max_value_bytes) {
    throw std::invalid_argument("value of " + std::to_string(value.size()) +
                                " bytes: values are at most 64 MiB (67108864 bytes)");
  }
}

void sync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno(errno, "open directory " + dir.string());
  if (::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    throw_errno(e, "fsync directory " + dir.string());
  }
  ::close(fd);
}

}  // namespace

void write_batch::put(std::string_view key, std::string_view value) {
  ops_.push_back({true, std::string(key), std::string(value)});
}
void write_batch::del(std::string_view key) { ops_.push_back({false, std::string(key), {}}); }

store::store(options opts) : impl_(std::make_unique<impl>()) {
  impl& s = *impl_;
  s.opts = std::move(opts);
  const auto& dir = s.opts.dir;
  if (dir.empty()) throw std::invalid_argument("kv::options::dir is empty");
  std::error_code ec;
  // A replica is a store replayed into, and a read-only store one read:
  // never a new one.
  if (s.opts.replica || s.opts.read_only) s.opts.create_if_missing = false;
  if (!s.opts.create_if_missing &&
      (!std::filesystem::exists(dir / "data", ec) || !std::filesystem::exists(dir / "wal", ec))) {
    throw std::system_error(std::make_error_code(std::errc::no_such_file_or_directory),
                            "no pageio::kv store in " + dir.string() + " (it has no data file and wal/ directory)");
  }
  if (s.opts.fs) {
    // Through the file system the tests' crash model sees.
    if (s.opts.fs->create_directory(dir)) s.opts.fs->sync_directory(std::filesystem::absolute(dir).parent_path());
  } else if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) throw std::system_error(ec, "create store directory " + dir.string());
    sync_dir(std::filesystem::absolute(dir).parent_path());
  }
  const auto lock_path = dir / "LOCK";
  s.lock_file = pageio::file::open(lock_path, {.direct = false, .writable = true, .create = true});
  if (::flock(s.lock_file.fd(), LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    s.lock_file.close();
    if (e == EWOULDBLOCK) {
      throw locked_error("store " + dir.string() + " is open in another process (" + lock_path.string() +
                         " is locked); close it there first");
    }
    throw_errno(e, "lock " + lock_path.string());
  }
  try {
    if (!s.opts.replica && !s.opts.read_only) {
      // It will log records of its own: no longer a prefix of its source's.
      file_system& fsys = s.opts.fs ? *s.opts.fs : *posix_file_system();
      if (fsys.stat(dir / replayable_marker)) {
        fsys.unlink(dir / replayable_marker);
        fsys.sync_directory(dir);
      }
    }
    wal::options lo;
    lo.dir = dir / "wal";
    lo.backend = s.opts.backend;
    lo.make_backend = s.opts.make_backend;
    lo.fs = s.opts.fs;
    lo.segment_bytes = s.opts.wal_segment_bytes;
    lo.buffer_bytes = s.opts.wal_buffer_bytes;
    // A replica's log takes records a chunk at a time with nobody waiting
    // on each: written in groups of an eighth of its buffer (fewer syncs),
    // not the small groups that keep a committer's latency low.
    if (s.opts.replica) lo.max_batch_bytes = std::max(lo.max_batch_bytes, s.opts.wal_buffer_bytes / 8);
    lo.archive_dir = detail::resolve_wal_archive(s.opts.fs ? *s.opts.fs : *posix_file_system(), dir, s.opts);
    s.wal_archive = lo.archive_dir.string();
    s.log = std::make_unique<wal::log>(std::move(lo));

    pagecache::options po;
    // The frames' bookkeeping (the frame, its reader stripes, its place in
    // the page table) counts against the cache too.
    constexpr std::uint64_t per_frame = pagecache::page_size + 512;
    po.frames = static_cast<std::size_t>(std::max<std::uint64_t>(16, s.opts.cache_bytes / per_frame));
    po.backend = s.opts.backend;
    po.make_backend = s.opts.make_backend;
    po.log = s.log.get();
    po.fs = s.opts.fs;
    s.pool = std::make_unique<pagecache::buffer_pool>(std::move(po));
    s.file = s.pool->add_file(dir / "data");
    s.wbuf = std::make_unique<write_buffer>(s.opts.write_buffer_bytes);
    s.unread = s.opts.replica && s.opts.replica_unread;

    s.recover();
    s.create_if_new();
    {
      pagecache::page_ref m = s.fetch(0);
      const page::meta_fields meta = page::read_meta(m.data());
      if (meta.magic != page::meta_magic || meta.version != page::meta_version) {
        throw corruption_error("page 0 of " + (dir / "data").string() + " is not a pageio::kv meta page");
      }
      s.root = meta.root;
      s.height = meta.height;
    }
  } catch (...) {
    s.pool.reset();
    s.log.reset();
    s.lock_file.close();
    throw;
  }
  s.bg = std::thread([&s] { s.background(); });
  // A replica's buffered pairs are merged by the records replayed into it.
  if (!s.opts.replica && !s.opts.read_only) s.merger = std::thread([&s] { s.merge_loop(); });
}

store::~store() {
  try {
    close();
  } catch (...) {
  }
}

void store::close() {
  impl& s = *impl_;
  if (s.closed) return;
  {
    std::lock_guard lk(s.merge_mu);
    s.merge_stop = true;
  }
  s.merge_cv.notify_all();
  if (s.merger.joinable()) s.merger.join();
  {
    std::lock_guard lk(s.bg_mu);
    s.bg_stop = true;
  }
  s.bg_cv.notify_all();
  if (s.bg.joinable()) s.bg.join();
  std::exception_ptr err;
  try {
    s.checkpoint_now();
  } catch (...) {
    err = std::current_exception();
  }
  s.closed = true;
  s.pool.reset();  // it points at the log
  try {
    s.log.reset();
  } catch (...) {
    if (!err) err = std::current_exception();
  }
  s.lock_file.close();
  if (err) std::rethrow_exception(err);
}

void store::impl::check_readable() const {
  if (unread) {
    throw std::logic_error("kv: the store at " + opts.dir.string() +
                           " is open as a replica nobody reads (options::replica_unread): its write buffer is not "
                           "kept, so it cannot answer reads; open it without replica_unread to read it");
  }
}

void store::impl::check_open() const {
  if (closed) throw pageio::error(errc::closed, "kv: the store is closed: open it again to use it");
}

bool store::impl::redo(lsn_t lsn, std::span<const std::byte> payload, lsn_t pages_from) {
  record::decoded d;
  try {
    d = record::decode(payload);
  } catch (const record::malformed& e) {
    throw corruption_error("log record " + std::to_string(lsn) + ": " + e.what());
  }
  return redo(lsn, d, pages_from);
}

bool store::impl::redo(lsn_t lsn, const record::decoded& d, lsn_t pages_from) {
  if (d.checkpoint != 0) {
    // The source's checkpoint (a replica's log keeps it as foreign): every
    // pair it had buffered then, and so every pair buffered from here on,
    // has its record at or above its recovery LSN.
    if (unread && d.foreign_checkpoint) buffer_floor = std::max(buffer_floor, lsn_t{d.checkpoint});
    return false;
  }
  // The write buffer's changes are redone whatever the pages hold: the
  // buffer starts empty at open (and stays so on an unread replica, whose
  // pairs are only checked here).
  for (const auto& c : d.changes) {
    if (c.kind == record::op::buffer_put) {
      const std::size_t n = c.bytes.size();
      const page::leaf_value v = n >= page::leaf_cell_header ? page::parse_leaf_value(c.bytes) : page::leaf_value{};
      const std::size_t klen = n >= 2 ? page::ld16(c.bytes.data()) : 0;
      if (n < page::leaf_cell_header || v.overflow || klen == 0 || page::leaf_cell_header + klen + v.length != n) {
        throw corruption_error("log record " + std::to_string(lsn) + ": a buffered pair of " + std::to_string(n) +
                               " bytes that is not a key and an inline value");
      }
      if (unread) continue;
      const std::string_view key(reinterpret_cast<const char*>(c.bytes.data()) + page::leaf_cell_header, klen);
      wbuf->put(key, std::string_view(reinterpret_cast<const char*>(v.inline_bytes.data()), v.inline_bytes.size()),
                lsn);
    } else if (c.kind == record::op::buffer_drop && !unread) {
      wbuf->drop(std::string_view(reinterpret_cast<const char*>(c.bytes.data()), c.bytes.size()));
    }
  }
  // Below pages_from every page has it: only the buffer's changes count.
  if (lsn < pages_from) return true;
  // Which pages need it, decided once per page before any change of the
  // record is applied (a record may change one page several times). One
  // page is pinned at a time: a record may hold more pages than the pool.
  auto& needs = redo_needs;
  needs.clear();
  auto needed = [&](std::uint32_t pg) -> bool* {
    for (auto& [p, need] : needs) {
      if (p == pg) return &need;
    }
    return nullptr;
  };
  for (const auto& c : d.changes) {
    if (!record::changes_page(c.kind) || needed(c.page) != nullptr) continue;
    needs.emplace_back(c.page, fetch(c.page).page_lsn() < lsn);
  }
  // A run of changes to one page (a merge's pairs into their leaf) takes
  // one fetch, one latch and one mark.
  const auto& ch = d.changes;
  for (std::size_t i = 0; i < ch.size();) {
    if (!record::changes_page(ch[i].kind) || !*needed(ch[i].page)) {
      ++i;
      continue;
    }
    const std::uint32_t pg = ch[i].page;
    pagecache::page_ref ref = fetch(pg);
    {
      std::lock_guard latch(ref.latch());
      for (; i < ch.size() && record::changes_page(ch[i].kind) && ch[i].page == pg; ++i) {
        try {
          record::apply(ch[i], ref.data());
        } catch (const record::malformed& e) {
          throw corruption_error("log record " + std::to_string(lsn) + " does not apply to page " +
                                 std::to_string(pg) + " of " + (opts.dir / "data").string() + ": " + e.what());
        }
      }
      ref.mark_dirty(lsn);
    }
  }
  return true;
}

void store::impl::recover() {
  // First the last checkpoint record: every page change below its first
  // LSN is in the data file and every write-buffer pair's record at or
  // above it, so redo starts there; page changes only from its second (a
  // checkpoint record lost in a crash only means an earlier one, and more
  // redo).
  lsn_t from = 0, pages_from = 0;
  auto find_checkpoint = [&](const wal::record_view& r) {
    if (!r.data.empty() && r.data[0] == std::byte{record::kind_checkpoint}) {
      try {
        const record::decoded d = record::decode(r.data);
        from = std::max(from, d.checkpoint);
        pages_from = std::max(pages_from, d.pages_from);
      } catch (const record::malformed& e) {
        throw corruption_error("log record " + std::to_string(r.lsn) + ": " + e.what());
      }
    }
    return true;
  };
  // Then redo every record from there: a change whose page already
  // reflects it (page LSN at or above the record's) is skipped.
  auto on_record = [&](const wal::record_view& r) {
    if (redo(r.lsn, r.data, pages_from)) ++recovered_records;
    return true;
  };
  file_system& fsys = opts.fs ? *opts.fs : *posix_file_system();
  const wal::scan_result whole = wal::scan_log(fsys, opts.dir / "wal", 0, find_checkpoint);
  // A replica's checkpoints are kept beside the log (replica_checkpoint.hpp).
  if (const auto rc = detail::read_replica_checkpoint(fsys, opts.dir)) {
    if (rc->redo > whole.last_lsn + 1) {
      throw corruption_error((opts.dir / detail::replica_checkpoint_name).string() + " says recovery starts at LSN " +
                             std::to_string(rc->redo) + ", past the log's end (LSN " +
                             std::to_string(whole.last_lsn) + "): it belongs to another copy of the store (restore "
                             "the backup into an empty directory)");
    }
    from = std::max(from, rc->redo);
    pages_from = std::max(pages_from, rc->pages_from);
  }
  // Every pair buffered at the checkpoint recovery starts from has its
  // record at or above it (an unread replica's floor, raised by the
  // source's checkpoints redone).
  buffer_floor = std::max<lsn_t>(1, from);
  wal::scan_log(fsys, opts.dir / "wal", from, on_record);
  recovered_from = from;
}

void store::impl::create_if_new() {
  {
    pagecache::page_ref m = fetch(0);
    if (page::view(m.data()).kind() != page::type::never_written) return;
  }
  // A new store: the meta page and an empty root leaf, in one record.
  std::array<std::byte, page::size> meta_bytes{}, leaf_bytes{};
  page::meta_fields meta;
  meta.root = 1;
  meta.page_count = 2;
  meta.height = 1;
  page::write_meta(meta_bytes.data(), meta);
  page::view(leaf_bytes.data()).init(page::type::leaf, 0);
  record::builder b;
  b.image(0, meta_bytes.data());
  b.image(1, leaf_bytes.data());
  const lsn_t lsn = log->append(b.finish());
  log->flush(lsn);
  std::unique_lock tree(tree_mu);
  apply_pages({{0, &meta_bytes}, {1, &leaf_bytes}}, lsn);
}

void store::impl::apply_pages(
    const std::vector<std::pair<std::uint32_t, const std::array<std::byte, page::size>*>>& pages, lsn_t lsn,
    const page::meta_fields* meta, const std::vector<std::uint32_t>* fresh) {
  if (meta) {
    root = meta->root;
    height = meta->height;
  }
  for (const auto& [pg, bytes] : pages) {
    const bool whole_new = fresh && std::find(fresh->begin(), fresh->end(), pg) != fresh->end();
    pagecache::page_ref ref = whole_new ? pool->fetch_new({file, pg}) : fetch(pg);
    std::lock_guard latch(ref.latch());
    std::memcpy(ref.data(), bytes->data(), page::size);
    ref.mark_dirty(lsn);
  }
}

lsn_t store::impl::run_write(const write_batch* batch, std::string_view key, std::string_view value, int kind,
                             const std::vector<write_buffer::pair>* merge) {
  check_open();
  if (opts.replica || opts.read_only) {
    throw std::invalid_argument("store " + opts.dir.string() +
                                (opts.replica ? " is open as a replica (it takes records replayed from its source's "
                                                "log only): open it as a store to write to it, which ends replaying "
                                                "into it"
                                              : " is open read-only"));
  }
  if (merge) {
    // The merger's run: its leaves were read by the merger (merge_run).
  } else if (batch) {
    for (const auto& e : batch->ops_) {
      validate_key(e.key);
      if (e.is_put) validate_value(e.value);
    }
    if (batch->ops_.empty()) return log->last_lsn();
  } else {
    validate_key(key);
    validate_value(value);
  }
  if (merge) {
  } else if (batch) {
    // Misses are read here, in parallel with other writers, not by the
    // leader under its locks for a whole group.
    for (const auto& e : batch->ops_) warm_path(e.key);
  } else {
    // Most changes stay in their leaf: those need no queue (leaf_write.cpp).
    // A page not in the pool is read outside the lock, then it tries again.
    leaf_write_result r = try_leaf_write(key, value, kind, /*may_read=*/false, /*may_buffer=*/kind == 0);
    // A put whose leaf is not in the pool goes to the write buffer, if it
    // has room: no read on the commit path (buffered_writes.cpp).
    if (r.what == leaf_write_result::not_cached && kind == 0) r = try_buffer_put(key, value);
    if (r.what == leaf_write_result::not_cached) {
      warm_path(key);
      r = try_leaf_write(key, value, kind, /*may_read=*/true);
    }
    // A full leaf whose parent has room splits here too (leaf_split.cpp).
    if (r.what == leaf_write_result::queue && kind == 0) r = try_leaf_split(key, value);
    if (r.what == leaf_write_result::done) {
      if (opts.sync && r.lsn != 0) log->flush(r.lsn);
      return r.lsn;
    }
    // Its path is in the pool now, for the leader.
  }
  // Writers queue up; the first in line (the leader) plans, appends and
  // applies the changes of everyone queued behind it (a group) under
  // writer_mu, and asks the log to wake them once their group is durable.
  // It then leads the writers that queued meanwhile, group after group,
  // until nobody waits or its own change is durable, hands the lead to the
  // next in line and returns. A writer thus sleeps and wakes once per change,
  // and the lead changes hands about once per group commit, not once per
  // group: each hand-over wakes a sleeping thread, and on a busy machine
  // that wake-up, not the log, was what held the groups back.
  pending_write me{batch, key, value, kind, merge};
  // Join the queue: a lock-free stack of writers, newest first (as
  // RocksDB's write thread does). Whoever finds it empty leads.
  pending_write* older = newest_writer.load(std::memory_order_relaxed);
  do {
    me.older = older;
  } while (!newest_writer.compare_exchange_weak(older, &me, std::memory_order_acq_rel, std::memory_order_relaxed));
  if (me.older != nullptr) {
    me.wait_ready();
    if (me.done) {
      if (me.error) std::rethrow_exception(me.error);
      // The group's wait for the log failed: ask the log again, for an
      // error of this writer's own (a failed log stays failed).
      if (me.flush_failed) log->flush(me.lsn);
      return me.lsn;
    }
    // Woken as the next leader.
  }
  pending_write* first = &me;  // the oldest writer of the next group
  for (;;) {
    // The group: everyone from `first` up to the newest now, oldest first.
    pending_write* const last_in_group = newest_writer.load(std::memory_order_acquire);
    std::vector<pending_write*> group;
    for (pending_write* w = last_in_group; w != first; w = w->older) group.push_back(w);
    group.push_back(first);
    std::reverse(group.begin(), group.end());
    const lsn_t last = apply_writes(group);
    // Whoever joined after this group: nobody (the queue is then empty), or
    // the one that joined right after it.
    pending_write* next = nullptr;
    pending_write* expected = last_in_group;
    if (!newest_writer.compare_exchange_strong(expected, nullptr, std::memory_order_acq_rel,
                                               std::memory_order_acquire)) {
      for (pending_write* w = expected; w != nullptr; w = w->older) {
        if (w->older == last_in_group) {
          next = w;
          break;
        }
      }
    }
    release_when_durable(std::move(group), last, &me);
    if (next == nullptr) break;
    const bool mine_settled = me.error || me.lsn == 0 || !opts.sync || log->durable_lsn() >= me.lsn;
    if (mine_settled) {
      next->set_ready();  // it leads on
      break;
    }
    first = next;
  }
  if (me.error) std::rethrow_exception(me.error);
  if (opts.sync && me.lsn != 0 && !merge) log->flush(me.lsn);  // nobody waits for a merge
  return me.lsn;
}

lsn_t store::impl::apply_writes(const std::vector<pending_write*>& group) {
  lsn_t last = 0;
  std::lock_guard w(writer_mu);
  // Exclusively: the plan reads pages a leaf write (leaf_write.cpp) could
  // otherwise change under it, and readers must not see half a group.
  std::unique_lock tree(tree_mu);
  // A group of several goes into one log record (one append, each page
  // copied into the pool once); if it cannot be planned as one (an error in
  // one writer's change, a record too large), each goes alone, so that one
  // writer's error is that writer's only.
  bool alone = group.size() == 1;
  if (!alone) {
    try {
      last = apply_group(group);
    } catch (const group_unplannable&) {
      alone = true;
    } catch (const std::exception& e) {
      // One exception object per writer: writers on other threads must
      // not share (and free) one.
      for (pending_write* g : group) g->error = std::make_exception_ptr(std::runtime_error(std::string(e.what())));
    }
  }
  if (alone) {
    for (pending_write* g : group) {
      try {
        g->lsn = apply_one(*g);
        last = std::max(last, g->lsn);
      } catch (...) {
        g->error = std::current_exception();
      }
    }
  }
  return last;
}

void store::impl::release_when_durable(std::vector<pending_write*> group, lsn_t last, const pending_write* leader) {
  // The leader waits for its own change itself.
  std::erase(group, leader);
  if (group.empty()) return;
  std::function<void(std::error_code)> release = [group = std::move(group)](std::error_code ec) {
    for (pending_write* g : group) {
      // The group's wait for the log failed: each writer asks the log itself.
      g->flush_failed = ec && !g->error && g->lsn != 0;
      g->done = true;
      g->set_ready();  // g may return (and its memory go) from here on
    }
  };
  if (!opts.sync || last == 0) {
    release({});
    return;
  }
  // From the log's flusher thread once the group commit holding `last` is
  // done (or at once, if it is), without blocking: futex wakes only.
  try {
    log->when_durable(last, release);
  } catch (const std::exception&) {
    release(make_error_code(std::errc::not_enough_memory));  // they each ask the log
  }
}

std::size_t store::impl::max_record_bytes() const { return log->max_record_bytes(); }

tree_writer store::impl::new_tree_writer() {
  // Overflow pages go out in partial records of a quarter of the largest
  // record, appended and applied at once (the pages stay free on disk until
  // the change's own record).
  return tree_writer(*pool, file, std::max<std::size_t>(max_record_bytes() / 4, 2 * page::size),
                     [this](tree_writer& t) {
                       const auto rec = t.partial_record().finish();
                       const lsn_t plsn = log->append(rec);
                       note_logged(rec.size());
                       apply_pages(t.partial_pages(), plsn, nullptr, &t.fresh_pages());
                     },
                     page_stock);
}

lsn_t store::impl::apply_group(const std::vector<pending_write*>& group) {
  check_open();
  const std::size_t max_record = max_record_bytes();
  tree_writer tw = new_tree_writer();
  std::vector<char> changed(group.size(), 0);
  std::vector<std::string_view> drops;
  std::size_t merged = 0;
  try {
    for (std::size_t i = 0; i < group.size(); ++i) changed[i] = plan_write(tw, *group[i], drops, &merged) ? 1 : 0;
  } catch (...) {
    // Nothing of the group's own record was appended: plan each alone.
    throw group_unplannable();
  }
  lsn_t lsn = log->last_lsn();
  const bool pages = tw.finish();
  if (pages || !drops.empty()) {
    for (std::string_view k : drops) tw.final_record().buffer_drop(k);
    bool noted = false;
    for (std::size_t i = 0; i < group.size(); ++i) {
      if (changed[i]) noted |= note_writes(tw.final_record(), *group[i]);
    }
    if (!noted) tw.final_record().set_merge();
    const auto rec = tw.final_record().finish();
    if (rec.size() > max_record) throw group_unplannable();
    lsn = log->append(rec);
    note_logged(rec.size());
    if (pages) apply_pages(tw.final_pages(), lsn, &tw.meta(), &tw.fresh_pages());
    drop_buffered(drops);
    merged_pairs.fetch_add(merged, std::memory_order_relaxed);
  }
  for (std::size_t i = 0; i < group.size(); ++i) {
    const pending_write& pw = *group[i];
    group[i]->lsn = changed[i] ? lsn : (pw.kind == 1 || pw.kind == 3) ? 0 : log->last_lsn();
  }
  return lsn;
}

void store::impl::note_logged(std::size_t bytes) {
  const std::uint64_t now = logged_since_checkpoint.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  if (opts.checkpoint_log_bytes != 0 && now >= opts.checkpoint_log_bytes && now - bytes < opts.checkpoint_log_bytes) {
    bg_kick = true;
    bg_cv.notify_one();
  }
}

lsn_t store::impl::apply_one(const pending_write& pw) {
  check_open();
  const std::size_t max_record = max_record_bytes();
  tree_writer tw = new_tree_writer();
  std::vector<std::string_view> drops;
  std::size_t merged = 0;
  const bool changed = plan_write(tw, pw, drops, &merged);
  if (!changed && (pw.kind == 1 || pw.kind == 3)) return 0;  // a delete of an absent key; a merge of nothing
  const bool pages = tw.finish();
  if (!pages && drops.empty()) return log->last_lsn();  // a batch of deletes of absent keys
  for (std::string_view k : drops) tw.final_record().buffer_drop(k);
  if (!note_writes(tw.final_record(), pw)) tw.final_record().set_merge();
  const auto rec = tw.final_record().finish();
  if (rec.size() > max_record) {
    throw std::invalid_argument("the change needs a log record of " + std::to_string(rec.size()) +
                                " bytes; the log takes at most " + std::to_string(max_record) +
                                " (kv::options::wal_buffer_bytes, wal_segment_bytes): split the batch");
  }
  const lsn_t lsn = log->append(rec);
  note_logged(rec.size());
  if (pages) apply_pages(tw.final_pages(), lsn, &tw.meta(), &tw.fresh_pages());
  drop_buffered(drops);
  merged_pairs.fetch_add(merged, std::memory_order_relaxed);
  return lsn;
}

bool store::impl::note_writes(record::builder& rec, const pending_write& pw) {
  if (pw.merge) return false;
  if (pw.batch) {
    for (const auto& e : pw.batch->ops_) rec.note(e.is_put, e.key, e.is_put ? e.value.size() : 0);
    return !pw.batch->ops_.empty();
  }
  rec.note(pw.kind == 0, pw.key, pw.kind == 0 ? pw.value.size() : 0);
  return true;
}

bool store::impl::plan_write(tree_writer& tw, const pending_write& pw, std::vector<std::string_view>& drops,
                             std::size_t* merged) {
  // tree_mu is held exclusively: no buffered put or leaf write runs, so
  // what the buffer holds cannot change from here to the append.
  // A key an earlier change of this group (or batch) made stale is no
  // longer buffered for the changes after it: the buffer itself changes
  // only after the append (drop_buffered).
  auto buffered_lsn = [&](std::string_view k) -> lsn_t {
    if (wbuf->empty_hint() || std::find(drops.begin(), drops.end(), k) != drops.end()) return 0;
    return wbuf->lsn_of(k);
  };
  auto drop = [&](std::string_view k) {
    if (std::find(drops.begin(), drops.end(), k) == drops.end()) drops.push_back(k);
  };
  bool changed = false;
  if (pw.merge) {
    for (const auto& p : *pw.merge) {
      if (buffered_lsn(p.key) != p.lsn) continue;  // put again or dropped since the merger read it
      tw.put(p.key, p.value);
      drop(p.key);
      changed = true;
      ++*merged;
    }
  } else if (pw.batch) {
    for (const auto& e : pw.batch->ops_) {
      if (e.is_put) {
        tw.put(e.key, e.value);
        changed = true;
      } else if (tw.del(e.key)) {
        changed = true;
      }
      if (buffered_lsn(e.key) != 0) {
        drop(e.key);
        changed = true;
      }
    }
  } else {
    changed = pw.kind == 0 ? (tw.put(pw.key, pw.value), true) : tw.del(pw.key);
    if (buffered_lsn(pw.key) != 0) {
      drop(pw.key);
      changed = true;
    }
  }
  return changed;
}

lsn_t store::put(std::string_view key, std::string_view value) {
  const lsn_t l = impl_->run_write(nullptr, key, value, 0);
  impl_->puts.fetch_add(1, std::memory_order_relaxed);
  return l;
}

lsn_t store::del(std::string_view key) {
  const lsn_t l = impl_->run_write(nullptr, key, {}, 1);
  impl_->deletes.fetch_add(1, std::memory_order_relaxed);
  return l;
}

lsn_t store::write(const write_batch& batch) {
  const lsn_t l = impl_->run_write(&batch, {}, {}, 2);
  impl_->batches.fetch_add(1, std::memory_order_relaxed);
  return l;
}

lsn_t store::impl::checkpoint_now() {
  std::lock_guard one(checkpoint_mu);
  if (replay_failed) {
    throw corruption_error("store " + opts.dir.string() + ": a replayed record failed to apply part-way; nothing "
                           "is checkpointed (reopening redoes it from the log and reports it)");
  }
  if (opts.read_only) return checkpoint_lsn.load(std::memory_order_relaxed);  // nothing is written
  return checkpoint_locked();
}

lsn_t store::impl::checkpoint_locked() {
  lsn_t redo = 0, oldest_buffered = 0;
  {
    // No writer is between its append and its pages' mark_dirty while these
    // are held (the queue's leader holds writer_mu, a leaf write tree_mu
    // shared): every record below `redo` is marked in the pool.
    std::lock_guard w(writer_mu);
    std::unique_lock tree(tree_mu);
    redo = log->last_lsn() + 1;
    // The write buffer as the log below `redo` has it: every change of it
    // (a buffered put, a drop, a merge) is appended under tree_mu, shared or
    // exclusive, and applied before tree_mu is let go.
    oldest_buffered = unread ? buffer_floor : wbuf->oldest().first;
    logged_since_checkpoint.store(0, std::memory_order_relaxed);
  }
  const lsn_t pages_from = pool->checkpoint(redo);
  // Buffered pairs live in the log only: it keeps the oldest one's record
  // (recovery rebuilds the buffer from there), and the merger moves every
  // pair older than this checkpoint into its leaf before the next.
  lsn_t c = pages_from;
  if (oldest_buffered != 0 && oldest_buffered < c) {
    c = oldest_buffered;
    merge_below.store(redo, std::memory_order_relaxed);
    kick_merger();
  }
  // What made a pair below `c` stale (a newer put of its key, a drop, a
  // merge) is below `redo`, but perhaps not durable yet, nor the pair's own
  // record: a truncation is durable at once, so everything below `redo` must
  // be first, or a power cut would leave neither.
  if (redo > 1) log->flush(redo - 1);
  if (opts.replica) {
    // Its LSNs are its source's: the checkpoint goes beside the log, made
    // durable before the log is truncated to it.
    detail::write_replica_checkpoint(opts.fs ? *opts.fs : *posix_file_system(), opts.dir, {c, pages_from});
    log->truncate_before(c);
    checkpoint_lsn.store(c, std::memory_order_relaxed);
    checkpoints.fetch_add(1, std::memory_order_relaxed);
    return c;
  }
  log->truncate_before(c);
  // Where the next recovery may start; durable with the next group commit
  // (lost, an earlier checkpoint record serves).
  log->append(record::checkpoint_record(c, pages_from));
  checkpoint_lsn.store(c, std::memory_order_relaxed);
  checkpoints.fetch_add(1, std::memory_order_relaxed);
  return c;
}

void store::replay(lsn_t lsn, std::span<const std::byte> payload) {
  const replay_record r{lsn, payload};
  replay(std::span(&r, 1));
}

void store::replay(std::span<const replay_record> records) {
  impl& s = *impl_;
  s.check_open();
  if (!s.opts.replica) {
    throw std::invalid_argument("replay into " + s.opts.dir.string() + ": the store is not open as a replica "
                                "(kv::options::replica)");
  }
  std::lock_guard w(s.writer_mu);
  std::unique_lock tree(s.tree_mu);
  // Only replay appends to a replica's log (under writer_mu): its end is
  // read once.
  lsn_t last = s.log->last_lsn();
  for (const replay_record& r : records) {
    s.replay_locked(r.lsn, r.payload, last);
    last = r.lsn;
  }
}

void store::impl::replay_locked(lsn_t lsn, std::span<const std::byte> payload, lsn_t last) {
  impl& s = *this;
  if (lsn != last + 1) {
    throw std::invalid_argument("replay into " + s.opts.dir.string() + ": record " + std::to_string(lsn) +
                                " does not follow its log, which ends at LSN " + std::to_string(last));
  }
  std::vector<std::byte> foreign;
  std::span<const std::byte> rec = payload;
  if (!payload.empty() && payload[0] == std::byte{record::kind_checkpoint}) {
    // The source's checkpoint says what the source's data file holds, not
    // this one's: kept, under a kind recovery ignores.
    foreign.assign(payload.begin(), payload.end());
    foreign[0] = std::byte{record::kind_foreign_checkpoint};
    rec = foreign;
  }
  // Malformed bytes are refused before they reach the log.
  bool meta_changes = false;
  record::decoded d;
  try {
    d = record::decode(rec);
    for (const auto& c : d.changes) meta_changes |= record::changes_page(c.kind) && c.page == 0;
  } catch (const record::malformed& e) {
    throw corruption_error("replay into " + s.opts.dir.string() + ": record " + std::to_string(lsn) +
                           " is not a record of a pageio::kv store: " + e.what());
  }
  s.log->append(rec);
  try {
    s.redo(lsn, d, 0);
    if (meta_changes) {
      // A new root (the source's root split, or its tree shrank): readers
      // start from the meta page's root from the next record on, as the
      // source's did (still under tree_mu held exclusively).
      pagecache::page_ref m = s.fetch(0);
      const page::meta_fields meta = page::read_meta(m.data());
      s.root = meta.root;
      s.height = meta.height;
    }
  } catch (...) {
    s.replay_failed = true;
    throw;
  }
  s.note_logged(rec.size());
}

void store::prefetch_for_replay(std::span<const std::span<const std::byte>> payloads) {
  impl& s = *impl_;
  s.check_open();
  std::vector<pagecache::page_id> ids;
  for (const auto& p : payloads) {
    try {
      const record::decoded d = record::decode(p);
      for (const auto& c : d.changes) {
        if (record::changes_page(c.kind)) ids.push_back({s.file, c.page});
      }
    } catch (const record::malformed&) {
      // replay() says what is wrong with it.
    }
  }
  std::sort(ids.begin(), ids.end(), [](const auto& a, const auto& b) { return a.page < b.page; });
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  // In batches a small cache holds, pinned only while read.
  const std::size_t batch = std::max<std::size_t>(16, s.opts.cache_bytes / pagecache::page_size / 8);
  for (std::size_t i = 0; i < ids.size(); i += batch) {
    const auto n = std::min(batch, ids.size() - i);
    s.pool->fetch_batch(std::span(ids).subspan(i, n));
  }
}

lsn_t store::checkpoint() {
  impl_->check_open();
  return impl_->checkpoint_now();
}

void store::sync() {
  impl_->check_open();
  impl_->log->flush(impl_->log->last_lsn());
}

void store::impl::background() {
  using namespace std::chrono;
  auto last = steady_clock::now();
  std::unique_lock lk(bg_mu);
  for (;;) {
    const auto interval = opts.checkpoint_interval_ms ? milliseconds(opts.checkpoint_interval_ms) : hours(24);
    bg_cv.wait_for(lk, std::min<steady_clock::duration>(interval, seconds(1)),
                   [&] { return bg_stop || bg_kick.load(); });
    if (bg_stop) return;
    bg_kick = false;
    const std::uint64_t logged = logged_since_checkpoint.load(std::memory_order_relaxed);
    const bool by_size = opts.checkpoint_log_bytes != 0 && logged >= opts.checkpoint_log_bytes;
    const bool by_time = opts.checkpoint_interval_ms != 0 && logged > 0 && steady_clock::now() - last >= interval;
    if (!by_size && !by_time) continue;
    lk.unlock();
    try {
      checkpoint_now();
    } catch (...) {
      // The next write or checkpoint reports the failure (the log or the
      // pool stays failed); nothing is reported durable that is not.
    }
    last = steady_clock::now();
    lk.lock();
  }
}

statistics store::stats() const {
  impl& s = *impl_;
  s.check_open();
  statistics st;
  st.puts = s.puts.load();
  st.deletes = s.deletes.load();
  st.batches = s.batches.load();
  st.gets = s.gets.load();
  st.scans = s.scans.load();
  st.checkpoints = s.checkpoints.load();
  st.checkpoint_lsn = s.checkpoint_lsn.load();
  st.recovered_records = s.recovered_records;
  {
    std::shared_lock tree(s.tree_mu);
    pagecache::page_ref m = s.fetch(0);
    std::shared_lock latch(m.latch());  // a leaf split may be allocating (leaf_split.cpp)
    const page::meta_fields meta = page::read_meta(m.data());
    st.pages = meta.page_count;
    st.free_pages = meta.free_pages;
    st.height = meta.height;
  }
  st.last_lsn = s.log->last_lsn();
  st.durable_lsn = s.log->durable_lsn();
  const auto ps = s.pool->stats();
  st.cache_hits = ps.hits;
  st.cache_misses = ps.misses;
  st.pages_written = ps.pages_written;
  st.data_syncs = ps.syncs;
  st.buffered_pairs = s.wbuf->size();
  st.buffered_bytes = s.wbuf->bytes();
  st.buffered_puts = s.buffered_puts.load();
  st.merged_pairs = s.merged_pairs.load();
  const auto ls = s.log->stats();
  st.log_commits = ls.batches;
  st.log_records = ls.records;
  st.log_pages = ls.pages;
  st.wal_archive = s.wal_archive;
  st.archived_segments = ls.archived_segments;
  st.archived_lsn = ls.archived_lsn;
  st.archive_failures = ls.archive_failures;
  st.archive_error = ls.archive_error;
  return st;
}

}  // namespace pageio::kv
