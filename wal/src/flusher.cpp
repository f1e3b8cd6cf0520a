// The flusher: one thread that turns appended pages into group commits and
// acknowledges them. Its phases, each a function: form a batch from the ring
// (form_batch_locked), seal its pages (seal), send it (send), and, once the
// backend reports it durable, acknowledge it in order (acknowledge_locked),
// waking its committers once the next batch is sent (tell_acknowledged).
// Up to two batches are in flight: after an RWF_DSYNC write the next one may
// go out at once; after a write that needs an fdatasync, once that write is
// done, and one flush then covers both (docs/wal-format.md, "Group commits").
#include "log_impl.hpp"

#include <pageio/engine/detail/futex.hpp>
#include <pageio/wal/crc32c.hpp>
#include <pageio/wal/format.hpp>

#include <poll.h>
#include <unistd.h>

#include <bit>
#include <climits>
#include <cstring>
#include <ctime>
#include <new>

namespace pageio::wal {

namespace fmt = format;

namespace {
constexpr std::size_t max_in_flight = 2;
constexpr std::uint64_t none = UINT64_MAX;
// `automatic` durability for small batches (docs/wal-format.md, "A lone
// committer or several"): the load is the records of the batch being formed
// plus those of the batches in flight, averaged over about the last 8
// batches. Small batches are paired under one fdatasync while the average
// is from pair_from up to pair_until, and go back to RWF_DSYNC writes once
// it falls below unpair_below or reaches unpair_from (the gaps keep the
// choice from flapping: a mix of the two measured worse than either).
constexpr double load_weight = 1.0 / 8;
constexpr double pair_from = 2.5, pair_until = 8;
constexpr double unpair_below = 1.75, unpair_from = 10;
}  // namespace

bool log::impl::open_page_wanted_locked() const {
  const ring_page& h = ring[head % ring_pages];
  if (h.used == 0) return false;
  if (stop || space_waiters > 0) return true;
  // Someone waits for a record that no closed page ending a record covers.
  lsn_t need = max_waited_lsn;
  if (!durable_callbacks.empty()) need = std::max(need, durable_callbacks.rbegin()->first);
  if (need > cut_lsn) return true;
  return std::chrono::steady_clock::now() - open_since >= std::chrono::milliseconds(opts.lazy_flush_ms);
}

bool log::impl::work_locked() const {
  if (flushed < head && last_cut != none && last_cut >= flushed) return true;  // closed pages a batch can end in
  return open_page_wanted_locked();
}

std::unique_ptr<log::impl::batch> log::impl::form_batch_locked() {
  // From the first page not taken, up to the last page that ends a record,
  // within the bound and within one segment; the open page only when
  // someone needs it (then it is closed, and its rest padded).
  const std::uint64_t first = flushed;
  const std::uint64_t seg = ring[first % ring_pages].segment;
  const bool with_open = open_page_wanted_locked();
  if (!with_open && head == first) return nullptr;
  const std::uint64_t limit = with_open ? head : head - 1;
  std::uint64_t cut = none;
  for (std::uint64_t p = first; p <= limit; ++p) {
    const ring_page& rp = ring[p % ring_pages];
    if (rp.segment != seg) break;
    if (p == head && rp.used == 0) break;
    if (p - first >= max_batch_pages && cut != none) break;
    if (rp.ends_record) cut = p;
    if (rp.segment_end) break;
  }
  if (cut != none && cut == head) {
    if (head + 1 - tail >= ring_pages) {
      // No spare page to open next: the open page waits.
      cut = last_cut != none && last_cut >= first && last_cut < head ? last_cut : none;
    } else {
      open_next_page_locked();
    }
  }
  if (cut == none) return nullptr;
  auto b = std::make_unique<batch>();
  b->owner = this;
  b->first = first;
  b->cut = cut;
  b->seg = seg;
  b->first_index = ring[first % ring_pages].index;
  b->n_pages = static_cast<std::uint32_t>(cut - first + 1);
  for (std::uint64_t p = first; p <= cut; ++p) {
    const ring_page& rp = ring[p % ring_pages];
    if (rp.last_lsn != 0) b->lsn = rp.last_lsn;
    b->records += rp.records;
  }
  b->dsync = choose_dsync(*b);
  b->seq = batches_formed++;
  groups[b->seq % wait_groups].lsn = b->lsn;
  flushed = cut + 1;
  b->started = std::chrono::steady_clock::now();
  return b;
}

bool log::impl::choose_dsync(const batch& b) {
  if (opts.mode == durability::dsync_writes) return true;
  if (opts.mode == durability::write_then_fdatasync) return false;
  double load = static_cast<double>(b.records);
  for (const auto& x : in_flight) load += static_cast<double>(x->records);
  recent_load += (load - recent_load) * load_weight;
  if (!pairing && recent_load >= pair_from && recent_load < pair_until) pairing = true;
  if (pairing && (recent_load < unpair_below || recent_load >= unpair_from)) pairing = false;
  // A lone committer waits least for one request that writes and flushes;
  // a few committers at once commit more when two batches share a flush
  // (each RWF_DSYNC write is a flush of its own). Large batches always
  // take an fdatasync.
  return std::size_t{b.n_pages} * fmt::page_size <= opts.dsync_max_bytes && !pairing;
}

void log::impl::seal(batch& b, const std::vector<ring_page>& pages, bool follows_unacked, std::uint32_t prev_pages) {
  // No appender touches these pages any more: no lock needed.
  for (std::uint32_t i = 0; i < b.n_pages; ++i) {
    const ring_page& rp = pages[i];
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
    h.writer = writer_id;
    h.prev_pages = follows_unacked ? prev_pages : 0;
    std::byte* pg = page_data(b.first + i);
    std::memcpy(pg, &h, sizeof h);
    std::memset(pg + fmt::page_header_size + rp.used, 0, fmt::payload_size - rp.used);  // no stale bytes
    h.crc = crc32c(pg + fmt::crc_covers_from, fmt::page_size - fmt::crc_covers_from);
    std::memcpy(pg + fmt::crc_offset, &h.crc, sizeof h.crc);
  }
}

void log::impl::send(batch& b) {
  b.fd = segments->writable(b.seg).fd();
  const std::uint64_t offset = static_cast<std::uint64_t>(b.first_index) * fmt::page_size;
  const std::size_t first_slot = b.first % ring_pages;
  const std::size_t contiguous = std::min<std::size_t>(b.n_pages, ring_pages - first_slot);
  b.iov[0] = {page_data(b.first), contiguous * fmt::page_size};
  b.iov[1] = {page_data(b.first + contiguous), (b.n_pages - contiguous) * fmt::page_size};
  if (contiguous == b.n_pages) {
    b.write_req.prep_write(b.fd, b.iov[0].iov_base, b.iov[0].iov_len, offset);
  } else {
    b.write_req.prep_writev(b.fd, b.iov, 2, offset);
  }
  if (b.dsync) b.write_req.flags = io_flags::dsync;
  b.write_req.on_complete = &impl::batch_io_done;
  b.write_req.user_data = &b;
  backend->submit(b.write_req);
}

void log::impl::batch_io_done(io_request& r) noexcept {
  auto* b = static_cast<batch*>(r.user_data);
  const bool is_write = &r == &b->write_req;
  const std::uint64_t want = std::uint64_t{b->n_pages} * fmt::page_size;
  const std::string where = segment_file_name(b->seg) + " at byte offset " +
                            std::to_string(std::uint64_t{b->first_index} * fmt::page_size) + " (LSN up to " +
                            std::to_string(b->lsn) + ")";
  if (r.result < 0) {
    const int e = static_cast<int>(-r.result);
    b->ec = errno_code(e);
    b->what = (is_write ? "wal: writing " + std::to_string(b->n_pages) + " page(s) of " + where
                        : "wal: fdatasync of " + where) +
              ": " + std::strerror(e);
    return;
  }
  if (is_write && static_cast<std::uint64_t>(r.result) != want) {
    // Never success: the pages past what was written are not on disk.
    b->ec = make_error_code(std::errc::io_error);
    b->what = "wal: short write of " + where + ": " + std::to_string(r.result) + " of " + std::to_string(want) +
              " bytes written (is the disk full?)";
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
    // Made durable by a flush the flusher sends once no other flush is in
    // flight (flush_due): a flush covers only writes that completed before it.
  } else {
    b->durable = true;
    b->synced = std::chrono::steady_clock::now();
  }
}

void log::impl::acknowledge_locked() {
  bool acked = false;
  while (!in_flight.empty() && in_flight.front()->is_durable()) {
    batch& b = *in_flight.front();
    if (!b.durable) b.synced = b.covered_by->synced;
    durable_lsn = std::max(durable_lsn, b.lsn);
    durable_seen.store(durable_lsn, std::memory_order_release);
    release_group_locked(b.seq);
    batches_acked = b.seq + 1;
    if (b.lsn != 0) segment_last_lsn[b.seg] = b.lsn;
    tail = b.cut + 1;
    ++stats.batches;
    if (b.dsync) ++stats.dsync_batches;
    if (b.overlapped) ++stats.overlapped_batches;
    stats.write_ns += static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(b.wrote - b.started).count());
    stats.flush_ns += static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(b.synced - b.wrote).count());
    stats.records += b.records;
    stats.pages += b.n_pages;
    in_flight.pop_front();
    acked = true;
  }
  if (!acked) return;
  acked_untold = true;
  const auto end = durable_callbacks.upper_bound(durable_lsn);
  for (auto it = durable_callbacks.begin(); it != end; ++it) acked_callbacks.push_back(std::move(it->second));
  durable_callbacks.erase(durable_callbacks.begin(), end);
  space_cv.notify_all();  // ring pages are free again
}

