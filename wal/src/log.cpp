// The log's public face and its appenders: records are numbered and packed
// into the ring of pages under mu; the flusher (flusher.cpp) takes them from
// there. Opening and recovery are in log_open.cpp.
#include "log_impl.hpp"
#include "archiver.hpp"

#include <pageio/engine/detail/futex.hpp>
#include <pageio/wal/crc32c.hpp>
#include <pageio/wal/format.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace pageio::wal {

namespace fmt = format;

namespace {

constexpr std::size_t frag_room = fmt::payload_size - fmt::fragment_header_size;  // record bytes a page holds

}  // namespace

corruption_error::corruption_error(damage d)
    : pageio::error(errc::corruption, "write-ahead log damaged in " + d.file.string() + " (segment " + std::to_string(d.segment) +
                         ", page " + std::to_string(d.page) + ", byte offset " + std::to_string(d.offset) +
                         "): " + d.what +
                         ". Nothing was cut; inspect it with `pageio-wal verify` and restore the segment from a "
                         "backup or replica"),
      where_(std::move(d)) {}

log::log(options opts) : impl_(std::make_unique<impl>(std::move(opts))) {
  impl_->open(recovered_);
  backend_name_ = impl_->backend->name();
  // Ready for the first commit when it opens: the segment written next is
  // made now, and, when that one had to be made (a new log, or one that
  // ends on a segment's end), the spare after it too. Made later, a new
  // log's first commit waited for the first one's zeros and the commits of
  // the next seconds shared the disk with the spare's (docs/wal-format.md,
  // "Files"). A log reopened into a segment it has leaves a missing spare
  // to the preparer, which starts on it with the first group commit while
  // the segment's room is filled: opening (a recovery, a replay into a
  // backup) does not wait 0.13 s for 64 MiB of zeros and their sync. As
  // the preparer's, a failure here fails the log only when it reaches that
  // segment (and is never retried): a log on a full disk still opens, and
  // a store on it can be read.
  const std::uint64_t first = impl_->ring[0].segment;
  const bool had_first = impl_->segments->is_ready(first);
  impl_->segments->prepare(first);
  if (!had_first) impl_->segments->prepare(first + 1);
  impl_->segments->start_preparer();
  // The flusher sleeps on both the backend's completions and appenders'
  // work while a batch is in flight (wait_for_io_or_work). A backend with
  // no completion eventfd (the fault and crash wrappers) is driven by
  // reap() alone.
  impl_->work_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl_->work_fd < 0) throw std::system_error(errno, std::system_category(), "wal: eventfd");
  try {
    impl_->io_fd = impl_->backend->notify_fd();
  } catch (const std::logic_error&) {
    impl_->io_fd = -1;
  }
  impl_->flusher = std::thread([i = impl_.get()] { i->flusher_main(); });
  // The ring's pages are mapped in by a thread of its own, now, not by the
  // appenders on its first lap: a first touch costs ~2 us per 4 KiB on a
  // virtual machine, 0.14 s for a 64 MiB ring, which was 12% of a replay's
  // applying thread (docs/wal-format.md, "Group commits"). Appends may run
  // while it does: it writes nothing. A smaller ring was touched when made.
  if (impl_->arena.size() >= aligned_buffer::mapped_from) {
    impl_->populator = std::thread([i = impl_.get()] { (void)i->arena.populate(); });
  }
}

log::~log() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stop = true;
    impl_->wake_flusher(impl_->take_flusher_wakeup_locked());
  }
  impl_->work_cv.notify_all();
  if (impl_->flusher.joinable()) impl_->flusher.join();
  if (impl_->populator.joinable()) impl_->populator.join();
  // Every waiter has been answered; let those still reading the answer go.
  while (impl_->in_flush.load(std::memory_order_acquire) > 0) std::this_thread::yield();
  impl_->segments->release_all(*impl_->backend);
}

log::impl::~impl() {
  if (work_fd >= 0) ::close(work_fd);
}

std::byte* log::impl::page_data(std::uint64_t n) noexcept { return arena.data() + (n % ring_pages) * fmt::page_size; }

void log::impl::open_next_page_locked() {
  const ring_page cur = ring[head % ring_pages];
  if (cur.ends_record) {
    last_cut = head;
    if (cur.last_lsn != 0) cut_lsn = cur.last_lsn;
  }
  ++head;
  ring_page& next = ring[head % ring_pages];
  next = ring_page{};
  if (cur.segment_end || cur.index + 1 >= seg_pages) {
    next.segment = cur.segment + 1;
    next.index = 0;
  } else {
    next.segment = cur.segment;
    next.index = cur.index + 1;
  }
  // Its bytes past `used` are zeroed when the flusher seals it, outside mu.
}

