// Write-back: the dirty list and the batches written from it, under the WAL
// rule, through the double-write area when it is on (doublewrite.hpp).
//
// A batch: pin the oldest dirty pages; copy each under its shared latch and
// take it off the dirty list at that moment (a change after the copy marks
// it dirty again), its first-dirty LSN moving to `writing` so that
// oldest_dirty_lsn() still counts it; seal each copy (page_format.hpp); make
// the log durable up to the batch's highest LSN; with the double-write area,
// write and sync the images there first; write the pages in place; with the
// area, sync the data file too (the next batch overwrites the area). A page
// written but not synced stays counted through its file's `unsynced` until a
// checkpoint syncs it (checkpoint.cpp).

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <new>

#include <pageio/engine/aligned_buffer.hpp>

#include "doublewrite.hpp"
#include "pool_internal.hpp"

namespace pageio::pagecache {

namespace {
// Runs `fn` when the scope ends, whichever way. It holds the callable itself:
// a std::function here allocated (seven captured references), and a
// bad_alloc then, with the batch's pages already pinned and taken off the
// dirty list, left them so for good.
template <class F>
struct on_scope_exit {
  F fn;
  ~on_scope_exit() { fn(); }
};
template <class F>
on_scope_exit(F) -> on_scope_exit<F>;
}  // namespace

void page_ref::mark_dirty(lsn_t lsn) {
  buffer_pool& p = *pool_;
  bool wake = false;
  {
    std::lock_guard lock(p.dirty_mu_);
    lsn_t cur = f_->lsn.load(std::memory_order_relaxed);
    if (lsn > cur) f_->lsn.store(lsn, std::memory_order_release);
    p.q_->max_marked = std::max(p.q_->max_marked, lsn);
    if (!f_->dirty.load(std::memory_order_relaxed)) {
      f_->rec_lsn = lsn;
      f_->dirty.store(true, std::memory_order_release);
      p.q_->dirty.push_back(*f_);
      ++p.dirty_count_;
      wake = p.cleaning_wanted_locked();
    }
  }
  if (wake) p.cleaner_cv_.notify_one();
}

std::vector<buffer_pool::file_entry*> buffer_pool::file_entries() const {
  std::lock_guard lock(files_mu_);
  std::vector<file_entry*> v;
  v.reserve(files_.size());
  for (const auto& fe : files_) v.push_back(fe.get());
  return v;
}

namespace {

struct item {
  frame* f;
  lsn_t lsn, rec_lsn;
  enum { pending, written, synced, failed } outcome = pending;
};

// Adjacent items of one file whose pages are adjacent: one write.
struct run {
  std::size_t first, count;
};

std::vector<run> runs_of(const std::vector<item>& items, std::size_t from, std::size_t to) {
  std::vector<run> runs;
  for (std::size_t i = from; i < to; ++i) {
    if (!runs.empty()) {
      run& r = runs.back();
      const frame* prev = items[r.first + r.count - 1].f;
      if (prev->id.page + 1 == items[i].f->id.page) {
        ++r.count;
        continue;
      }
    }
    runs.push_back({i, 1});
  }
  return runs;
}

}  // namespace

// --- writing back ----------------------------------------------------------

std::size_t buffer_pool::write_back(std::size_t max_pages, bool may_block, bool cold_only, std::size_t min_pages,
                                    const listed_pages* listed, std::size_t* cursor) {
  // Without may_block (an eviction, the cleaner, clean()), nothing here
  // waits: not for another write-back, not for a page's latch. The thread
  // asking may itself hold a page's latch exclusively, and wait for a frame.
  std::unique_lock wlock(write_mu_, std::defer_lock);
  if (may_block) {
    wlock.lock();
  } else if (!wlock.try_lock()) {
    return 0;
  }
  const bool dw = opts_.doublewrite;
  if (dw) max_pages = std::min(max_pages, doublewrite::max_batch_pages);
  const std::vector<file_entry*> files = file_entries();
  std::vector<item> items;
  {
    std::lock_guard lock(dirty_mu_);
    auto take = [&](frame* f) {
      if (f->id.file >= files.size()) return;  // a file added since the snapshot: the next batch
      if (files[f->id.file]->failed) return;  // fsyncgate: never written again
      // A page in use stays dirty and takes more changes before it is
      // written (by a checkpoint, or once it cools).
      if (cold_only && f->freq.load(std::memory_order_relaxed) != 0) return;
      f->pins.fetch_add(1, std::memory_order_acq_rel);  // dirty pages are never evicted: safe without the shard lock
      items.push_back({f, 0, f->rec_lsn});
    };
    if (listed != nullptr) {
      for (; *cursor < listed->size() && items.size() < max_pages; ++*cursor) {
        const auto& [id, f] = (*listed)[*cursor];
        // Still dirty, so still that page (a dirty frame is never evicted);
        // otherwise written meanwhile, and perhaps holding another page.
        if (f->dirty.load(std::memory_order_relaxed) && f->id == id) take(f);
      }
    } else {
      for (auto it = q_->dirty.begin(); it != q_->dirty.end() && items.size() < max_pages; ++it) take(&*it);
    }
  }
  // The cleaner waits for a batch worth its two syncs (with the
  // double-write area) rather than write a few pages at a time.
  if (items.empty() || items.size() < min_pages) {
    for (auto& it : items) unpin(it.f);
    return 0;
  }
  std::sort(items.begin(), items.end(), [](const item& a, const item& b) {
    return a.f->id.file != b.f->id.file ? a.f->id.file < b.f->id.file : a.f->id.page < b.f->id.page;
  });
  // The batch's copies, in a buffer kept from one write-back to the next
  // (write_mu_ is held): a fresh one per batch was a page fault per 4 KiB
  // page copied, most of a replay's faults.
  aligned_buffer& copy = wb_copy_;
  try {
    if (copy.size() < items.size() * page_size) copy = aligned_buffer(items.size() * page_size, page_size);
  } catch (const std::bad_alloc&) {
    for (auto& it : items) unpin(it.f);
    throw;
  }
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
    item& it = items[kept];
    std::byte* image = copy.data() + kept * page_size;
    ++kept;
    std::memcpy(image, f->data, page_size);
    std::lock_guard lock(dirty_mu_);
    it.lsn = f->lsn.load(std::memory_order_acquire);
    it.rec_lsn = f->rec_lsn;
    max_lsn = std::max(max_lsn, it.lsn);
    if (f->dirty.load(std::memory_order_relaxed)) {
      q_->dirty.erase(dirty_list::s_iterator_to(*f));
      f->dirty.store(false, std::memory_order_release);
      --dirty_count_;
    }
    q_->writing.insert(it.rec_lsn);
    format::seal_page(image, f->id.page, it.lsn);
  }
  items.resize(kept);
  if (items.empty()) return 0;
  // From here to the end the batch waits only for I/O (the log's, then its
  // own), never for a latch, and lets its pins go when done (this guard is
  // destroyed after the settling below). A fetch waiting for a frame keeps
  // waiting while such a batch holds some (allocate_frame). Not counted
  // while taking latches above: a fetch may hold one of them exclusively.
  writing_back_.fetch_add(1, std::memory_order_seq_cst);
  on_scope_exit in_io{[this] { writing_back_.fetch_sub(1, std::memory_order_seq_cst); }};

