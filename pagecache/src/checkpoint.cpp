// The checkpoint, the syncs of data files, what the log must keep, and the
// background cleaner.
//
// What the log must keep (oldest_dirty_lsn()) is the oldest first-dirty LSN
// of any change not yet durable, wherever it is: on the dirty list, copied by
// a write-back that has not finished (`writing`), written to a file not yet
// synced (`unsynced`), covered by a sync still running (`syncing`), or
// written to a file whose sync failed (which keeps it for ever: fsyncgate).
// A page moves between these under dirty_mu_, never through a gap.

#include <algorithm>

#include "doublewrite.hpp"
#include "pool_internal.hpp"

namespace pageio::pagecache {

std::optional<lsn_t> buffer_pool::oldest_unsynced_locked() const {
  std::optional<lsn_t> m;
  for (const frame& f : q_->dirty) lower(m, f.rec_lsn);
  if (!q_->writing.empty()) lower(m, *q_->writing.begin());
  std::lock_guard lock(files_mu_);
  for (const auto& fe : files_) {
    if (fe->unsynced) lower(m, *fe->unsynced);
    if (fe->syncing) lower(m, *fe->syncing);
  }
  return m;
}

std::optional<lsn_t> buffer_pool::oldest_dirty_lsn() const {
  std::lock_guard lock(dirty_mu_);
  return oldest_unsynced_locked();
}

void buffer_pool::sync_files() {
  std::lock_guard serial(sync_mu_);
  const std::vector<file_entry*> files = file_entries();
  std::vector<file_entry*> to_sync;
  const file_entry* failed = nullptr;
  {
    std::lock_guard lock(dirty_mu_);
    for (file_entry* fe : files) {
      if (fe->failed) {
        if (failed == nullptr) failed = fe;
        continue;
      }
      if (!fe->unsynced) continue;
      lower(fe->syncing, *fe->unsynced);
      fe->unsynced.reset();
      to_sync.push_back(fe);
    }
  }
  if (!to_sync.empty()) {
    std::vector<io_request> reqs(to_sync.size());
    for (std::size_t i = 0; i < to_sync.size(); ++i) reqs[i].prep_fdatasync(to_sync[i]->f.fd());
    std::exception_ptr broke;
    try {
      run_on_lane(reqs);
    } catch (...) {
      broke = std::current_exception();
      for (auto& q : reqs) {
        if (q.result == 0) q.result = -EIO;
      }
    }
    c_.syncs.fetch_add(reqs.size(), std::memory_order_relaxed);
    std::vector<std::pair<file_entry*, std::error_code>> failed_now;
    {
    std::lock_guard lock(dirty_mu_);
    for (std::size_t i = 0; i < reqs.size(); ++i) {
      file_entry& fe = *to_sync[i];
      if (reqs[i].result >= 0) {
        fe.syncing.reset();
        continue;
      }
      // Never retried into success: `syncing` stays, the file stays failed.
      failed_now.push_back({&fe, reqs[i].error()});
      if (failed == nullptr) failed = &fe;
    }
    }
    for (auto& [fe, ec] : failed_now) fail_file(*fe, ec, "fdatasync");
    if (broke && failed == nullptr) std::rethrow_exception(broke);
  }
  if (failed != nullptr) {
    std::lock_guard lock(dirty_mu_);
    throw io_error(failed->failed_ec, failed->failed_what);
  }
}

lsn_t buffer_pool::checkpoint() {
  lsn_t redo;
  {
    std::lock_guard lock(dirty_mu_);
    redo = q_->max_marked + 1;
  }
  return checkpoint(redo);
}

lsn_t buffer_pool::checkpoint(lsn_t redo) {
  // The pages dirty when the checkpoint begins, in page order: a batch is
  // then runs of adjacent pages, written as a few large writes instead of
  // one 4 KiB write per page.
  listed_pages listed;
  {
    std::lock_guard lock(dirty_mu_);
    listed.reserve(dirty_count_);
    for (frame& f : q_->dirty) listed.emplace_back(f.id, &f);
  }
  std::sort(listed.begin(), listed.end(), [](const auto& a, const auto& b) {
    return a.first.file != b.first.file ? a.first.file < b.first.file : a.first.page < b.first.page;
  });
  const std::size_t target = listed.size();
  // A checkpoint writes every dirty page anyway: in batches as large as the
  // double-write area's slots hold (each batch costs two syncs with it), not
  // the evictions' and the cleaner's write_batch.
  const std::size_t batch = std::max(opts_.write_batch, doublewrite::max_batch_pages);
  std::size_t written = 0;
  for (std::size_t cursor = 0; cursor < listed.size();) {
    written += write_back(batch, true, false, 1, &listed, &cursor);
  }
  // Then pages dirtied meanwhile, until there are none or as many again as
  // there were have been written.
  while (written < 2 * target + batch) {
    const std::size_t n = write_back(batch, true);
    if (n == 0) break;
    written += n;
  }
  // Every file written since its last sync, by whichever path.
  sync_files();
  std::lock_guard lock(dirty_mu_);
  const std::optional<lsn_t> oldest = oldest_unsynced_locked();
  return oldest ? std::min(*oldest, redo) : redo;
}

void buffer_pool::flush_all() { (void)checkpoint(); }

bool buffer_pool::cleaning_wanted_locked(double share) const noexcept {
  // Ahead of evictions only: while the free frames cover the fraction, the
  // next fetches evict nothing, and a page written now would be written
  // again by the checkpoint (a replay into a cache that holds its whole
  // data file wrote the file over and over).
  const double high = opts_.cleaner_dirty_fraction * static_cast<double>(nframes_);
  return high > 0 && static_cast<double>(dirty_count_) > share * high &&
         static_cast<double>(free_frames_.load(std::memory_order_relaxed)) < high;
}

void buffer_pool::cleaner_main() {
  std::unique_lock lock(dirty_mu_);
  for (;;) {
    cleaner_cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return stop_cleaner_ || cleaning_wanted_locked(); });
    if (stop_cleaner_) return;
    while (!stop_cleaner_ && cleaning_wanted_locked(0.5)) {
      lock.unlock();
      bool failed = false;
      try {
        if (write_back(opts_.write_batch, false, /*cold_only=*/true, std::max<std::size_t>(1, opts_.write_batch / 2)) == 0) {
          failed = true;
        }
      } catch (...) {
        failed = true;  // counted in the statistics; the pages stay dirty
      }
      lock.lock();
      if (failed) {
        cleaner_cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return stop_cleaner_; });
        break;
      }
    }
  }
}

}  // namespace pageio::pagecache