void log::impl::tell_acknowledged(std::unique_lock<std::mutex>& lock) {
  if (!acked_untold) return;
  acked_untold = false;
  const std::uint32_t woken = groups_to_wake;
  groups_to_wake = 0;
  stats.committer_wakeups += static_cast<std::uint64_t>(std::popcount(woken));
  std::vector<std::function<void(std::error_code)>> ready;
  ready.swap(acked_callbacks);
  lock.unlock();
  // One system call per group commit wakes all its committers.
  for (std::size_t i = 0; i < wait_groups; ++i) {
    if ((woken >> i) & 1u) pageio::detail::futex_wake(&groups[i].gen, INT_MAX);
  }
  std::error_code thrown;
  std::string why;
  for (auto& f : ready) {
    try {
      f({});
    } catch (const std::system_error& e) {
      if (!thrown) thrown = e.code(), why = e.what();
    } catch (const std::exception& e) {
      if (!thrown) thrown = make_error_code(std::errc::state_not_recoverable), why = e.what();
    } catch (...) {
      if (!thrown) thrown = make_error_code(std::errc::state_not_recoverable), why = "an unknown exception";
    }
  }
  lock.lock();
  if (thrown) fail_locked(thrown, "wal: a when_durable callback threw (callbacks must not throw): " + why);
  // Segments no group commit in flight or to come uses any more.
  const std::uint64_t oldest = in_flight.empty() ? ring[tail % ring_pages].segment : in_flight.front()->seg;
  lock.unlock();
  segments->release_before(oldest, *backend);
  lock.lock();
}

