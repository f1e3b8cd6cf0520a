#include <sys/mman.h>
#include <pageio/pagecache/buffer_pool.hpp>

#include <pageio/engine/detail/futex.hpp>
#include <pageio/engine/file.hpp>

#include <algorithm>
#include <stdexcept>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "doublewrite.hpp"
#include "pool_internal.hpp"

namespace pageio::pagecache {

// --- page_ref --------------------------------------------------------------

page_ref& page_ref::operator=(page_ref&& o) noexcept {
  if (this != &o) {
    reset();
    pool_ = o.pool_;
    f_ = o.f_;
    stripe_ = o.stripe_;
    o.f_ = nullptr;
  }
  return *this;
}

void page_ref::reset() noexcept {
  if (f_ != nullptr) {
    pool_->unpin(f_, stripe_);
    f_ = nullptr;
  }
}

page_id page_ref::id() const noexcept { return f_->id; }
std::byte* page_ref::data() const noexcept { return f_->data + format::header_size; }
page_latch& page_ref::latch() const noexcept { return f_->latch; }
lsn_t page_ref::page_lsn() const noexcept { return f_->lsn.load(std::memory_order_acquire); }
bool page_ref::dirty() const noexcept { return f_->dirty.load(std::memory_order_acquire); }

// --- construction ----------------------------------------------------------

buffer_pool::buffer_pool(options o) : opts_(std::move(o)) {
  if (opts_.frames < 8) throw std::invalid_argument("pagecache: options::frames must be at least 8");
  if (opts_.frames > UINT32_MAX) {
    throw std::invalid_argument("pagecache: options::frames must be at most 4,294,967,295 (16 TiB of frames)");
  }
  if (opts_.write_batch == 0) opts_.write_batch = 1;
  if (opts_.queue_depth == 0) opts_.queue_depth = 1;
  if (!opts_.fs) opts_.fs = posix_file_system();
  nframes_ = opts_.frames;
  // Zero pages from the kernel, page-aligned, mapped in as frames are used.
  arena_ = aligned_buffer(nframes_ * page_size, page_size);
  // The frames and their reader stripes are made as they are first needed
  // (make_frame_locked): a pool of a million frames touches none of their
  // 256 MiB of bookkeeping until it uses them (memory the kernel maps in
  // cold cost 0.03-0.17 s to open a 512 MiB cache on this project's VM).
  frames_ = mapped_array<frame>(nframes_);
  pin_stripes_ = mapped_array<std::atomic<std::uint32_t>>(nframes_ * detail::reader_stripes);
  latch_stripes_ = mapped_array<std::atomic<std::uint32_t>>(nframes_ * detail::reader_stripes);
  stripes_.frames = static_cast<std::uint32_t>(nframes_);
  stripes_.latches = latch_stripes_.get();
  q_ = std::make_unique<queues>();
  free_frames_.store(nframes_, std::memory_order_relaxed);
  const std::size_t nshards = std::min<std::size_t>(64, round_up_pow2(std::max<std::size_t>(1, nframes_ / 64)));
  shard_mask_ = nshards - 1;
  const std::size_t buckets = round_up_pow2(std::max<std::size_t>(8, 2 * nframes_ / nshards));
  for (std::size_t i = 0; i < nshards; ++i) shards_.push_back(std::make_unique<shard>(buckets));
  hits_ = std::make_unique<hit_stripe[]>(hit_stripes);
  if (opts_.policy == eviction_policy::s3fifo) {
    q_->small_target = std::max<std::size_t>(1, nframes_ / 10);
    q_->freq_cap = 3;
  } else {
    q_->small_target = 0;
    q_->freq_cap = 1;
  }
  if (opts_.policy == eviction_policy::s3fifo) {
    q_->ghosts.assign(round_up_pow2(2 * (nframes_ - q_->small_target)), 0);
    q_->ghost_mask = q_->ghosts.size() - 1;
  }
  // A backend named that does not start (a typo, io_uring refused) fails
  // here, naming itself, not at the first miss. (Lanes are built lazily
  // after that, one per thread at once, and a later one may still fail.)
  if (!opts_.make_backend) {
    return_lane(borrow_lane(false));
    return_lane(borrow_lane(true));
  }
  if (opts_.cleaner_dirty_fraction > 0) cleaner_ = std::thread([this] { cleaner_main(); });
}

detail::frame* buffer_pool::make_frame_locked() {
  const std::size_t i = frames_.made();
  for (std::size_t s = 0; s < detail::reader_stripes; ++s) {
    pin_stripes_.make_at(s * nframes_ + i);
    latch_stripes_.make_at(s * nframes_ + i);
  }
  frame* f = frames_.make_next();
  f->data = arena_.data() + i * page_size;
  f->latch.stripes_ = &stripes_;
  f->latch.index_ = static_cast<std::uint32_t>(i);
  return f;
}

buffer_pool::~buffer_pool() {
  {
    std::lock_guard lock(dirty_mu_);
    stop_cleaner_ = true;
  }
  cleaner_cv_.notify_all();
  if (cleaner_.joinable()) cleaner_.join();
  // The page tables' hooks must be unlinked before the frames go.
  q_->free.clear();
  q_->small.clear();
  q_->main.clear();
  q_->dirty.clear();
  // A clean close: every batch's pages are in place and synced, so nothing
  // in the double-write areas is to be applied again. (The area of a failed
  // file is kept: its in-place pages may be torn.)
  for (auto& fe : files_) {
    if (!fe->dw.is_open() || fe->failed || fe->dw_batches == 0) continue;
    try {
      doublewrite::clear(fe->dw, [this](std::span<io_request> reqs) { run_on_lane(reqs); });
    } catch (...) {
      // Harmless: the next open only repairs pages that fail their check.
    }
  }
}

file_id buffer_pool::add_file(const std::filesystem::path& path, bool create) {
  auto e = std::make_unique<file_entry>();
  file_system& fs = *opts_.fs;
  open_options oo;
  oo.create = create;
  // Whether this open makes the file: its name must then be made durable.
  // (A file created by someone else between the stat and the open costs one
  // directory sync more; nothing is lost.)
  bool creating = create && !fs.stat(path).has_value();
  e->f = fs.open(path, oo);
  if (opts_.doublewrite) {
    // The file's double-write area, beside it: made when missing (the pool
    // cannot write the file safely without it).
    const std::filesystem::path dwp = doublewrite::path_for(path);
    open_options dwo;
    dwo.create = true;
    if (!fs.stat(dwp).has_value()) creating = true;
    e->dw = fs.open(dwp, dwo);
  }
  if (creating) {
    // The open succeeded, so the directory exists; it is never created here.
    const std::filesystem::path abs = path.is_absolute() ? path : std::filesystem::absolute(path);
    fs.sync_directory(abs.parent_path());
  }
  if (opts_.doublewrite) {
    // After a power cut: pages torn by the batch that was being written go
    // back to their image in the area, before anything reads them.
    const doublewrite::recovery r =
        doublewrite::recover(e->f, e->dw, fs, [this](std::span<io_request> reqs) { run_on_lane(reqs); });
    c_.pages_repaired.fetch_add(r.repaired.size(), std::memory_order_relaxed);
  }
  e->size_pages = e->f.size() / page_size;
  std::lock_guard lock(files_mu_);
  files_.push_back(std::move(e));
  return static_cast<file_id>(files_.size() - 1);
}

const buffer_pool::file_entry& buffer_pool::file(file_id f) const {
  std::lock_guard lock(files_mu_);
  if (f >= files_.size()) {
    throw std::out_of_range("pagecache: file id " + std::to_string(f) + " was not returned by add_file (" +
                            std::to_string(files_.size()) + " files added)");
  }
  return *files_[f];
}

int buffer_pool::fd_of(file_id f) const { return file(f).f.fd(); }
std::string buffer_pool::file_path(file_id f) const { return file(f).f.path().string(); }
std::byte* buffer_pool::frame_data(frame* f) const noexcept { return f->data; }
bool buffer_pool::frame_ready(frame* f) const noexcept {
  return f->state.load(std::memory_order_acquire) == detail::st_ready;
}

std::string buffer_pool::describe_page(const page_id& id) const {
  std::string path;
  try {
    path = file_path(id.file);
  } catch (...) {
    path = "file #" + std::to_string(id.file);
  }
  return "page " + std::to_string(id.page) + " of " + path + " (byte offset " + std::to_string(id.page * page_size) +
         ")";
}

void buffer_pool::wait_ready(frame* f) {
  shard& s = shard_for(f->id);
  for (;;) {
    {
      std::lock_guard lock(s.mu);
      if (f->state.load(std::memory_order_acquire) != detail::st_loading) break;
      f->sleepers = true;
    }
    pageio::detail::futex_wait(f->state, detail::st_loading);
  }
  if (f->state.load(std::memory_order_acquire) == detail::st_ready) return;
  std::string what;
  const std::error_code ec = take_failure(f, &what);
  throw_failure(ec, what);
}

std::error_code buffer_pool::take_failure(frame* f, std::string* what) noexcept {
  const std::error_code ec = f->error;
  if (what) *what = f->error_what;
  unpin(f);
  return ec;
}

void buffer_pool::on_ready(frame* f, std::function<void()> fn) {
  shard& s = shard_for(f->id);
  {
    std::lock_guard lock(s.mu);
    if (f->state.load(std::memory_order_acquire) == detail::st_loading) {
      f->waiters.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

void buffer_pool::finish_read(frame* f, std::int64_t result, const std::string& what) noexcept {
  shard& s = shard_for(f->id);
  std::vector<std::function<void()>> waiters;
  bool sleepers;
  {
    std::lock_guard lock(s.mu);
    if (result < 0) {
      // Unpublished before anyone hears: a later fetch reads it afresh.
      s.erase_locked(f);
      f->error = result_code(result);
      f->error_what = what;
      f->state.store(detail::st_failed, std::memory_order_release);
      f->pins.fetch_or(detail::pin_failed, std::memory_order_acq_rel);
    } else {
      f->state.store(detail::st_ready, std::memory_order_release);
    }
    waiters.swap(f->waiters);
    sleepers = f->sleepers;
    f->sleepers = false;
  }
  if (sleepers) pageio::detail::futex_wake(&f->state, INT_MAX);
  for (auto& w : waiters) w();
}

void buffer_pool::finish_checked_read(frame* f) noexcept {
  lsn_t lsn = 0;
  std::uint64_t holds = 0;
  const format::page_state st = format::check_page(f->data, f->id.page, &lsn, &holds);
  if (st == format::page_state::valid || st == format::page_state::empty) {
    f->lsn.store(lsn, std::memory_order_relaxed);
    finish_read(f, static_cast<std::int64_t>(page_size), {});
    return;
  }
  c_.corrupt_pages.fetch_add(1, std::memory_order_relaxed);
  std::string what = "pagecache: " + describe_page(f->id) + " " + format::describe(st);
  if (st == format::page_state::wrong_page) what += " (it says it is page " + std::to_string(holds) + ")";
  finish_read(f, -EUCLEAN,
              what + "; it was not handed out. Restore the file from a backup, or rebuild the page from the log");
}

[[noreturn]] void buffer_pool::throw_failure(std::error_code ec, const std::string& what) {
  // A page that failed its check travels as EUCLEAN to every waiter.
  if (ec == errno_code(EUCLEAN)) throw corruption_error(make_error_code(errc::corruption), what);
  throw io_error(ec, what);
}

void buffer_pool::complete_async_read(frame* f, std::int64_t result) noexcept {
  if (result >= 0) {
    c_.pages_read.fetch_add(1, std::memory_order_relaxed);
    if (static_cast<std::size_t>(result) < page_size) {
      std::memset(f->data + result, 0, page_size - static_cast<std::size_t>(result));  // past the end: zeros
    }
    finish_checked_read(f);
  } else {
    c_.read_errors.fetch_add(1, std::memory_order_relaxed);
    finish_read(f, result,
                "pagecache: reading " + describe_page(f->id) + ": " + std::strerror(static_cast<int>(-result)) +
                    " (the page was not cached; the caller may retry)");
  }
}

void buffer_pool::abandon_async_fetch(frame* f, bool owned_read, std::uint32_t stripe) noexcept {
  if (owned_read) {
    finish_read(f, -ECANCELED,
                "pagecache: reading " + describe_page(f->id) +
                    ": cancelled (the asynchronous fetch's handler was destroyed before it ran; a later fetch reads "
                    "the page afresh)");
  }
  unpin(f, stripe);
}

// --- reading ---------------------------------------------------------------

void buffer_pool::read_frames(std::vector<frame*>& loads) {
  if (loads.empty()) return;
  std::sort(loads.begin(), loads.end(), [](const frame* a, const frame* b) {
    return a->id.file != b->id.file ? a->id.file < b->id.file : a->id.page < b->id.page;
  });
  // Adjacent pages of one file become one readv (at most 64 pages each).
  struct run {
    std::size_t first, count;
  };
  std::vector<run> runs;
  for (std::size_t i = 0; i < loads.size(); ++i) {
    if (!runs.empty()) {
      run& r = runs.back();
      const frame* prev = loads[r.first + r.count - 1];
      if (r.count < 64 && prev->id.file == loads[i]->id.file && prev->id.page + 1 == loads[i]->id.page) {
        ++r.count;
        continue;
      }
    }
    runs.push_back({i, 1});
  }
  std::vector<io_request> reqs(runs.size());
  std::vector<iovec> iovs(loads.size());
  std::vector<int> fds(runs.size());
  try {
    for (std::size_t k = 0; k < runs.size(); ++k) fds[k] = fd_of(loads[runs[k].first]->id.file);
  } catch (const std::exception& e) {
    for (frame* f : loads) {
      finish_read(f, -EBADF, std::string("pagecache: ") + e.what());
    }
    throw;
  }
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const run& r = runs[k];
    io_request& q = reqs[k];
    const std::uint64_t off = loads[r.first]->id.page * page_size;
    if (r.count == 1) {
      q.prep_read(fds[k], loads[r.first]->data, page_size, off);
    } else {
      for (std::size_t j = 0; j < r.count; ++j) iovs[r.first + j] = {loads[r.first + j]->data, page_size};
      q.prep_readv(fds[k], &iovs[r.first], static_cast<std::uint32_t>(r.count), off);
    }
  }
  try {
    run_on_lane(reqs);
  } catch (const std::exception& e) {
    for (frame* f : loads) {
      finish_read(f, -EIO, "pagecache: reading " + describe_page(f->id) + ": the backend failed: " + e.what());
    }
    throw;
  }
  c_.reads.fetch_add(reqs.size(), std::memory_order_relaxed);
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const run& r = runs[k];
    const std::int64_t res = reqs[k].result;
    if (res < 0) {
      c_.read_errors.fetch_add(r.count, std::memory_order_relaxed);
      const std::string why = std::strerror(static_cast<int>(-res));
      for (std::size_t j = 0; j < r.count; ++j) {
        frame* f = loads[r.first + j];
        finish_read(f, res,
                    "pagecache: reading " + describe_page(f->id) + ": " + why +
                        " (the page was not cached; the caller may retry)");
      }
      continue;
    }
    c_.pages_read.fetch_add(r.count, std::memory_order_relaxed);
    for (std::size_t j = 0; j < r.count; ++j) {
      frame* f = loads[r.first + j];
      const std::int64_t start = static_cast<std::int64_t>(j * page_size);
      if (res < start + static_cast<std::int64_t>(page_size)) {
        const std::size_t have = res > start ? static_cast<std::size_t>(res - start) : 0;
        std::memset(f->data + have, 0, page_size - have);  // past the end of the file: zeros
      }
      finish_checked_read(f);
    }
  }
}

namespace {

void check_page_number(const page_id& id) {
  if (id.page > max_page) {
    throw std::out_of_range("pagecache: page " + std::to_string(id.page) + " of file #" + std::to_string(id.file) +
                            " is past the largest page number, " + std::to_string(max_page) +
                            " (its byte offset would not fit in a file offset)");
  }
}

}  // namespace

page_ref buffer_pool::try_fetch(page_id id) {
  if (id.page > max_page) return {};
  std::uint32_t stripe = 0;
  if (frame* f = try_hit(id, &stripe)) return page_ref(this, f, stripe);
  frame* f = nullptr;
  {
    shard& s = shard_for(id);
    std::lock_guard lock(s.mu);
    f = s.find_locked(id);
    if (f == nullptr || f->state.load(std::memory_order_acquire) != detail::st_ready) return {};
    f->pins.fetch_add(1, std::memory_order_seq_cst);
  }
  note_access(f);
  count_hit();
  return page_ref(this, f);
}

page_ref buffer_pool::fetch_new(page_id id) {
  check_page_number(id);
  std::uint32_t stripe = 0;
  if (frame* f = try_hit(id, &stripe)) return page_ref(this, f, stripe);
  bool created = false, ready = false;
  frame* f = lookup_or_insert(id, &created, &ready, /*count_miss=*/false);
  if (ready) return page_ref(this, f);
  if (!created) {
    wait_ready(f);  // someone else is reading it: as fetch() would
    return page_ref(this, f);
  }
  // Nobody reads it: the caller overwrites it whole.
  std::memset(f->data, 0, page_size);
  f->lsn.store(0, std::memory_order_relaxed);
  c_.new_pages.fetch_add(1, std::memory_order_relaxed);
  finish_read(f, static_cast<std::int64_t>(page_size), {});
  return page_ref(this, f);
}

page_ref buffer_pool::fetch(page_id id) {
  check_page_number(id);
  std::uint32_t stripe = 0;
  if (frame* f = try_hit(id, &stripe)) return page_ref(this, f, stripe);
  bool created = false, ready = false;
  frame* f = lookup_or_insert(id, &created, &ready);
  if (ready) return page_ref(this, f);
  page_ref ref(this, f);
  if (!created) {
    ref.f_ = nullptr;  // wait_ready drops the pin itself on failure
    wait_ready(f);
    return page_ref(this, f);
  }
  // This fetch reads it. A miss that continues a sequential run reads the
  // next pages too, in the same readv.
  std::vector<frame*> loads{f};
  std::vector<page_ref> ahead;
  loads.reserve(1 + opts_.readahead_pages);  // nothing below throws once frames are published
  ahead.reserve(opts_.readahead_pages);
  file_entry* fe;
  try {
    fe = const_cast<file_entry*>(&file(id.file));
  } catch (...) {
    ref.f_ = nullptr;
    finish_read(f, -EBADF, "pagecache: unknown file");
    unpin(f);
    throw;
  }
  std::uint64_t next = id.page + 1;
  if (opts_.readahead_pages > 0 && fe->next_sequential.load(std::memory_order_relaxed) == id.page) {
    const std::uint64_t end = std::min<std::uint64_t>(fe->size_pages.load(std::memory_order_relaxed),
                                                     id.page + 1 + opts_.readahead_pages);
    for (std::uint64_t p = id.page + 1; p < end; ++p) {
      const page_id pid{id.file, p};
      {
        shard& s = shard_for(pid);
        std::lock_guard lock(s.mu);
        if (s.find_locked(pid) != nullptr) break;  // cached: the run ends
      }
      frame* g = try_allocate_frame(false);  // read-ahead never waits for a frame
      if (g == nullptr) break;
      if (!publish_loading(g, pid)) {
        release_frame(g);
        break;
      }
      loads.push_back(g);
      ahead.push_back(page_ref(this, g));
      next = p + 1;
    }
    c_.readahead.fetch_add(ahead.size(), std::memory_order_relaxed);
  }
  fe->next_sequential.store(next, std::memory_order_relaxed);
  read_frames(loads);
  if (f->state.load(std::memory_order_acquire) != detail::st_ready) {
    ref.f_ = nullptr;
    std::string what;
    const std::error_code ec = take_failure(f, &what);
    throw_failure(ec, what);
  }
  return ref;
}

std::vector<page_ref> buffer_pool::fetch_batch(std::span<const page_id> ids) {
  for (const page_id& id : ids) check_page_number(id);  // before anything is published
  std::vector<page_ref> out(ids.size());
  std::vector<frame*> loads;
  std::vector<std::size_t> waiting;
  try {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      std::uint32_t stripe = 0;
      if (frame* f = try_hit(ids[i], &stripe)) {
        out[i] = page_ref(this, f, stripe);
        continue;
      }
      bool created = false, ready = false;
      frame* f = lookup_or_insert(ids[i], &created, &ready);
      out[i] = page_ref(this, f);
      if (ready) continue;
      if (created) {
        loads.push_back(f);
      } else {
        waiting.push_back(i);
      }
    }
  } catch (const std::exception& e) {
    // No frame for a later page (pool_exhausted): the pages this batch
    // already published as loading must not stay so, or their waiters
    // would sleep forever. They fail; a later fetch reads them afresh.
    for (frame* f : loads) {
      finish_read(f, -EAGAIN,
                  "pagecache: the batch fetch reading " + describe_page(f->id) + " gave up: " + e.what());
    }
    throw;
  }
  std::exception_ptr first;
  try {
    read_frames(loads);
  } catch (...) {
    first = std::current_exception();
  }
  for (frame* f : loads) {
    if (f->state.load(std::memory_order_acquire) == detail::st_ready) continue;
    waiting.push_back(static_cast<std::size_t>(std::find_if(out.begin(), out.end(), [&](const page_ref& r) {
                                                  return r.f_ == f;
                                                }) - out.begin()));
  }
  for (std::size_t i : waiting) {
    frame* f = out[i].f_;
    out[i].f_ = nullptr;
    try {
      wait_ready(f);
      out[i].f_ = f;
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
  return out;
}

buffer_pool::begin_result buffer_pool::begin_fetch(page_id id) {
  check_page_number(id);
  std::uint32_t stripe = 0;
  if (frame* f = try_hit(id, &stripe)) return {begin_result::kind::ready, f, stripe};
  bool created = false, ready = false;
  frame* f = lookup_or_insert(id, &created, &ready);
  if (ready) return {begin_result::kind::ready, f};
  if (!created) return {begin_result::kind::loading, f};
  c_.reads.fetch_add(1, std::memory_order_relaxed);
  return {begin_result::kind::must_read, f};
}

pool_stats buffer_pool::stats() const {
  pool_stats s;
  for (const auto& sh : shards_) {
    std::lock_guard lock(sh->mu);
    s.misses += sh->misses;
    s.waits += sh->waits;
  }
  for (std::size_t i = 0; i < hit_stripes; ++i) s.hits += hits_[i].n.load(std::memory_order_relaxed);
  s.reads = c_.reads.load(std::memory_order_relaxed);
  s.pages_read = c_.pages_read.load(std::memory_order_relaxed);
  s.readahead_pages = c_.readahead.load(std::memory_order_relaxed);
  s.writes = c_.writes.load(std::memory_order_relaxed);
  s.pages_written = c_.pages_written.load(std::memory_order_relaxed);
  s.evictions = c_.evictions.load(std::memory_order_relaxed);
  s.new_pages = c_.new_pages.load(std::memory_order_relaxed);
  s.read_errors = c_.read_errors.load(std::memory_order_relaxed);
  s.write_errors = c_.write_errors.load(std::memory_order_relaxed);
  s.syncs = c_.syncs.load(std::memory_order_relaxed);
  s.doublewrite_writes = c_.dw_writes.load(std::memory_order_relaxed);
  s.doublewrite_pages = c_.dw_pages.load(std::memory_order_relaxed);
  s.corrupt_pages = c_.corrupt_pages.load(std::memory_order_relaxed);
  s.pages_repaired = c_.pages_repaired.load(std::memory_order_relaxed);
  std::lock_guard lock(dirty_mu_);
  s.dirty = dirty_count_;
  for (const file_entry* fe : file_entries()) s.failed_files += fe->failed ? 1 : 0;
  return s;
}

}  // namespace pageio::pagecache
