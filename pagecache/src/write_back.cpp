// Write-back: the dirty list, batches written under the WAL rule, the
// checkpoint and the background cleaner.

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "pool_internal.hpp"

namespace pageio::pagecache {

void page_ref::mark_dirty(lsn_t lsn) {
  buffer_pool& p = *pool_;
  bool wake = false;
  {
    std::lock_guard lock(p.dirty_mu_);
    lsn_t cur = f_->lsn.load(std::memory_order_relaxed);
    if (lsn > cur) f_->lsn.store(lsn, std::memory_order_release);
    if (!f_->dirty.load(std::memory_order_relaxed)) {
      f_->rec_lsn = lsn;
      f_->dirty.store(true, std::memory_order_release);
      p.q_->dirty.push_back(*f_);
      ++p.dirty_count_;
      const double frac = p.opts_.cleaner_dirty_fraction;
      wake = frac > 0 && static_cast<double>(p.dirty_count_) > frac * static_cast<double>(p.nframes_);
    }
  }
  if (wake) p.cleaner_cv_.notify_one();
}

// --- writing back ----------------------------------------------------------

std::size_t buffer_pool::write_back(std::size_t max_pages, bool may_block) {
  // Without may_block (an eviction, the cleaner, clean()), nothing here
  // waits: not for another write-back, not for a page's latch. The thread
  // asking may itself hold a page's latch exclusively, and wait for a frame.
  std::unique_lock wlock(write_mu_, std::defer_lock);
  if (may_block) {
    wlock.lock();
  } else if (!wlock.try_lock()) {
    return 0;
  }
  struct item {
    frame* f;
    lsn_t lsn, rec_lsn;
  };
  std::vector<item> items;
  {
    std::lock_guard lock(dirty_mu_);
    for (auto it = q_->dirty.begin(); it != q_->dirty.end() && items.size() < max_pages; ++it) {
      frame* f = &*it;
      f->pins.fetch_add(1, std::memory_order_acq_rel);  // dirty pages are never evicted: safe without the shard lock
      items.push_back({f, 0, f->rec_lsn});
    }
  }
  if (items.empty()) return 0;
  std::sort(items.begin(), items.end(), [](const item& a, const item& b) {
    return a.f->id.file != b.f->id.file ? a.f->id.file < b.f->id.file : a.f->id.page < b.f->id.page;
  });
  // Snapshot each page under its shared latch (no writer can be changing
  // it), and mark it clean at that moment: a change after the copy marks it
  // dirty again.
  void* mem = nullptr;
  if (::posix_memalign(&mem, page_size, items.size() * page_size) != 0) {
    for (auto& it : items) unpin(it.f);
    throw std::bad_alloc();
  }
  std::unique_ptr<std::byte, void (*)(void*)> copy(static_cast<std::byte*>(mem), &std::free);
  lsn_t max_lsn = 0;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    frame* f = items[i].f;
    std::shared_lock latch(f->latch, std::defer_lock);
    if (may_block) {
      latch.lock();
    } else if (!latch.try_lock()) {
      unpin(f);  // being changed: it stays dirty for a later batch
      continue;
    }
    items[kept] = items[i];
    const std::size_t i_out = kept++;
    std::memcpy(copy.get() + i_out * page_size, f->data, page_size);
    std::lock_guard lock(dirty_mu_);
    items[i_out].lsn = f->lsn.load(std::memory_order_acquire);
    max_lsn = std::max(max_lsn, items[i_out].lsn);
    if (f->dirty.load(std::memory_order_relaxed)) {
      q_->dirty.erase(dirty_list::s_iterator_to(*f));
      f->dirty.store(false, std::memory_order_release);
      --dirty_count_;
    }
  }
  items.resize(kept);
  if (items.empty()) return 0;
  auto redirty = [&](const item& it) {
    std::lock_guard lock(dirty_mu_);
    if (it.f->dirty.load(std::memory_order_relaxed)) {
      // Changed again meanwhile: its first unwritten change is still this one.
      it.f->rec_lsn = std::min(it.f->rec_lsn, it.rec_lsn);
    } else {
      it.f->rec_lsn = it.rec_lsn;
      it.f->dirty.store(true, std::memory_order_release);
      q_->dirty.push_front(*it.f);
      ++dirty_count_;
    }
  };
  // The WAL rule: the log first.
  try {
    if (opts_.log != nullptr && max_lsn > opts_.log->durable_lsn()) opts_.log->make_durable(max_lsn);
  } catch (...) {
    for (auto& it : items) {
      redirty(it);
      unpin(it.f);
    }
    throw;
  }
  // Adjacent pages (adjacent in the copy too) go out as one write.
  struct run {
    std::size_t first, count;
  };
  std::vector<run> runs;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!runs.empty()) {
      run& r = runs.back();
      const frame* prev = items[r.first + r.count - 1].f;
      if (prev->id.file == items[i].f->id.file && prev->id.page + 1 == items[i].f->id.page) {
        ++r.count;
        continue;
      }
    }
    runs.push_back({i, 1});
  }
  std::vector<io_request> reqs(runs.size());
  std::exception_ptr broke;
  try {
    for (std::size_t k = 0; k < runs.size(); ++k) {
      const run& r = runs[k];
      reqs[k].prep_write(fd_of(items[r.first].f->id.file), copy.get() + r.first * page_size, r.count * page_size,
                         items[r.first].f->id.page * page_size);
    }
    run_on_lane(reqs);
  } catch (...) {
    broke = std::current_exception();
    for (auto& q : reqs) {
      if (q.result == 0 && q.length > 0) q.result = -EIO;
    }
  }
  c_.writes.fetch_add(reqs.size(), std::memory_order_relaxed);
  std::string first_error;
  std::error_code first_ec;
  std::size_t written = 0;
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const run& r = runs[k];
    const frame* f0 = items[r.first].f;
    // A short write (fewer bytes than asked, none included) did not write
    // the pages: an error like a negative result, never a success.
    const std::size_t asked = r.count * page_size;
    const bool short_write = reqs[k].result >= 0 && static_cast<std::uint64_t>(reqs[k].result) < asked;
    if (reqs[k].result < 0 || short_write) {
      c_.write_errors.fetch_add(r.count, std::memory_order_relaxed);
      for (std::size_t j = 0; j < r.count; ++j) redirty(items[r.first + j]);
      if (first_error.empty()) {
        first_ec = short_write ? std::error_code(EIO, std::system_category()) : reqs[k].error();
        const std::string why = short_write ? "short write: " + std::to_string(reqs[k].result) + " of " +
                                                  std::to_string(asked) + " bytes written (" + first_ec.message() + ")"
                                            : first_ec.message();
        first_error = "pagecache: writing back " + std::to_string(r.count) + " page(s) from " + describe_page(f0->id) +
                      ": " + why + " (the pages stay dirty and will be written again)";
      }
      continue;
    }
    written += r.count;
    c_.pages_written.fetch_add(r.count, std::memory_order_relaxed);
    try {
      file_entry& fe = const_cast<file_entry&>(file(f0->id.file));
      const std::uint64_t end = f0->id.page + r.count;
      std::uint64_t cur = fe.size_pages.load(std::memory_order_relaxed);
      while (cur < end && !fe.size_pages.compare_exchange_weak(cur, end)) {
      }
      fe.needs_sync.store(true, std::memory_order_release);
    } catch (...) {
    }
  }
  for (auto& it : items) unpin(it.f);
  if (broke) std::rethrow_exception(broke);
  if (!first_error.empty()) throw io_error(first_ec, first_error);
  return written;
}

