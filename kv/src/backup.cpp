// Online backup (store::backup): a checkpoint, the data file's pages, and
// the log from that checkpoint on, copied while writers go on.
//
// Why the copy is a store at one LSN (docs/kv.md, "Backup"):
//  - checkpoint_mu is held from the checkpoint to the end of the log's copy,
//    so no later checkpoint truncates the log under the copy or logs a
//    checkpoint record that the copied pages may not reflect: the copy's
//    recovery starts at the backup's checkpoint;
//  - a page written back while it is copied is the same page or a newer
//    one, never older than at the checkpoint, and never newer than the log
//    copied after it (the pool writes no page before the log is durable up
//    to its LSN); redo from the checkpoint brings every page to the copy's
//    last record. A page caught mid-write fails its checksum and is read
//    again;
//  - the log is copied after the data file, through a record at least as
//    new as every page copied, and checked by reading it: a page of the
//    log caught while the flusher rewrote it reads as a torn tail, and the
//    copy is made again;
//  - everything is written under <to>.tmp-backup, synced, and renamed, so
//    a crash leaves no half backup under the name asked for.
#include "store_impl.hpp"

#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/file_system.hpp>
#include <pageio/pagecache/page_format.hpp>
#include <pageio/wal/reader.hpp>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace pageio::kv {

namespace {

// Copies `from` to `to` (created), syncing it; returns the bytes copied.
std::uint64_t copy_file(file_system& fs, const std::filesystem::path& from, const std::filesystem::path& to) {
  file src = fs.open(from, {.direct = false, .writable = false});
  file dst = fs.open(to, {.direct = false, .writable = true, .create = true, .truncate = true});
  const std::uint64_t size = src.size();
  std::vector<char> buf(static_cast<std::size_t>(std::min<std::uint64_t>(size, 1u << 20)));
  for (std::uint64_t off = 0; off < size;) {
    const std::size_t n = fs.read(src, buf.data(), std::min<std::uint64_t>(buf.size(), size - off), off);
    if (n == 0) break;  // it shrank: the rest is not there
    fs.write(dst, buf.data(), n, off);
    off += n;
  }
  fs.sync(dst, true);
  return size;
}

}  // namespace

store::backup_result store::backup(const std::filesystem::path& to,
                                   const std::function<void(std::uint64_t, std::uint64_t)>& progress) {
  impl& s = *impl_;
  s.check_open();
  if (s.opts.replica || s.opts.read_only) {
    throw std::invalid_argument("backup of " + s.opts.dir.string() + ": a store open " +
                                (s.opts.replica ? "as a replica" : "read-only") +
                                " is not backed up (back up its source, or open it as a store)");
  }
  const auto started = std::chrono::steady_clock::now();
  file_system& fs = s.opts.fs ? *s.opts.fs : *posix_file_system();
  if (to.empty()) throw std::invalid_argument("backup: the target directory is empty");
  if (fs.stat(to)) {
    throw std::system_error(std::make_error_code(std::errc::file_exists),
                            "backup: " + to.string() + " exists; give a new directory (pageio-kv backup --force "
                                                       "replaces an earlier backup)");
  }
  const auto abs = std::filesystem::absolute(to).lexically_normal();
  const auto tmp = abs.parent_path() / (abs.filename().string() + ".tmp-backup");
  backup_result res;
  try {
    if (fs.stat(tmp)) std::filesystem::remove_all(tmp);  // ours, left by a backup that did not finish
    if (!fs.create_directory(tmp)) throw std::system_error(std::make_error_code(std::errc::file_exists), tmp.string());
    fs.sync_directory(abs.parent_path());
    fs.create_directory(tmp / "wal");
    fs.sync_directory(tmp);
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "backup: making " + tmp.string() + ": " + e.what());
  }

  try {
    s.backup_copy(fs, tmp, progress, res);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);  // ours; a half backup is no backup
    throw;
  }
  fs.rename(tmp, abs);
  fs.sync_directory(abs.parent_path());
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return res;
}