  // Every item leaves through here: off `writing`, and written (its file
  // then owes a sync), synced (durable), or failed (dirty again, with its
  // original first-dirty LSN).
  auto finish = [&] {
    std::lock_guard lock(dirty_mu_);
    for (const item& it : items) {
      q_->writing.erase(q_->writing.find(it.rec_lsn));
      file_entry& fe = *files[it.f->id.file];
      if (it.outcome == item::written) {
        lower(fe.unsynced, it.rec_lsn);
      } else if (it.outcome != item::synced) {
        if (it.f->dirty.load(std::memory_order_relaxed)) {
          it.f->rec_lsn = std::min(it.f->rec_lsn, it.rec_lsn);  // changed again meanwhile
        } else {
          it.f->rec_lsn = it.rec_lsn;
          it.f->dirty.store(true, std::memory_order_release);
          q_->dirty.push_front(*it.f);
          ++dirty_count_;
        }
      }
    }
  };
  auto release = [&] {
    for (const item& it : items) unpin(it.f);
  };
  // Every exit settles the items, an exception included (an allocation
  // failing halfway): what did not finish is dirty again, and pages written
  // in place but not synced while their images may be overwritten fail
  // their file.
  bool settled = false;
  on_scope_exit settle_on_exit{[&] {
    if (settled) return;
    for (item& it : items) {
      if (it.outcome == item::pending) it.outcome = item::failed;
      if (dw && it.outcome == item::written) {
        try {
          fail_file(*files[it.f->id.file], std::make_error_code(std::errc::io_error),
                    "a write-back interrupted between its writes in place and their sync");
        } catch (...) {
        }
      }
    }
    finish();
    release();
  }};

