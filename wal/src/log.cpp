#include <pageio/wal/log.hpp>

#include <pageio/engine/detail/futex.hpp>
#include <pageio/engine/file.hpp>
#include <pageio/wal/crc32c.hpp>
#include <pageio/wal/format.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>

namespace pageio::wal {

namespace fmt = format;

namespace {

// A flush waiter sleeps while its word is 0 (see wake_waiters).
void futex_wait_while_zero(std::atomic<std::uint32_t>& word) {
  while (word.load(std::memory_order_acquire) == 0) pageio::detail::futex_wait(word, 0);
}

constexpr std::size_t frag_room = fmt::payload_size - fmt::fragment_header_size;  // record bytes a page holds

// Zeros from `from` to `to` (both multiples of 4 KiB when `fd` is O_DIRECT).
void write_zeros(int fd, std::uint64_t from, std::uint64_t to, const std::filesystem::path& path) {
  constexpr std::size_t chunk = 1 << 20;
  std::unique_ptr<char, void (*)(void*)> zeros(static_cast<char*>(std::aligned_alloc(fmt::page_size, chunk)), &std::free);
  if (!zeros) throw std::bad_alloc();
  std::memset(zeros.get(), 0, chunk);
  while (from < to) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, to - from));
    const ssize_t w = ::pwrite(fd, zeros.get(), n, static_cast<off_t>(from));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw std::system_error(errno, std::system_category(), "preallocating " + path.string());
    from += static_cast<std::uint64_t>(w);
  }
}

void fsync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::system_category(), "opening directory " + dir.string());
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (rc != 0) throw std::system_error(e, std::system_category(), "fsync of directory " + dir.string());
}

}  // namespace

corruption_error::corruption_error(damage d)
    : std::runtime_error("write-ahead log damaged in " + d.file.string() + " (segment " + std::to_string(d.segment) +
                         ", page " + std::to_string(d.page) + ", byte offset " + std::to_string(d.offset) +
                         "): " + d.what +
                         ". Nothing was cut; inspect it with `pageio-wal verify` and restore the segment from a "
                         "backup or replica"),
      where_(std::move(d)) {}

log::log(options opts) : opts_(std::move(opts)) {
  if (opts_.segment_bytes % fmt::page_size != 0 || opts_.segment_bytes < 2 * fmt::page_size) {
    throw std::invalid_argument("wal: segment_bytes must be a multiple of 4096 and at least 8192, not " +
                                std::to_string(opts_.segment_bytes));
  }
  std::error_code ec;
  std::filesystem::create_directories(opts_.dir, ec);
  if (ec) throw std::system_error(ec, "wal: creating log directory " + opts_.dir.string());

  recovered_ = scan_log(opts_.dir);
  if (recovered_.corruption) throw corruption_error(*recovered_.corruption);
  if (recovered_.dropped) {
    // The group commit that was in flight behind the torn one is complete on
    // disk but was never acknowledged: erase it before writing, or the new
    // log would run into it.
    const auto& d = *recovered_.dropped;
    const auto path = opts_.dir / segment_file_name(d.segment);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::system_category(), "wal: opening " + path.string());
    try {
      write_zeros(fd, std::uint64_t{d.page} * fmt::page_size, std::uint64_t{d.page + d.pages} * fmt::page_size, path);
      if (::fdatasync(fd) != 0) throw std::system_error(errno, std::system_category(), "wal: fdatasync " + path.string());
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
  }
  seg_pages_ = recovered_.segment_pages != 0 ? recovered_.segment_pages
                                              : static_cast<std::uint32_t>(opts_.segment_bytes / fmt::page_size);
  next_lsn_ = recovered_.last_lsn + 1;
  segment_last_lsn_ = recovered_.segment_last_lsn;
  durable_lsn_ = recovered_.last_lsn;

  ring_pages_ = std::max<std::size_t>(opts_.buffer_bytes / fmt::page_size, 4);
  max_batch_pages_ = std::clamp<std::size_t>(opts_.max_batch_bytes / fmt::page_size, 1, ring_pages_ - 1);
  void* mem = std::aligned_alloc(fmt::page_size, ring_pages_ * fmt::page_size);
  if (mem == nullptr) throw std::bad_alloc();
  std::memset(mem, 0, ring_pages_ * fmt::page_size);
  arena_ = std::unique_ptr<std::byte, void (*)(void*)>(static_cast<std::byte*>(mem), &std::free);
  ring_.resize(ring_pages_);

  ring_page& first = ring_[0];
  first.segment = recovered_.segments.empty() ? 1 : recovered_.end_segment;
  first.index = recovered_.segments.empty() ? 0 : recovered_.end_page;
  if (first.index >= seg_pages_) {
    ++first.segment;
    first.index = 0;
  }

  backend_ = opts_.make_backend ? opts_.make_backend() : make_backend(opts_.backend);
  backend_name_ = backend_->name();
  flusher_ = std::thread([this] { flusher_main(); });
  preparer_ = std::thread([this] { preparer_main(); });
}