bool log::impl::may_send_another_locked() const {
  // Not while a flush is in flight: the next batch gathers meanwhile, and
  // its write and the one after it share the next flush (flush_due).
  return in_flight.empty() || (in_flight.size() < max_in_flight &&
                               (in_flight.back()->dsync || (in_flight.back()->written && !in_flight.back()->sync_sent)));
}

log::impl::batch* log::impl::flush_due() const {
  for (const auto& b : in_flight) {
    if (b->sync_sent && !b->durable) return nullptr;  // one flush at a time
  }
  batch* due = nullptr;
  for (const auto& b : in_flight) {
    if (b->dsync || b->sync_sent || b->durable) continue;
    // A flush covers one file: a batch in the next segment is not waited for.
    if (due != nullptr && b->seg != due->seg) return due;
    // A batch whose write is still on its way: the flush waits for it, and
    // then covers it too.
    if (!b->written) return nullptr;
    due = b.get();
  }
  return due;
}

void log::impl::send_flush(batch& b) {
  for (const auto& x : in_flight) {
    if (x.get() == &b) break;
    if (!x->dsync && x->written && !x->sync_sent && !x->durable && x->seg == b.seg) x->covered_by = &b;
  }
  b.sync_sent = true;
  b.sync_req.prep_fdatasync(b.fd);
  b.sync_req.on_complete = &impl::batch_io_done;
  b.sync_req.user_data = &b;
  backend->submit(b.sync_req);
}