void store::impl::backup_copy(file_system& fs, const std::filesystem::path& tmp,
                              const std::function<void(std::uint64_t, std::uint64_t)>& progress,
                              store::backup_result& res) {
  impl& s = *this;
  std::lock_guard no_checkpoints(s.checkpoint_mu);
  s.checkpoint_locked();

  // The data file, page by page, each checked.
  const auto data = s.opts.dir / "data";
  const std::uint64_t data_bytes = fs.stat(data) ? fs.stat(data)->size_bytes : 0;
  const std::uint64_t log_guess = s.log->live_segments().size() * s.opts.wal_segment_bytes;
  const std::uint64_t total = data_bytes + log_guess;
  {
    pageio::file src = fs.open(data, {.direct = true, .writable = false});
    pageio::file dst = fs.open(tmp / "data", {.direct = false, .writable = true, .create = true, .truncate = true});
    constexpr std::size_t chunk_pages = 256;
    aligned_buffer buf(chunk_pages * page_size, page_size);
    aligned_buffer again(page_size, page_size);
    const std::uint64_t pages = data_bytes / page_size;
    for (std::uint64_t first = 0; first < pages; first += chunk_pages) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_pages, pages - first));
      const std::size_t got = fs.read(src, buf.data(), n * page_size, first * page_size);
      if (got != n * page_size) {
        throw std::system_error(std::make_error_code(std::errc::io_error),
                                "backup: " + data.string() + " ended at byte " + std::to_string(first * page_size + got));
      }
      for (std::size_t i = 0; i < n; ++i) {
        std::byte* p = static_cast<std::byte*>(buf.data()) + i * page_size;
        const std::uint64_t pg = first + i;
        lsn_t lsn = 0;
        auto state = pagecache::format::check_page(p, pg, &lsn);
        // Caught while the pool wrote it: read it again until it checks.
        for (int tries = 0; state == pagecache::format::page_state::bad_checksum && tries < 50; ++tries) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          fs.read(src, again.data(), page_size, pg * page_size);
          std::memcpy(p, again.data(), page_size);
          state = pagecache::format::check_page(p, pg, &lsn);
        }
        if (state != pagecache::format::page_state::valid && state != pagecache::format::page_state::empty) {
          throw corruption_error("backup: page " + std::to_string(pg) + " of " + data.string() + " " +
                                 pagecache::format::describe(state) + ": the store is damaged there (pageio-kv "
                                 "check says more); nothing was backed up");
        }
      }
      fs.write(dst, buf.data(), n * page_size, first * page_size);
      res.data_pages += n;
      res.bytes += n * page_size;
      if (progress) progress(res.bytes, total);
    }
    fs.sync(dst, true);
  }

  // The log, through a record at least as new as every page copied.
  const lsn_t end = s.log->last_lsn();
  s.log->flush(end);
  wal::scan_result copied;
  for (int attempt = 0;; ++attempt) {
    std::uint64_t log_bytes = 0, segments = 0;
    for (const std::uint64_t seq : s.log->live_segments()) {
      const std::string name = wal::segment_file_name(seq);
      log_bytes += copy_file(fs, s.log->dir() / name, tmp / "wal" / name);
      ++segments;
      if (progress) progress(res.bytes + log_bytes, std::max(total, res.bytes + log_bytes));
    }
    fs.sync_directory(tmp / "wal");
    copied = wal::scan_log(fs, tmp / "wal");
    if (!copied.corruption && copied.last_lsn >= end) {
      res.bytes += log_bytes;
      res.log_segments = segments;
      break;
    }
    if (attempt == 10) {
      throw std::system_error(std::make_error_code(std::errc::io_error),
                              "backup: the copy of the log did not read back through LSN " + std::to_string(end) +
                                  " in 10 attempts" +
                                  (copied.corruption ? ": " + copied.corruption->what : std::string()));
    }
    for (const auto& e : fs.list(tmp / "wal")) fs.unlink(tmp / "wal" / e.name);
  }
  // The copy may end with records the source had written but not yet made
  // durable: made durable now, or a power cut could take them from the
  // source and leave the backup with records its source never had.
  s.log->flush(copied.last_lsn);
  {
    pageio::file m = fs.open(tmp / replayable_marker, {.direct = false, .writable = true, .create = true});
    fs.sync(m, true);
  }
  fs.sync_directory(tmp);
  res.lsn = copied.last_lsn;
}

}  // namespace pageio::kv