log::~log() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  {
    std::lock_guard lock(prep_mu_);
    prep_stop_ = true;
  }
  prep_cv_.notify_all();
  if (preparer_.joinable()) preparer_.join();
  release_segment_fds(UINT64_MAX);
}

std::byte* log::page_data(std::size_t n) noexcept { return arena_.get() + (n % ring_pages_) * fmt::page_size; }

void log::open_next_page_locked() {
  const ring_page cur = ring_[head_ % ring_pages_];
  ++head_;
  ring_page& next = ring_[head_ % ring_pages_];
  next = ring_page{};
  if (cur.segment_end || cur.index + 1 >= seg_pages_) {
    next.segment = cur.segment + 1;
    next.index = 0;
  } else {
    next.segment = cur.segment;
    next.index = cur.index + 1;
  }
  // Its bytes past `used` are zeroed when the flusher seals it, outside mu_.
}

void log::close_segment_locked() {
  ring_[head_ % ring_pages_].segment_end = true;
  open_next_page_locked();
}

void log::wake_flush_waiters_locked(std::vector<flush_waiter*>* later) {
  const bool all = failure_ || stop_;
  const auto end = all ? flush_waiters_.end() : flush_waiters_.upper_bound(durable_lsn_);
  std::vector<flush_waiter*> now;
  std::vector<flush_waiter*>& out = later ? *later : now;
  for (auto it = flush_waiters_.begin(); it != end; ++it) out.push_back(it->second);
  flush_waiters_.erase(flush_waiters_.begin(), end);
  if (!later) wake_waiters(now, all ? 2 : 1);
}

void log::wake_waiters(std::vector<flush_waiter*>& woken, std::uint32_t state) {
  for (flush_waiter* w : woken) {
    w->state.store(state, std::memory_order_release);
    pageio::detail::futex_wake(&w->state, 1);  // w may be gone from here on
  }
  woken.clear();
}

void log::fail_locked(std::error_code ec, const std::string& what) {
  if (!failure_) {
    failure_ = ec;
    failure_what_ = what;
  }
  wake_flush_waiters_locked();
  space_cv_.notify_all();
  work_cv_.notify_all();
}