void log::impl::wait_for_io_or_work(std::unique_lock<std::mutex>& lock) {
  // Blocking in reap() alone, the flusher could not send the next batch
  // until the one in flight completed: at 64 committers and RWF_DSYNC
  // batches, one was in flight at a time, not two (docs/wal-format.md,
  // "Group commits").
  lock.lock();
  if (io_fd < 0 || !may_send_another_locked()) {
    lock.unlock();
    backend->reap(1);
    return;
  }
  if (stop || failure || work_locked()) {
    lock.unlock();
    backend->poll();  // the loop sends the next batch now
    return;
  }
  // The open page is due lazy_flush_ms after its first record; an empty one
  // may get a record nobody asks for meanwhile, so the wait never lasts
  // longer than lazy_flush_ms either (as the idle wait's).
  const auto lazy = std::chrono::milliseconds(std::max<std::uint32_t>(opts.lazy_flush_ms, 1));
  const auto due = ring[head % ring_pages].used > 0 ? open_since + lazy - std::chrono::steady_clock::now()
                                                    : std::chrono::steady_clock::duration(lazy);
  const auto ns = std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(due).count());
  timespec limit{};
  limit.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  limit.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  flusher_polling = true;
  lock.unlock();
  pollfd fds[2] = {{io_fd, POLLIN, 0}, {work_fd, POLLIN, 0}};
  const int rc = ::ppoll(fds, 2, &limit, nullptr);
  const int err = errno;
  lock.lock();
  flusher_polling = false;
  lock.unlock();
  if (rc < 0 && err != EINTR) throw std::system_error(err, std::system_category(), "wal: flusher: ppoll");
  if (rc > 0 && (fds[1].revents & POLLIN) != 0) {
    std::uint64_t n;
    [[maybe_unused]] const auto got = ::read(work_fd, &n, sizeof n);
  }
  backend->ack_notify();
  backend->poll();
}

void log::impl::drain_quietly() noexcept {
  try {
    backend->drain();
  } catch (...) {
  }
}

