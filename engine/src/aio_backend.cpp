#include "aio_backend.hpp"

#include <fcntl.h>
#include <libaio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <vector>

namespace pageio::detail {

namespace {

// The completion ring the kernel maps at the address of the AIO context
// (fs/aio.c). Reading it directly saves an io_getevents call per reap when
// completions are already there, as fio's libaio userspace_reap does.
struct aio_ring {
  unsigned id;
  unsigned nr;
  unsigned head;
  unsigned tail;
  unsigned magic;
  unsigned compat_features;
  unsigned incompat_features;
  unsigned header_length;
  struct io_event io_events[];
};
constexpr unsigned aio_ring_magic = 0xa10a10a1;

std::string read_proc(const char* p) {
  std::ifstream in(p);
  std::string s;
  in >> s;
  return s.empty() ? "?" : s;
}

class aio_backend final : public io_backend {
 public:
  explicit aio_backend(const backend_options& opts)
      : io_backend(capabilities{.name = "aio",
                                .queue_depth = opts.queue_depth,
                                .async_flush = true,
                                .per_write_dsync = true,
                                .registered_buffers = false,
                                .registered_files = false,
                                .cancel_in_kernel = false},
                   opts, /*default_callback_batch=*/1),
        allow_buffered_(opts.allow_buffered),
        paced_(opts.aio_paced_reap) {
    if (opts.queue_depth == 0 || opts.queue_depth > 65536) {
      throw backend_unavailable(std::make_error_code(std::errc::invalid_argument),
                                "aio: queue depth " + std::to_string(opts.queue_depth) +
                                    " is outside 1..65536");
    }
    const int rc = io_setup(static_cast<int>(opts.queue_depth), &ctx_);
    if (rc < 0) {
      const std::error_code ec = result_code(rc);
      if (rc == -EAGAIN) {
        throw backend_unavailable(
            ec, "aio: io_setup(" + std::to_string(opts.queue_depth) +
                    ") failed: the system-wide AIO limit is exhausted (fs.aio-nr = " +
                    read_proc("/proc/sys/fs/aio-nr") + " of fs.aio-max-nr = " +
                    read_proc("/proc/sys/fs/aio-max-nr") +
                    "); raise it with `sysctl -w fs.aio-max-nr=N` or use a smaller queue depth");
      }
      if (rc == -ENOSYS) {
        throw backend_unavailable(ec, "aio: this kernel has no native AIO (io_setup: ENOSYS)");
      }
      throw backend_unavailable(ec, "aio: io_setup(" + std::to_string(opts.queue_depth) +
                                        ") failed: " + std::strerror(-rc));
    }
    slots_.resize(opts.queue_depth);
    free_.reserve(opts.queue_depth);
    for (std::uint32_t i = opts.queue_depth; i-- > 0;) free_.push_back(i);
    batch_.resize(opts.queue_depth);
    events_.resize(opts.queue_depth);
    auto* ring = reinterpret_cast<aio_ring*>(ctx_);
    if (ring->magic == aio_ring_magic && ring->incompat_features == 0) ring_ = ring;
  }

  ~aio_backend() override {
    abandon_all();
    io_destroy(ctx_);
  }

  void register_files(std::span<const int> fds) override {
    for (int fd : fds) forget(fd);
  }
  void forget_fd(int fd) override { forget(fd); }

 protected:
  void notify_fd_created(int) override {
    // Requests already in the kernel were submitted without the eventfd and
    // will never signal it: wait for them here (disk I/O finishes promptly).
    // Nothing is submitted meanwhile, so in_kernel() only goes down.
    while (in_kernel() > 0) {
      if (harvest_ring() > 0) continue;
      const int n = io_getevents(ctx_, 1, static_cast<long>(events_.size()), events_.data(), nullptr);
      for (int i = 0; i < n; ++i) finish(events_[static_cast<std::size_t>(i)]);
    }
  }

  void kernel_cycle(std::size_t min_wait, std::chrono::nanoseconds timeout, bool harvest) override {
    if (has_queued()) submit_queued();
    if (!harvest) return;
    // Never wait for more than the kernel holds (the rest may still be queued).
    min_wait = std::min(min_wait, in_kernel());
    // Paced: while waiting, take exactly what was asked for, one system call
    // each time, even when more is ready (backend_options::aio_paced_reap).
    const bool paced = paced_ && min_wait > 0;
    const std::size_t got = paced ? 0 : harvest_ring();
    if (ring_ && !paced && got >= min_wait) return;
    const long need = got >= min_wait ? 0 : static_cast<long>(min_wait - got);
    const long most = paced ? need : static_cast<long>(events_.size());
    timespec ts{};
    timespec* tsp = &ts;  // zero: just collect what is there
    if (need > 0) {
      if (timeout == forever) {
        tsp = nullptr;
      } else {
        ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
      }
    }
    int n;
    do {
      n = io_getevents(ctx_, need, most, events_.data(), tsp);
    } while (n == -EINTR);
    for (int i = 0; i < n; ++i) finish(events_[static_cast<std::size_t>(i)]);
  }

  bool cancel_in_kernel(io_request& r) override {
    io_event ev{};
    const int rc = io_cancel(ctx_, &slots_[slot_of(r)].cb, &ev);
    // 0 would hand the event back here; current kernels answer -EINPROGRESS and
    // post it to the ring, and regular files answer -EINVAL (not cancellable).
    if (rc == 0) {
      finish(ev);
      return true;
    }
    return false;
  }

 private:
  struct slot {
    iocb cb;
    io_request* req = nullptr;
  };
  static_assert(offsetof(slot, cb) == 0, "an iocb pointer is converted back to its slot");