void log::impl::close_segment_locked() {
  ring[head % ring_pages].segment_end = true;
  open_next_page_locked();
}

log::impl::wait_group& log::impl::group_for_locked(lsn_t lsn) {
  std::uint64_t seq = batches_acked;
  while (seq < batches_formed && groups[seq % wait_groups].lsn < lsn) ++seq;
  return groups[seq % wait_groups];
}

void log::impl::release_group_locked(std::uint64_t seq) {
  wait_group& g = groups[seq % wait_groups];
  g.lsn = 0;
  if (g.sleepers == 0) return;
  g.sleepers = 0;
  g.gen.fetch_add(1, std::memory_order_release);
  groups_to_wake |= 1u << (seq % wait_groups);
}

void log::impl::release_all_locked() noexcept {
  // Every word, with sleepers counted or not: a failure inside
  // acknowledge_locked (bad_alloc) can come after a group's word moved on
  // and its count was cleared but before tell_acknowledged woke it.
  for (wait_group& g : groups) {
    g.sleepers = 0;
    g.gen.fetch_add(1, std::memory_order_release);
    pageio::detail::futex_wake(&g.gen, INT_MAX);
  }
}

void log::impl::fail_locked(std::error_code ec, const std::string& what) {
  if (!failure) {
    failure = ec;
    failure_what = what;
  }
  // Nothing more becomes durable: every waiter hears of it now.
  release_all_locked();
  space_cv.notify_all();
  work_cv.notify_all();
  wake_flusher(take_flusher_wakeup_locked());
}

log::impl::flusher_wakeup log::impl::take_flusher_wakeup_locked() noexcept {
  if (flusher_idle) return flusher_wakeup::cv;
  if (flusher_polling) {
    flusher_polling = false;  // one write is enough
    return flusher_wakeup::fd;
  }
  return flusher_wakeup::none;
}

void log::impl::wake_flusher(flusher_wakeup how) noexcept {
  if (how == flusher_wakeup::cv) work_cv.notify_one();
  if (how == flusher_wakeup::fd) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto rc = ::write(work_fd, &one, sizeof one);
  }
}

void log::impl::wake_flusher_if_idle_locked(std::unique_lock<std::mutex>& lock) {
  const flusher_wakeup how = take_flusher_wakeup_locked();
  if (how == flusher_wakeup::none) return;
  lock.unlock();
  wake_flusher(how);
  lock.lock();
}

std::size_t log::max_record_bytes() const noexcept {
  // The inverse of append's check below: pages_needed <= seg_pages and
  // pages_needed + 1 <= ring_pages, pages_needed = ceil(size / frag_room) + 1.
  const std::size_t pages = std::min<std::size_t>(impl_->seg_pages, impl_->ring_pages - 1);
  const std::size_t bytes = pages < 2 ? 0 : (pages - 1) * frag_room;
  return std::min<std::size_t>(bytes, fmt::max_record_size);
}