lsn_t log::append(std::span<const std::byte> record) {
  const std::size_t size = record.size();
  // Pages the record needs at most (one more if it cannot start in the open page).
  const std::size_t pages_needed = (size + frag_room - 1) / frag_room + 1;
  if (pages_needed > seg_pages_ || pages_needed + 1 > ring_pages_) {
    throw std::invalid_argument("wal: a record of " + std::to_string(size) + " bytes does not fit in a segment of " +
                                std::to_string(seg_pages_) + " pages or a buffer of " + std::to_string(ring_pages_) +
                                " pages; raise segment_bytes or buffer_bytes");
  }
  const std::uint32_t crc = crc32c(record.data(), size);

  std::unique_lock lock(mu_);
  // Room for the whole record first: a record is never half in the buffer
  // when the flusher takes a batch.
  space_cv_.wait(lock, [&] { return failure_ || stop_ || (head_ - tail_) + pages_needed + 1 <= ring_pages_; });
  if (failure_ || stop_) {
    if (failure_) throw log_error(failure_, "wal: the log failed earlier: " + failure_what_);
    throw log_error(make_error_code(std::errc::operation_canceled), "wal: the log is closing");
  }

  // A group commit ends at a page that ends a record. Records packed end to
  // end rarely end exactly at a page's end, so once the pages waiting for
  // the flusher reach the batch bound, a new record starts on a fresh page:
  // the flusher can then cut there, and no batch grows past the bound by
  // more than one record.
  {
    const ring_page& open = ring_[head_ % ring_pages_];
    if (open.used > 0 && open.ends_record && head_ + 1 - flush_ >= max_batch_pages_) open_next_page_locked();
  }

  // A record never spans two segments: if it cannot end in this one, the
  // open page closes the segment.
  {
    const ring_page& open = ring_[head_ % ring_pages_];
    std::size_t room = 0;
    if (fmt::payload_size - open.used > fmt::fragment_header_size) room += fmt::payload_size - open.used - fmt::fragment_header_size;
    room += static_cast<std::size_t>(seg_pages_ - open.index - 1) * frag_room;
    if (room < size || (size == 0 && fmt::payload_size - open.used < fmt::fragment_header_size)) {
      close_segment_locked();
    }
  }

  const lsn_t lsn = next_lsn_++;
  std::size_t done = 0;
  bool first = true;
  for (;;) {
    ring_page& pg = ring_[head_ % ring_pages_];
    if (fmt::payload_size - pg.used < fmt::fragment_header_size + (size - done > 0 ? 1 : 0)) {
      open_next_page_locked();
      continue;
    }
    const std::size_t room = fmt::payload_size - pg.used - fmt::fragment_header_size;
    const std::size_t n = std::min(room, size - done);
    const bool last = done + n == size;
    fmt::fragment_header h{};
    h.type = static_cast<std::uint8_t>(first && last ? fmt::fragment_type::full
                                       : first       ? fmt::fragment_type::first
                                       : last        ? fmt::fragment_type::last
                                                     : fmt::fragment_type::middle);
    h.length = static_cast<std::uint16_t>(n);
    h.record_size = static_cast<std::uint32_t>(size);
    h.lsn = lsn;
    h.record_crc = crc;
    std::byte* at = page_data(head_) + fmt::page_header_size + pg.used;
    std::memcpy(at, &h, sizeof h);
    if (n > 0) std::memcpy(at + sizeof h, record.data() + done, n);
    pg.used = static_cast<std::uint16_t>(pg.used + sizeof h + n);
    pg.ends_record = last;
    done += n;
    first = false;
    if (last) {
      pg.last_lsn = lsn;
      ++pg.records;
      break;
    }
    open_next_page_locked();
  }
  const bool wake_flusher = flusher_idle_;
  lock.unlock();
  if (wake_flusher) work_cv_.notify_one();
  return lsn;
}

lsn_t log::commit(std::span<const std::byte> record) {
  const lsn_t l = append(record);
  flush(l);
  return l;
}

void log::flush(lsn_t lsn) {
  std::unique_lock lock(mu_);
  if (lsn >= next_lsn_) {
    throw std::invalid_argument("wal: flush(" + std::to_string(lsn) + "): the last record appended is LSN " +
                                std::to_string(next_lsn_ - 1));
  }
  if (durable_lsn_ < lsn && !failure_ && !stop_) {
    flush_waiter me;
    flush_waiters_.emplace(lsn, &me);
    lock.unlock();
    futex_wait_while_zero(me.state);  // only the flusher takes `me` off the list
    if (me.state.load(std::memory_order_acquire) == 1) return;
    lock.lock();
  }
  if (durable_lsn_ >= lsn) return;
  if (!failure_) throw log_error(make_error_code(std::errc::operation_canceled), "wal: LSN " + std::to_string(lsn) + " is not durable: the log is closing");
  throw log_error(failure_, "wal: LSN " + std::to_string(lsn) + " is not durable: " + failure_what_);
}