  std::size_t harvest_ring() {
    if (!ring_) return 0;
    unsigned head = ring_->head;
    const unsigned tail = __atomic_load_n(&ring_->tail, __ATOMIC_ACQUIRE);
    std::size_t n = 0;
    while (head != tail) {
      io_event ev = ring_->io_events[head];
      head = (head + 1) % ring_->nr;
      __atomic_store_n(&ring_->head, head, __ATOMIC_RELEASE);
      finish(ev);
      ++n;
    }
    return n;
  }

  void finish(const io_event& ev) {
    auto* cb = static_cast<iocb*>(ev.obj);
    auto* s = reinterpret_cast<slot*>(cb);  // cb is the first member of slot
    io_request* r = s->req;
    release(*s);
    const auto res = static_cast<std::int64_t>(static_cast<long>(ev.res));
    if (res == -EBADF) forget(r->fd);
    kernel_done(*r, res);
  }

  void forget(int fd) {
    if (fd >= 0 && static_cast<std::size_t>(fd) < fd_mode_.size()) fd_mode_[static_cast<std::size_t>(fd)] = 0;
  }

  // 0 when the fd is usable here, else -errno for the request.
  int check_fd(int fd) {
    if (allow_buffered_) return 0;
    if (fd < 0) return -EBADF;
    const auto i = static_cast<std::size_t>(fd);
    if (i >= fd_mode_.size()) fd_mode_.resize(i + 64, 0);
    if (fd_mode_[i] == 0) {
      const int fl = ::fcntl(fd, F_GETFL);
      if (fl < 0) return -errno;
      fd_mode_[i] = (fl & O_DIRECT) ? 1 : 2;
    }
    return fd_mode_[i] == 1 ? 0 : -EOPNOTSUPP;
  }

  void prep(iocb* cb, io_request& r) {
    const segment s = next_segment(r);
    switch (s.op) {
      case op_code::read:
        io_prep_pread(cb, r.fd, s.buf, s.length, static_cast<long long>(s.offset));
        break;
      case op_code::write:
        io_prep_pwrite(cb, r.fd, s.buf, s.length, static_cast<long long>(s.offset));
        break;
      case op_code::readv:
        io_prep_preadv(cb, r.fd, s.iov, static_cast<int>(s.iov_count), static_cast<long long>(s.offset));
        break;
      case op_code::writev:
        io_prep_pwritev(cb, r.fd, s.iov, static_cast<int>(s.iov_count), static_cast<long long>(s.offset));
        break;
      case op_code::fdatasync:
        io_prep_fdsync(cb, r.fd);
        break;
      case op_code::fsync:
        io_prep_fsync(cb, r.fd);
        break;
    }
    if (has(r.flags, io_flags::dsync)) cb->aio_rw_flags = RWF_DSYNC;
    cb->data = &r;
    if (existing_notify_fd() >= 0) io_set_eventfd(cb, existing_notify_fd());
  }

  void submit_queued() {
    std::size_t n = 0;
    while (!free_.empty()) {
      io_request* r = pop_queued();
      if (!r) break;
      if (const int err = check_fd(r->fd); err != 0) {
        entered_kernel(*r, 0);
        kernel_done(*r, err);
        continue;
      }
      const std::uint32_t idx = free_.back();
      free_.pop_back();
      slot& s = slots_[idx];
      s.req = r;
      prep(&s.cb, *r);
      entered_kernel(*r, idx);
      batch_[n++] = &s.cb;
    }
    std::size_t i = 0;
    while (i < n) {
      const int rc = io_submit(ctx_, static_cast<long>(n - i), batch_.data() + i);
      if (rc > 0) {
        i += static_cast<std::size_t>(rc);
        continue;
      }
      if (rc == -EINTR) continue;
      if (rc == -EAGAIN || rc == 0) {
        // Out of kernel resources: keep the rest queued, in order.
        for (std::size_t j = n; j-- > i;) unsubmit(*batch_[j]);
        return;
      }
      iocb* cb = batch_[i++];
      slot* s = reinterpret_cast<slot*>(cb);
      io_request* r = s->req;
      if (rc == -EINVAL && (r->op == op_code::fdatasync || r->op == op_code::fsync)) {
        // This file system has no asynchronous flush: do it here, synchronously.
        release(*s);
        const int res = (r->op == op_code::fsync ? ::fsync(r->fd) : ::fdatasync(r->fd)) == 0 ? 0 : -errno;
        kernel_done(*r, res);
        continue;
      }
      release(*s);
      if (rc == -EBADF) forget(r->fd);
      kernel_done(*r, rc);  // the kernel rejected this one: it completes with -errno
    }
  }

  void release(slot& s) {
    s.req = nullptr;
    free_.push_back(static_cast<std::uint32_t>(&s - slots_.data()));
  }

  // Takes back a request the kernel did not accept.
  void unsubmit(iocb& cb) {
    slot& s = reinterpret_cast<slot&>(cb);
    io_request* r = s.req;
    release(s);
    requeue_from_kernel(*r);
  }

  io_context_t ctx_ = nullptr;
  aio_ring* ring_ = nullptr;
  bool allow_buffered_;
  bool paced_;
  std::vector<slot> slots_;
  std::vector<std::uint32_t> free_;
  std::vector<iocb*> batch_;
  std::vector<io_event> events_;
  std::vector<std::uint8_t> fd_mode_;  // by fd: 0 unknown, 1 O_DIRECT, 2 buffered
};

}  // namespace

std::unique_ptr<io_backend> make_aio_backend(const backend_options& opts) {
  return std::make_unique<aio_backend>(opts);
}

}  // namespace pageio::detail