lsn_t log::append(std::span<const std::byte> record) {
  impl& m = *impl_;
  const std::size_t size = record.size();
  if (size > fmt::max_record_size) {
    throw std::invalid_argument("wal: a record of " + std::to_string(size) +
                                " bytes is larger than the log's format holds (4 GiB - 1)");
  }
  // Pages the record needs at most (one more if it cannot start in the open page).
  const std::size_t pages_needed = (size + frag_room - 1) / frag_room + 1;
  if (pages_needed > m.seg_pages || pages_needed + 1 > m.ring_pages) {
    throw std::invalid_argument("wal: a record of " + std::to_string(size) + " bytes does not fit in a segment of " +
                                std::to_string(m.seg_pages) + " pages or a buffer of " + std::to_string(m.ring_pages) +
                                " pages; raise segment_bytes or buffer_bytes");
  }
  const std::uint32_t crc = crc32c(record.data(), size);

  std::unique_lock lock(m.mu);
  // Room for the whole record first: a record is never half in the buffer
  // when the flusher takes a batch.
  auto room = [&] { return m.failure || m.stop || (m.head - m.tail) + pages_needed + 1 <= m.ring_pages; };
  if (!room()) {
    ++m.space_waiters;  // the flusher then writes the open page too
    m.wake_flusher_if_idle_locked(lock);
    m.space_cv.wait(lock, room);
    --m.space_waiters;
  }
  if (m.failure) throw log_error(errc::log_failed, "wal: the log failed earlier: " + m.failure_what, m.failure);
  if (m.stop) throw log_error(errc::closed, "wal: the log is closing");

  const std::uint64_t cut_before = m.last_cut;
  // A group commit ends at a page that ends a record. Records packed end to
  // end rarely end exactly at a page's end, so once a batch's worth of pages
  // has gone by without such a page, this record starts on a fresh page: the
  // flusher can cut there, and no batch grows past the bound by more than
  // one record. (Once per bound, not once per record: that packs.)
  {
    const impl::ring_page& open = m.ring[m.head % m.ring_pages];
    const std::uint64_t run_start =
        m.last_cut != UINT64_MAX && m.last_cut + 1 > m.flushed ? m.last_cut + 1 : m.flushed;
    if (open.used > 0 && open.ends_record && m.head + 1 - run_start >= m.max_batch_pages) m.open_next_page_locked();
  }

  // A record never spans two segments: if it cannot end in this one, the
  // open page closes the segment.
  {
    const impl::ring_page& open = m.ring[m.head % m.ring_pages];
    std::size_t fits = 0;
    if (fmt::payload_size - open.used > fmt::fragment_header_size) fits += fmt::payload_size - open.used - fmt::fragment_header_size;
    fits += static_cast<std::size_t>(m.seg_pages - open.index - 1) * frag_room;
    if (fits < size || (size == 0 && fmt::payload_size - open.used < fmt::fragment_header_size)) {
      m.close_segment_locked();
    }
  }

  const lsn_t lsn = m.next_lsn++;
  std::size_t done = 0;
  bool first = true;
  for (;;) {
    impl::ring_page& pg = m.ring[m.head % m.ring_pages];
    if (fmt::payload_size - pg.used < fmt::fragment_header_size + (size - done > 0 ? 1 : 0)) {
      m.open_next_page_locked();
      continue;
    }
    if (pg.used == 0) m.open_since = std::chrono::steady_clock::now();
    const std::size_t n = std::min(fmt::payload_size - pg.used - fmt::fragment_header_size, size - done);
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
    std::byte* at = m.page_data(m.head) + fmt::page_header_size + pg.used;
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
    m.open_next_page_locked();
  }
  // A new place to end a group commit among the closed pages is work for an
  // idle flusher; pages closed in the middle of a record are not (they wait
  // for its end), and a record still in the open page waits for someone to
  // ask for it (flush) or for lazy_flush_ms: the flusher never sleeps longer
  // than that (flusher.cpp), so no wake-up is spent on it here.
  if (m.last_cut != cut_before && m.last_cut != UINT64_MAX && m.last_cut >= m.flushed) {
    m.wake_flusher_if_idle_locked(lock);
  }
  return lsn;
}

lsn_t log::commit(std::span<const std::byte> record) {
  const lsn_t l = append(record);
  flush(l);
  return l;
}

void log::flush(lsn_t lsn) {
  impl& m = *impl_;
  m.in_flush.fetch_add(1, std::memory_order_acq_rel);
  struct leave {
    impl& m;
    ~leave() { m.in_flush.fetch_sub(1, std::memory_order_acq_rel); }
  } guard{m};
  std::unique_lock lock(m.mu);
  if (lsn >= m.next_lsn) {
    throw std::invalid_argument("wal: flush(" + std::to_string(lsn) + "): the last record appended is LSN " +
                                std::to_string(m.next_lsn - 1));
  }
  while (m.durable_lsn < lsn && !m.failure && !m.flusher_done) {
    // Also while closing: the flusher writes everything appended before it stops.
    impl::wait_group& g = m.group_for_locked(lsn);
    const std::uint32_t seen = g.gen.load(std::memory_order_relaxed);
    ++g.sleepers;
    ++m.stats.committer_waits;
    m.max_waited_lsn = std::max(m.max_waited_lsn, lsn);
    const impl::flusher_wakeup how = m.take_flusher_wakeup_locked();
    lock.unlock();
    m.wake_flusher(how);
    while (g.gen.load(std::memory_order_acquire) == seen) pageio::detail::futex_wait(g.gen, seen);
    // Released: durable, or the group's batch did not reach this far (then
    // the next one is waited for), or failed or closed (read under mu).
    if (m.durable_seen.load(std::memory_order_acquire) >= lsn) return;
    lock.lock();
  }
  if (m.durable_lsn >= lsn) return;
  if (!m.failure) {
    throw log_error(errc::closed,
                    "wal: LSN " + std::to_string(lsn) + " is not durable: the log was closed before it was written");
  }
  throw log_error(errc::log_failed, "wal: LSN " + std::to_string(lsn) + " is not durable: " + m.failure_what,
                  m.failure);
}