std::size_t buffer_pool::clean(std::size_t max_pages) {
  std::size_t total = 0;
  while (total < max_pages) {
    const std::size_t n = write_back(std::min(opts_.write_batch, max_pages - total), false);
    if (n == 0) break;
    total += n;
  }
  return total;
}

void buffer_pool::flush_all() {
  std::size_t target;
  {
    std::lock_guard lock(dirty_mu_);
    target = dirty_count_;
  }
  std::size_t written = 0;
  // Pages dirty when the checkpoint began are written (and pages dirtied
  // meanwhile, until there are none or as many again were written).
  while (written < 2 * target + opts_.write_batch) {
    const std::size_t n = write_back(opts_.write_batch, true);
    if (n == 0) break;
    written += n;
  }
  // Every file written since the last checkpoint, by whichever path.
  std::vector<file_entry*> to_sync;
  {
    std::lock_guard lock(files_mu_);
    for (auto& fe : files_) {
      if (fe->needs_sync.exchange(false, std::memory_order_acq_rel)) to_sync.push_back(fe.get());
    }
  }
  if (to_sync.empty()) return;
  std::vector<io_request> reqs(to_sync.size());
  for (std::size_t i = 0; i < to_sync.size(); ++i) reqs[i].prep_fdatasync(to_sync[i]->f.fd());
  auto unsynced = [&] {
    for (auto* fe : to_sync) fe->needs_sync.store(true, std::memory_order_release);
  };
  try {
    run_on_lane(reqs);
  } catch (...) {
    unsynced();
    throw;
  }
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (reqs[i].result < 0) {
      unsynced();
      throw io_error(reqs[i].error(), "pagecache: fdatasync of " + to_sync[i]->f.path().string() +
                                          " after writing back: " + reqs[i].error().message() +
                                          " (the written pages may not be durable; do not trust this checkpoint)");
    }
  }
}

std::optional<lsn_t> buffer_pool::oldest_dirty_lsn() const {
  std::lock_guard lock(dirty_mu_);
  if (q_->dirty.empty()) return std::nullopt;
  lsn_t m = UINT64_MAX;
  for (const frame& f : q_->dirty) m = std::min(m, f.rec_lsn);
  return m;
}

void buffer_pool::cleaner_main() {
  const double high = opts_.cleaner_dirty_fraction * static_cast<double>(nframes_);
  std::unique_lock lock(dirty_mu_);
  for (;;) {
    cleaner_cv_.wait_for(lock, std::chrono::milliseconds(50),
                         [&] { return stop_cleaner_ || static_cast<double>(dirty_count_) > high; });
    if (stop_cleaner_) return;
    while (!stop_cleaner_ && static_cast<double>(dirty_count_) > high / 2) {
      lock.unlock();
      bool failed = false;
      try {
        if (write_back(opts_.write_batch, false) == 0) failed = true;
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