std::size_t log::truncate_before(lsn_t lsn) {
  std::vector<std::uint64_t> victims;
  {
    std::lock_guard lock(mu_);
    // Never the segment holding the oldest page not yet durable, nor later ones.
    const std::uint64_t writing = ring_[tail_ % ring_pages_].segment;
    for (const auto& [seq, last] : segment_last_lsn_) {
      if (seq >= writing || last >= lsn) break;  // in order: the first one kept ends the run
      victims.push_back(seq);
    }
    for (std::uint64_t seq : victims) segment_last_lsn_.erase(seq);
  }
  if (victims.empty()) return 0;
  std::lock_guard files_lock(files_mu_);
  // The next free number after every segment file in the directory.
  std::uint64_t next = 0;
  for (const auto& e : std::filesystem::directory_iterator(opts_.dir)) {
    if (const auto seq = parse_segment_file_name(e.path().filename().string())) next = std::max(next, *seq + 1);
  }
  for (std::uint64_t seq : victims) {
    const auto from = opts_.dir / segment_file_name(seq);
    const auto to = opts_.dir / segment_file_name(next++);
    if (::rename(from.c_str(), to.c_str()) != 0) {
      throw std::system_error(errno, std::system_category(),
                              "wal: recycling " + from.string() + " as " + to.filename().string());
    }
  }
  fsync_dir(opts_.dir);
  return victims.size();
}

void log::when_durable(lsn_t lsn, std::function<void(std::error_code)> done) {
  std::unique_lock lock(mu_);
  if (lsn >= next_lsn_) {
    throw std::invalid_argument("wal: when_durable(" + std::to_string(lsn) + "): the last record appended is LSN " +
                                std::to_string(next_lsn_ - 1));
  }
  if (durable_lsn_ >= lsn || failure_) {
    const std::error_code ec = durable_lsn_ >= lsn ? std::error_code() : failure_;
    lock.unlock();
    done(ec);
    return;
  }
  durable_callbacks_.emplace(lsn, std::move(done));
}

lsn_t log::durable_lsn() const {
  std::lock_guard lock(mu_);
  return durable_lsn_;
}

lsn_t log::last_lsn() const {
  std::lock_guard lock(mu_);
  return next_lsn_ - 1;
}

std::error_code log::failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

log::statistics log::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void log::ensure_segment_file(std::uint64_t seq) {
  const auto path = opts_.dir / segment_file_name(seq);
  const std::uint64_t want = static_cast<std::uint64_t>(seg_pages_) * fmt::page_size;
  std::lock_guard files_lock(files_mu_);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    // Preallocated by writing zeros, under a temporary name, made durable,
    // then renamed: a segment is never seen half made. Unwritten extents
    // would make every O_DIRECT write journal metadata.
    // O_DIRECT where the file system has it: the zeros should not sit in the
    // page cache, where every later O_DIRECT write would have to evict them.
    const auto tmp = path.string() + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
    if (fd < 0 && errno == EINVAL) fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::system_error(errno, std::system_category(), "wal: creating " + tmp);
    try {
      write_zeros(fd, 0, want, tmp);
      if (::fdatasync(fd) != 0) throw std::system_error(errno, std::system_category(), "wal: fdatasync " + tmp);
    } catch (...) {
      ::close(fd);
      ::unlink(tmp.c_str());
      throw;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      throw std::system_error(errno, std::system_category(), "wal: renaming " + tmp);
    }
    fsync_dir(opts_.dir);
    std::lock_guard lock(mu_);
    ++stats_.segments_created;
  } else if (static_cast<std::uint64_t>(st.st_size) < want) {
    // Cut short (a crash while it was made elsewhere, or damage at the end):
    // extend it with zeros before writing into it.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::system_category(), "wal: opening " + path.string());
    write_zeros(fd, static_cast<std::uint64_t>(st.st_size), want, path);
    const int rc = ::fdatasync(fd);
    ::close(fd);
    if (rc != 0) throw std::system_error(errno, std::system_category(), "wal: fdatasync " + path.string());
  }
}

void log::preparer_main() {
  std::unique_lock lock(prep_mu_);
  for (;;) {
    prep_cv_.wait(lock, [&] { return prep_stop_ || prep_want_ > prep_done_; });
    if (prep_stop_) return;
    const std::uint64_t seq = prep_want_;
    lock.unlock();
    try {
      ensure_segment_file(seq);
    } catch (const std::exception&) {
      // The flusher makes it itself when it gets there, and reports the error then.
    }
    lock.lock();
    prep_done_ = std::max(prep_done_, seq);
  }
}