  // Per file: [begin, end) of items.
  struct group {
    file_entry* fe;
    std::size_t begin, end;
    bool ok = true;
  };
  std::vector<group> groups;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (groups.empty() || files[items[i].f->id.file] != groups.back().fe) groups.push_back({files[items[i].f->id.file], i, i});
    groups.back().end = i + 1;
  }
  std::string first_error;
  std::error_code first_ec;
  auto note_error = [&](std::error_code ec, const std::string& what) {
    if (first_error.empty()) {
      first_ec = ec;
      first_error = what;
    }
  };
  auto fail_group = [&](group& g) {
    g.ok = false;
    for (std::size_t i = g.begin; i < g.end; ++i) items[i].outcome = item::failed;
  };
  // The WAL rule: the log first.
  try {
    if (opts_.log != nullptr && max_lsn > opts_.log->durable_lsn()) opts_.log->make_durable(max_lsn);
  } catch (...) {
    for (item& it : items) it.outcome = item::failed;
    throw;  // settle_on_exit makes them dirty again
  }

  std::exception_ptr broke;
  // Runs `reqs` (whose results say what happened); the backend breaking
  // fails every request it did not finish.
  auto run_all = [&](std::vector<io_request>& reqs) {
    if (reqs.empty()) return;
    try {
      run_on_lane(reqs);
    } catch (...) {
      if (!broke) broke = std::current_exception();
      for (auto& q : reqs) {
        if (q.result == 0 && (q.length > 0 || q.op == op_code::fdatasync)) q.result = -EIO;
      }
    }
  };
  auto short_of = [](const io_request& q, std::size_t asked) {
    return q.result >= 0 && static_cast<std::uint64_t>(q.result) < asked;
  };
  auto io_ec = [&](const io_request& q, std::size_t asked) {
    return short_of(q, asked) ? errno_code(EIO) : q.error();
  };
  auto why = [&](const io_request& q, std::size_t asked) {
    return short_of(q, asked) ? "short write: " + std::to_string(q.result) + " of " + std::to_string(asked) +
                                    " bytes written (" + io_ec(q, asked).message() + ")"
                              : q.error().message();
  };

  // Double-write area: per file, each slot's header and images in one
  // write, then one sync of the area.
  std::vector<aligned_buffer> headers;
  if (dw) {
    std::vector<io_request> reqs;
    std::vector<std::vector<iovec>> iovs;
    std::vector<group*> who;
    std::vector<std::size_t> asked;  // bytes of each slot's write
    for (group& g : groups) {
      if (!g.ok) continue;
      const std::uint64_t batch = ++g.fe->dw_batches;
      const std::size_t first = iovs.size();
      for (std::size_t b = g.begin, slot = 0; b < g.end; b += doublewrite::max_pages, ++slot) {
        const std::size_t e = std::min(g.end, b + doublewrite::max_pages);
        std::vector<std::uint64_t> pages;
        for (std::size_t i = b; i < e; ++i) pages.push_back(items[i].f->id.page);
        aligned_buffer h;
        try {
          h = aligned_buffer(page_size, page_size);
        } catch (const std::bad_alloc&) {
          // The group writes nothing there: its slots so far are dropped.
          fail_group(g);
          note_error(std::make_error_code(std::errc::not_enough_memory), "pagecache: no memory for a double-write header");
          iovs.resize(first);
          who.resize(first);
          asked.resize(first);
          reqs.resize(first);
          break;
        }
        headers.push_back(std::move(h));
        doublewrite::make_header(headers.back().data(), batch, pages);
        iovs.push_back({{headers.back().data(), page_size}, {copy.data() + b * page_size, (e - b) * page_size}});
        who.push_back(&g);
        asked.push_back((1 + e - b) * page_size);
        reqs.emplace_back();
        reqs.back().prep_writev(g.fe->dw.fd(), iovs.back().data(), 2, slot * doublewrite::slot_pages * page_size);
      }
    }
    run_all(reqs);
    c_.dw_writes.fetch_add(reqs.size(), std::memory_order_relaxed);
    for (std::size_t k = 0; k < reqs.size(); ++k) {
      group& g = *who[k];
      if (!g.ok) continue;  // one failed slot fails its group once
      if (reqs[k].result < 0 || short_of(reqs[k], asked[k])) {
        fail_group(g);
        c_.write_errors.fetch_add(g.end - g.begin, std::memory_order_relaxed);
        note_error(io_ec(reqs[k], asked[k]), "pagecache: writing back " + std::to_string(g.end - g.begin) +
                                                 " page(s) from " + describe_page(items[g.begin].f->id) +
                                                 ": writing their images to the double-write area " +
                                                 g.fe->dw.path().string() + ": " + why(reqs[k], asked[k]) +
                                                 " (nothing was written in place; the pages stay dirty and will be "
                                                 "written again)");
      }
    }
    std::vector<io_request> syncs;
    std::vector<group*> synced_who;
    for (group& g : groups) {
      if (!g.ok) continue;
      c_.dw_pages.fetch_add(g.end - g.begin, std::memory_order_relaxed);
      syncs.emplace_back();
      syncs.back().prep_fdatasync(g.fe->dw.fd());
      synced_who.push_back(&g);
    }
    run_all(syncs);
    c_.syncs.fetch_add(syncs.size(), std::memory_order_relaxed);
    for (std::size_t k = 0; k < syncs.size(); ++k) {
      if (syncs[k].result >= 0) continue;
      group& g = *synced_who[k];
      fail_group(g);  // nothing in place: the pages stay dirty, and the file fails
      fail_file(*g.fe, syncs[k].error(), "fdatasync of its double-write area " + g.fe->dw.path().string());
      note_error(g.fe->failed_ec, g.fe->failed_what);
    }
  }

  // In place.
  std::vector<run> runs;
  std::vector<group*> run_group;
  for (group& g : groups) {
    if (!g.ok) continue;
    for (const run& r : runs_of(items, g.begin, g.end)) {
      runs.push_back(r);
      run_group.push_back(&g);
    }
  }
  std::vector<io_request> reqs(runs.size());
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const run& r = runs[k];
    reqs[k].prep_write(run_group[k]->fe->f.fd(), copy.data() + r.first * page_size, r.count * page_size,
                       items[r.first].f->id.page * page_size);
  }
  run_all(reqs);
  c_.writes.fetch_add(reqs.size(), std::memory_order_relaxed);
  std::size_t written = 0;
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const run& r = runs[k];
    group& g = *run_group[k];
    const frame* f0 = items[r.first].f;
    const std::size_t asked = r.count * page_size;
    if (reqs[k].result < 0 || short_of(reqs[k], asked)) {
      c_.write_errors.fetch_add(r.count, std::memory_order_relaxed);
      g.ok = false;
      for (std::size_t j = 0; j < r.count; ++j) items[r.first + j].outcome = item::failed;
      if (dw) {
        // The pages on disk may be torn, and only the area holds their
        // images: it must not be overwritten, so the file takes no more
        // writes; the next open repairs them from the area.
        fail_file(*g.fe, io_ec(reqs[k], asked),
                  "writing back " + std::to_string(r.count) + " page(s) from " + describe_page(f0->id) + " (" +
                      why(reqs[k], asked) + "; their images stay in " + g.fe->dw.path().string() + ")");
        note_error(g.fe->failed_ec, g.fe->failed_what);
      } else {
        note_error(io_ec(reqs[k], asked), "pagecache: writing back " + std::to_string(r.count) + " page(s) from " +
                                              describe_page(f0->id) + ": " + why(reqs[k], asked) +
                                              " (the pages stay dirty and will be written again)");
      }
      continue;
    }
    written += r.count;
    c_.pages_written.fetch_add(r.count, std::memory_order_relaxed);
    for (std::size_t j = 0; j < r.count; ++j) items[r.first + j].outcome = item::written;
    const std::uint64_t end = f0->id.page + r.count;
    std::uint64_t cur = g.fe->size_pages.load(std::memory_order_relaxed);
    while (cur < end && !g.fe->size_pages.compare_exchange_weak(cur, end)) {
    }
  }

  if (dw) {
    // The area is overwritten by the next batch: what this one wrote in place
    // must be durable first. A failed sync fails the file (fsyncgate).
    std::vector<io_request> syncs;
    std::vector<group*> who;
    for (group& g : groups) {
      const bool any = std::any_of(items.begin() + static_cast<std::ptrdiff_t>(g.begin),
                                   items.begin() + static_cast<std::ptrdiff_t>(g.end),
                                   [](const item& it) { return it.outcome == item::written; });
      if (!any) continue;
      syncs.emplace_back();
      syncs.back().prep_fdatasync(g.fe->f.fd());
      who.push_back(&g);
    }
    run_all(syncs);
    c_.syncs.fetch_add(syncs.size(), std::memory_order_relaxed);
    for (std::size_t k = 0; k < syncs.size(); ++k) {
      group& g = *who[k];
      if (syncs[k].result >= 0) {
        for (std::size_t i = g.begin; i < g.end; ++i) {
          if (items[i].outcome == item::written) items[i].outcome = item::synced;
        }
        continue;
      }
      // The written items stay `written`: their LSNs go to the file's
      // unsynced set, which a failed file keeps for ever.
      fail_file(*g.fe, syncs[k].error(), "fdatasync after writing back");
      note_error(g.fe->failed_ec, g.fe->failed_what);
    }
  }
  settled = true;
  finish();
  release();
  if (broke) std::rethrow_exception(broke);
  if (!first_error.empty()) throw io_error(first_ec, first_error);
  return written;
}

void buffer_pool::fail_file(file_entry& fe, std::error_code ec, const std::string& what) {
  std::lock_guard lock(dirty_mu_);
  if (fe.failed) return;
  fe.failed = true;
  fe.failed_ec = ec;
  fe.failed_what = "pagecache: " + fe.f.path().string() + ": " + what + " failed (" + ec.message() +
                   "). Pages written to it since its last good sync may be lost, so the pool writes no more to it "
                   "and keeps the log from their first change on (fsyncgate: a failed sync is never retried into "
                   "success): close the pool and recover from the log";
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

}  // namespace pageio::pagecache