void log::impl::run_flusher() {
  std::unique_lock lock(mu);
  for (;;) {
    if (failure) return;
    // What may go out next depends on the batch before it
    // (may_send_another_locked): after an RWF_DSYNC write, anything; after a
    // write that needs an fdatasync, the next write once that one is done.
    if (in_flight.empty()) {
      // With a batch to send, its committers hear after it is sent (below);
      // before sleeping, nothing else would tell them.
      if (!work_locked()) tell_acknowledged(lock);
      if (failure) return;
      flusher_idle = true;
      while (!stop && !failure && !work_locked()) {
        if (ring[head % ring_pages].used > 0) {
          work_cv.wait_until(lock, open_since + std::chrono::milliseconds(opts.lazy_flush_ms));
        } else {
          // Not without end: a record put in the empty open page now may
          // have nobody to ask for it (the store's merges), and appenders
          // wake the flusher only for a new cut or a waiter. It is then
          // written within twice lazy_flush_ms.
          work_cv.wait_for(lock, std::chrono::milliseconds(std::max<std::uint32_t>(opts.lazy_flush_ms, 1)));
        }
      }
      flusher_idle = false;
      if (failure) return;
      if (!work_locked()) return;  // stopping with nothing left
    }
    const bool may_form = may_send_another_locked();
    std::unique_ptr<batch> next;
    if (may_form && work_locked()) next = form_batch_locked();
    if (!next && in_flight.empty()) {
      // Data waits but no group commit can be cut from it: a broken
      // invariant (a record across a segment or a full buffer). Failing
      // loudly beats spinning.
      fail_locked(make_error_code(std::errc::state_not_recoverable),
                  "wal: internal error: appended records cannot form a group commit (first page " +
                      std::to_string(flushed) + ", open page " + std::to_string(head) + ")");
      return;
    }
    std::vector<ring_page> pages;
    bool follows_unacked = false;
    std::uint32_t prev_pages = 0;
    if (next) {
      for (std::uint64_t p = next->first; p <= next->cut; ++p) pages.push_back(ring[p % ring_pages]);
      follows_unacked = !in_flight.empty();
      if (follows_unacked) prev_pages = in_flight.back()->n_pages;
    }
    lock.unlock();

    std::error_code ec;
    std::string what;
    try {
      if (next) {
        seal(*next, pages, follows_unacked, prev_pages);
        next->overlapped = follows_unacked;
        in_flight.push_back(std::move(next));
        send(*in_flight.back());
      }
    } catch (const std::system_error& e) {
      ec = e.code();
      what = e.what();
    }
    // The committers of the group commit acknowledged last time hear of it
    // now that the next one is on its way.
    lock.lock();
    tell_acknowledged(lock);
    lock.unlock();
    try {
      // The flusher alone changes in_flight: no lock needed to read it.
      if (!ec) {
        if (batch* due = flush_due()) send_flush(*due);
      }
      if (!ec && !in_flight.empty()) wait_for_io_or_work(lock);
    } catch (const std::system_error& e) {
      ec = e.code();
      what = e.what();
    }

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
      drain_quietly();
      lock.lock();
      fail_locked(ec, what);
      return;
    }
    acknowledge_locked();
  }
}

void log::impl::flusher_main() {
  try {
    run_flusher();
  } catch (const std::bad_alloc&) {
    std::lock_guard lock(mu);
    fail_locked(make_error_code(std::errc::not_enough_memory), "wal: the flusher ran out of memory");
  } catch (const std::system_error& e) {
    std::lock_guard lock(mu);
    fail_locked(e.code(), e.what());
  } catch (const std::exception& e) {
    std::lock_guard lock(mu);
    fail_locked(make_error_code(std::errc::state_not_recoverable), std::string("wal: flusher: ") + e.what());
  }
  // Failed or stopping. Requests still in the kernel must finish before
  // their batches (and the buffers they point into) go away.
  drain_quietly();
  in_flight.clear();
  std::unique_lock lock(mu);
  // Those acknowledged before the end were durable: they hear so first.
  try {
    tell_acknowledged(lock);
  } catch (...) {
    if (!lock.owns_lock()) lock.lock();
  }
  flusher_done = true;
  release_all_locked();  // not durable: each reads why under mu
  space_cv.notify_all();
  std::vector<std::function<void(std::error_code)>> left;
  for (auto& [l, f] : durable_callbacks) left.push_back(std::move(f));
  durable_callbacks.clear();
  const std::error_code ec = failure ? failure : make_error_code(std::errc::operation_canceled);
  lock.unlock();
  for (auto& f : left) {
    try {
      f(ec);
    } catch (...) {
      // The log is closing or failed already; nobody is left to tell.
    }
  }
}

}  // namespace pageio::wal