void log::release_segment_fds(std::uint64_t keep_from) {
  for (auto it = segment_fds_.begin(); it != segment_fds_.end() && it->first < keep_from;) {
    backend_->forget_fd(it->second);
    ::close(it->second);
    it = segment_fds_.erase(it);
  }
}

int log::segment_fd(std::uint64_t seq) {
  if (auto it = segment_fds_.find(seq); it != segment_fds_.end()) return it->second;
  ensure_segment_file(seq);  // usually made ahead by the preparer: then just a stat
  const auto path = opts_.dir / segment_file_name(seq);
  file f = file::open(path, {.direct = true, .writable = true});
  const int fd = ::dup(f.fd());
  if (fd < 0) throw std::system_error(errno, std::system_category(), "wal: dup");
  segment_fds_[seq] = fd;
  {
    // Have the next one ready before the log reaches it.
    std::lock_guard lock(prep_mu_);
    prep_want_ = std::max(prep_want_, seq + 1);
  }
  prep_cv_.notify_one();
  return fd;
}

// One group commit on its way to disk.
struct log::batch {
  log* owner = nullptr;
  std::uint64_t first = 0, cut = 0;  // ring positions
  std::uint64_t seg = 0;
  std::uint32_t first_index = 0, n_pages = 0;
  lsn_t lsn = 0;
  std::uint64_t records = 0;
  int fd = -1;
  io_request write_req, sync_req;
  iovec iov[2]{};
  bool dsync = false;  // an RWF_DSYNC write: durable when written
  bool written = false, durable = false;
  std::error_code ec;
  std::string what;
  std::chrono::steady_clock::time_point started, wrote, synced;
};

void log::batch_io_done(io_request& r) noexcept {
  auto* b = static_cast<batch*>(r.user_data);
  const bool is_write = &r == &b->write_req;
  if (r.result < 0) {
    const int e = static_cast<int>(-r.result);
    b->ec = std::error_code(e, std::system_category());
    b->what = (is_write ? "wal: writing " + std::to_string(b->n_pages) + " page(s) of " + segment_file_name(b->seg) +
                              " at byte offset " + std::to_string(std::uint64_t{b->first_index} * fmt::page_size)
                        : "wal: fdatasync of " + segment_file_name(b->seg)) +
              " (LSN up to " + std::to_string(b->lsn) + "): " + std::strerror(e);
    return;
  }
  if (is_write) {
    b->written = true;
    b->wrote = std::chrono::steady_clock::now();
    if (b->dsync) {
      b->durable = true;
      b->synced = b->wrote;
      return;
    }
    // Made durable by its own flush, sent once the write is done (a flush
    // covers only writes that completed before it).
    b->sync_req.prep_fdatasync(b->fd);
    b->sync_req.on_complete = &log::batch_io_done;
    b->sync_req.user_data = b;
    b->owner->backend_->submit(b->sync_req);
  } else {
    b->durable = true;
    b->synced = std::chrono::steady_clock::now();
  }
}