std::size_t log::truncate_before(lsn_t lsn) {
  impl& m = *impl_;
  std::lock_guard one_at_a_time(m.truncate_mu);
  std::vector<std::uint64_t> victims;
  std::vector<archived_segment> copies;  // with archiving: what each victim's copy holds
  {
    std::lock_guard lock(m.mu);
    if (m.failure) throw log_error(errc::log_failed, "wal: the log failed earlier: " + m.failure_what, m.failure);
    if (m.segment_last_lsn.empty()) return 0;
    // Never the segment holding the oldest page not yet durable, nor later
    // ones; never the one holding the newest durable record, which tells a
    // reopened log where its numbering goes on.
    const std::uint64_t writing = m.ring[m.tail % m.ring_pages].segment;
    const std::uint64_t newest = m.segment_last_lsn.rbegin()->first;
    lsn_t first = m.lowest_first_lsn;
    for (const auto& [seq, last] : m.segment_last_lsn) {
      if (seq >= writing || seq >= newest || last >= lsn) break;  // in order: the first one kept ends the run
      victims.push_back(seq);
      copies.push_back({seq, first, last});
      first = last + 1;
    }
  }
  if (victims.empty()) return 0;
  if (!m.opts.archive_dir.empty()) {
    // Archived in order, each durable before any is recycled; the first
    // that fails keeps itself and every later one in the log.
    std::size_t archived = 0;
    for (const archived_segment& a : copies) {
      try {
        const std::uint64_t bytes = detail::archive_segment(*m.fs, m.segments->path_of(a.seq), m.opts.archive_dir, a);
        std::lock_guard lock(m.mu);
        ++m.stats.archived_segments;
        m.stats.archived_bytes += bytes;
        m.stats.archived_lsn = a.last_lsn;
        m.stats.archive_error.clear();
        ++archived;
      } catch (const std::system_error& e) {
        std::lock_guard lock(m.mu);
        ++m.stats.archive_failures;
        m.stats.archive_error = std::string(e.what()) + " (the log keeps this segment and the ones after it, and tries "
                                                        "again at the next checkpoint)";
        break;
      }
    }
    victims.resize(archived);
    if (victims.empty()) return 0;
  }
  std::size_t done = 0;
  try {
    done = m.segments->recycle(victims);
  } catch (const std::system_error& e) {
    // Which names are durable is now unknown: the log stops here, and
    // reopening reads what the directory holds.
    std::lock_guard lock(m.mu);
    m.fail_locked(e.code(), e.what());
    throw log_error(errc::log_failed, e.what(), e.code());
  }
  std::lock_guard lock(m.mu);
  for (std::size_t i = 0; i < done; ++i) {
    m.lowest_first_lsn = m.segment_last_lsn[victims[i]] + 1;
    m.segment_last_lsn.erase(victims[i]);
  }
  return done;
}

void log::when_durable(lsn_t lsn, std::function<void(std::error_code)> done) {
  impl& m = *impl_;
  std::unique_lock lock(m.mu);
  if (lsn >= m.next_lsn) {
    throw std::invalid_argument("wal: when_durable(" + std::to_string(lsn) + "): the last record appended is LSN " +
                                std::to_string(m.next_lsn - 1));
  }
  if (m.durable_lsn >= lsn || m.failure) {
    const std::error_code ec = m.durable_lsn >= lsn ? std::error_code() : m.failure;
    lock.unlock();
    done(ec);
    return;
  }
  m.durable_callbacks.emplace(lsn, std::move(done));
  m.wake_flusher_if_idle_locked(lock);
}

lsn_t log::durable_lsn() const {
  std::lock_guard lock(impl_->mu);
  return impl_->durable_lsn;
}

std::vector<std::uint64_t> log::live_segments() const {
  std::lock_guard lock(impl_->mu);
  std::vector<std::uint64_t> out;
  out.reserve(impl_->segment_last_lsn.size());
  for (const auto& [seq, last] : impl_->segment_last_lsn) out.push_back(seq);
  return out;
}

const std::filesystem::path& log::dir() const noexcept { return impl_->opts.dir; }

lsn_t log::last_lsn() const {
  std::lock_guard lock(impl_->mu);
  return impl_->next_lsn - 1;
}

std::error_code log::failure() const {
  std::lock_guard lock(impl_->mu);
  return impl_->failure;
}

log::statistics log::stats() const {
  statistics s;
  {
    std::lock_guard lock(impl_->mu);
    s = impl_->stats;
  }
  s.segments_created = impl_->segments->segments_created();
  return s;
}

}  // namespace pageio::wal