void log::flusher_main() {
  // Up to two group commits in flight: the next one is written while the
  // previous one's fdatasync runs. They are acknowledged in order.
  constexpr std::size_t max_in_flight = 2;
  std::deque<std::unique_ptr<batch>> in_flight;
  std::vector<flush_waiter*> wake_list;
  std::unique_lock lock(mu_);
  auto pending = [&] {
    const ring_page& h = ring_[head_ % ring_pages_];
    return flush_ < head_ || h.used > 0 || h.segment_end;
  };
  for (;;) {
    // 1. Form the next group commit from everything appended so far: when
    //    nothing is in flight (waiting for work), or when fewer than two are
    //    and the newest can be overtaken. No waiting for more committers:
    //    while one group commit is on its way, the next one gathers.
    std::unique_ptr<batch> next;
    // RWF_DSYNC writes carry their own durability, so the next one may go
    // out at once; a write that waits for its fdatasync goes out once the
    // previous write is done, and overlaps only that flush.
    const bool may_form = in_flight.empty() ||
                          (in_flight.size() < max_in_flight &&
                           (in_flight.back()->dsync || in_flight.back()->written));
    if (in_flight.empty()) {
      flusher_idle_ = true;
      work_cv_.wait(lock, [&] { return stop_ || failure_ || pending(); });
      flusher_idle_ = false;
      if (failure_ || !pending()) break;  // failed, or stopping with nothing left
    }
    if (failure_) break;
    if (may_form && pending()) {
      // The batch: from the first page not taken, up to the last page that
      // ends a record, within the bound and within one segment.
      const std::uint64_t first = flush_;
      const std::uint64_t seg = ring_[first % ring_pages_].segment;
      std::uint64_t cut = UINT64_MAX;
      for (std::uint64_t p = first; p <= head_; ++p) {
        const ring_page& rp = ring_[p % ring_pages_];
        if (rp.segment != seg) break;
        if (p == head_ && rp.used == 0 && !rp.segment_end) break;  // nothing in the open page
        if (p - first >= max_batch_pages_ && cut != UINT64_MAX) break;
        if (rp.ends_record) cut = p;
        if (rp.segment_end) break;
      }
      if (cut != UINT64_MAX && cut == head_) {
        if (head_ + 1 - tail_ >= ring_pages_) {
          cut = head_ > first ? head_ - 1 : UINT64_MAX;  // no spare page to open next: the open page waits
        } else {
          open_next_page_locked();
        }
      }
      if (cut != UINT64_MAX && cut >= first) {
        next = std::make_unique<batch>();
        batch& b = *next;
        b.owner = this;
        b.first = first;
        b.cut = cut;
        b.seg = seg;
        b.first_index = ring_[first % ring_pages_].index;
        b.n_pages = static_cast<std::uint32_t>(cut - first + 1);
        for (std::uint64_t p = first; p <= cut; ++p) {
          const ring_page& rp = ring_[p % ring_pages_];
          if (rp.last_lsn != 0) b.lsn = rp.last_lsn;
          b.records += rp.records;
        }
        flush_ = cut + 1;
        b.started = std::chrono::steady_clock::now();
      }
    }
    if (!next && in_flight.empty()) {
      // Data waits but no group commit can be cut from it: a broken
      // invariant (a record across a segment or a full buffer). Failing
      // loudly beats spinning.
      fail_locked(make_error_code(std::errc::state_not_recoverable),
                  "wal: internal error: appended records cannot form a group commit (first page " +
                      std::to_string(flush_) + ", open page " + std::to_string(head_) + ")");
      break;
    }
    std::vector<ring_page> metas;
    if (next) {
      for (std::uint64_t p = next->first; p <= next->cut; ++p) metas.push_back(ring_[p % ring_pages_]);
    }
    lock.unlock();

    // 2. Seal and send it (no appender touches its pages any more), then
    //    wait for I/O: write completions send their flushes.
    std::error_code ec;
    std::string what;
    try {
      if (next) {
        batch& b = *next;
        const bool follows_unacked = !in_flight.empty();
        for (std::uint32_t i = 0; i < b.n_pages; ++i) {
          const ring_page& rp = metas[i];
          fmt::page_header h{};
          h.magic = fmt::page_magic;
          h.version = fmt::version;
          h.flags = static_cast<std::uint8_t>((rp.segment_end ? fmt::flag_segment_end : 0) |
                                              (follows_unacked ? fmt::flag_follows_unacked : 0));
          h.used = rp.used;
          h.index = rp.index;
          h.segment = rp.segment;
          h.batch_first = b.first_index;
          h.batch_pages = b.n_pages;
          std::byte* pg = page_data(b.first + i);
          std::memcpy(pg, &h, sizeof h);
          std::memset(pg + fmt::page_header_size + rp.used, 0, fmt::payload_size - rp.used);  // no stale bytes
          h.crc = crc32c(pg + fmt::crc_covers_from, fmt::page_size - fmt::crc_covers_from);
          std::memcpy(pg + fmt::crc_offset, &h.crc, sizeof h.crc);
        }
        b.fd = segment_fd(b.seg);
        const std::uint64_t offset = static_cast<std::uint64_t>(b.first_index) * fmt::page_size;
        const std::size_t first_slot = b.first % ring_pages_;
        const std::size_t contiguous = std::min<std::size_t>(b.n_pages, ring_pages_ - first_slot);
        b.iov[0] = {page_data(b.first), contiguous * fmt::page_size};
        b.iov[1] = {page_data(b.first + contiguous), (b.n_pages - contiguous) * fmt::page_size};
        if (contiguous == b.n_pages) {
          b.write_req.prep_write(b.fd, b.iov[0].iov_base, b.iov[0].iov_len, offset);
        } else {
          b.write_req.prep_writev(b.fd, b.iov, 2, offset);
        }
        b.dsync = opts_.mode == durability::dsync_writes ||
                  (opts_.mode == durability::automatic && std::size_t{b.n_pages} * fmt::page_size <= opts_.dsync_max_bytes);
        if (b.dsync) b.write_req.flags = io_flags::dsync;
        b.write_req.on_complete = &log::batch_io_done;
        b.write_req.user_data = &b;
        in_flight.push_back(std::move(next));
        backend_->submit(in_flight.back()->write_req);
      }
      if (!in_flight.empty()) backend_->reap(1);
    } catch (const std::system_error& e) {
      ec = e.code();
      what = e.what();
    } catch (const std::exception& e) {
      ec = make_error_code(std::errc::io_error);
      what = e.what();
    }

    // 3. Acknowledge, in order, what is durable.
    lock.lock();
    for (const auto& b : in_flight) {
      if (!ec && b->ec) {
        ec = b->ec;
        what = b->what;
      }
    }
    if (ec) {
      // Let the kernel finish with everything still in flight before anyone
      // hears of the failure: then nothing of the log's I/O is outstanding.
      lock.unlock();
      try {
        backend_->drain();
      } catch (...) {
      }
      lock.lock();
      fail_locked(ec, what);
      break;
    }
    bool acked = false;
    while (!in_flight.empty() && in_flight.front()->durable) {
      const batch& b = *in_flight.front();
      durable_lsn_ = std::max(durable_lsn_, b.lsn);
      if (b.lsn != 0) segment_last_lsn_[b.seg] = b.lsn;
      tail_ = b.cut + 1;
      ++stats_.batches;
      if (b.dsync) ++stats_.dsync_batches;
      stats_.write_ns += static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(b.wrote - b.started).count());
      stats_.flush_ns += static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(b.synced - b.wrote).count());
      stats_.records += b.records;
      stats_.pages += b.n_pages;
      in_flight.pop_front();
      acked = true;
    }
    if (acked) {
      // Wake the committers with mu_ released (they do not take it again).
      wake_flush_waiters_locked(&wake_list);
      lock.unlock();
      wake_waiters(wake_list, 1);
      lock.lock();
      space_cv_.notify_all();
      if (!durable_callbacks_.empty()) {
        std::vector<std::function<void(std::error_code)>> ready;
        auto end = durable_callbacks_.upper_bound(durable_lsn_);
        for (auto it = durable_callbacks_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
        durable_callbacks_.erase(durable_callbacks_.begin(), end);
        lock.unlock();
        for (auto& f : ready) f({});
        lock.lock();
      }
      // Segments no group commit in flight or to come uses any more.
      const std::uint64_t oldest = in_flight.empty() ? ring_[tail_ % ring_pages_].segment : in_flight.front()->seg;
      lock.unlock();
      release_segment_fds(oldest);
      lock.lock();
    }
  }
  // Failed or stopping. Requests still in the kernel must finish before
  // their batches (and the buffers they point into) go away.
  lock.unlock();
  try {
    backend_->drain();
  } catch (...) {
  }
  lock.lock();
  wake_flush_waiters_locked();
  space_cv_.notify_all();
  std::vector<std::function<void(std::error_code)>> left;
  for (auto& [l, f] : durable_callbacks_) left.push_back(std::move(f));
  durable_callbacks_.clear();
  const std::error_code ec = failure_ ? failure_ : make_error_code(std::errc::operation_canceled);
  lock.unlock();
  for (auto& f : left) f(ec);
}

}  // namespace pageio::wal
