#include "uring_backend.hpp"

#include <liburing.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace pageio::detail {

namespace {

std::string uring_disabled_setting() {
  std::ifstream in("/proc/sys/kernel/io_uring_disabled");
  std::string s;
  in >> s;
  return s.empty() ? "" : " (kernel.io_uring_disabled = " + s + ")";
}

// The calling thread's kernel id, fetched once per thread: gettid() is a
// system call, and the single-thread check runs on every submit and reap.
pid_t this_tid() noexcept {
  thread_local const pid_t tid = ::gettid();
  return tid;
}

class uring_backend final : public io_backend {
 public:
  explicit uring_backend(const backend_options& opts)
      : io_backend(capabilities{.name = "uring",
                                .queue_depth = opts.queue_depth,
                                .async_flush = true,
                                .per_write_dsync = true,
                                .registered_buffers = true,
                                .registered_files = true,
                                .cancel_in_kernel = true},
                   // Groups of 8: each trip to the kernel is a virtqueue kick,
                   // a VM exit here (docs/engine.md, "Submitting from
                   // completion callbacks").
                   opts, /*default_callback_batch=*/8u,
                   /*default_resubmit_gap=*/opts.uring_single_thread ? std::chrono::nanoseconds(500)
                                                                    : std::chrono::nanoseconds(0)) {
    if (opts.queue_depth == 0 || opts.queue_depth > 32768) {
      throw backend_unavailable(std::make_error_code(std::errc::invalid_argument),
                                "uring: queue depth " + std::to_string(opts.queue_depth) +
                                    " is outside 1..32768");
    }
    io_uring_params p{};
    int rc = -EINVAL;
    if (opts.uring_single_thread) {
      // Completion work deferred to the driving thread's waits; the ring is
      // created disabled so that the thread that first drives it becomes
      // its only issuer, whichever thread built the backend.
      p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                IORING_SETUP_COOP_TASKRUN | IORING_SETUP_R_DISABLED;
      // Completion queue as deep as the submission queue, as fio sizes it.
      p.flags |= IORING_SETUP_CQSIZE;
      p.cq_entries = opts.queue_depth;
      rc = io_uring_queue_init_params(opts.queue_depth, &ring_, &p);
      single_thread_ = rc == 0;
    }
    if (rc == -EINVAL) {  // not asked for, or a kernel older than 6.1
      p = io_uring_params{};
      p.flags = IORING_SETUP_SUBMIT_ALL;  // one bad request does not hold back the batch
      rc = io_uring_queue_init_params(opts.queue_depth, &ring_, &p);
    }
    if (rc == -EINVAL) {  // kernel older than 5.18
      p = io_uring_params{};
      rc = io_uring_queue_init_params(opts.queue_depth, &ring_, &p);
    }
    if (rc < 0) {
      const std::error_code ec = result_code(rc);
      std::string why = "uring: io_uring_queue_init(" + std::to_string(opts.queue_depth) +
                        ") failed: " + std::strerror(-rc);
      if (rc == -ENOSYS) why += "; this kernel has no io_uring";
      if (rc == -EPERM) why += "; io_uring is disabled here" + uring_disabled_setting() + " or by seccomp";
      if (rc == -ENOMEM) why += "; lower the queue depth or raise RLIMIT_MEMLOCK";
      throw backend_unavailable(ec, why);
    }
    ext_arg_ = (p.features & IORING_FEAT_EXT_ARG) != 0;
  }

  ~uring_backend() override {
    if (single_thread_ && enabled_ && this_tid() != owner_) {
      // Only the owner can wait for completions on this ring. Closing the
      // ring makes the kernel cancel or finish what it holds first.
      io_uring_queue_exit(&ring_);
      forget_all();
      return;
    }
    abandon_all();
    io_uring_queue_exit(&ring_);
  }

  void register_files(std::span<const int> fds) override {
    unregister_files();
    if (fds.empty()) return;
    const int rc = io_uring_register_files(&ring_, fds.data(), static_cast<unsigned>(fds.size()));
    if (rc < 0) throw std::system_error(-rc, std::system_category(), "uring: register_files");
    for (std::size_t i = 0; i < fds.size(); ++i) {
      const auto fd = static_cast<std::size_t>(fds[i]);
      if (fd >= file_index_.size()) file_index_.resize(fd + 1, -1);
      file_index_[fd] = static_cast<int>(i);
    }
  }

  void unregister_files() override {
    if (file_index_.empty()) return;
    io_uring_unregister_files(&ring_);
    file_index_.clear();
  }

  void register_buffers(std::span<const iovec> bufs) override {
    unregister_buffers();
    if (bufs.empty()) return;
    const int rc = io_uring_register_buffers(&ring_, bufs.data(), static_cast<unsigned>(bufs.size()));
    if (rc < 0) throw std::system_error(-rc, std::system_category(), "uring: register_buffers");
    buffers_ = static_cast<std::uint32_t>(bufs.size());
  }

  void unregister_buffers() override {
    if (buffers_ == 0) return;
    io_uring_unregister_buffers(&ring_);
    buffers_ = 0;
  }

 protected:
  void notify_fd_created(int fd) override {
    const int rc = io_uring_register_eventfd(&ring_, fd);
    if (rc < 0) throw std::system_error(-rc, std::system_category(), "uring: register_eventfd");
  }

  void kernel_cycle(std::size_t min_wait, std::chrono::nanoseconds timeout, bool harvest) override {
    if (single_thread_) claim_thread();
    fill_sq();
    // Deferred completion work runs only when the owner enters the kernel.
    if (single_thread_ && harvest && min_wait == 0 && in_kernel() > 0) io_uring_get_events(&ring_);
    std::size_t got = harvest ? harvest_cq() : 0;
    // Never wait for more than the kernel holds (the rest may still be queued).
    min_wait = std::min(min_wait, got + in_kernel());
    int rc = 0;
    if (!harvest || got >= min_wait) {
      if (io_uring_sq_ready(&ring_) > 0) rc = io_uring_submit(&ring_);
      if (rc == -EEXIST) wrong_thread();  // SINGLE_ISSUER: the kernel saw another task
      return;
    }
    const auto need = static_cast<unsigned>(min_wait - got);
    if (timeout == forever || !ext_arg_) {
      rc = io_uring_submit_and_wait(&ring_, need);
    } else {
      __kernel_timespec ts{};
      ts.tv_sec = timeout.count() / 1'000'000'000;
      ts.tv_nsec = timeout.count() % 1'000'000'000;
      io_uring_cqe* cqe = nullptr;
      rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, need, &ts, nullptr);
    }
    if (rc == -EEXIST) wrong_thread();
    harvest_cq();
  }

  bool cancel_in_kernel(io_request& r) override {
    io_uring_sqe* sqe = get_sqe();
    if (!sqe) return false;
    io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(&r), 0);
    io_uring_sqe_set_data64(sqe, 0);  // its own completion is ignored
    io_uring_submit(&ring_);
    return false;  // asynchronous: `r` completes with -ECANCELED or its result
  }

 private:
  // backend_options::uring_single_thread: the first thread to drive the ring
  // owns it; another one gets a clear error instead of -EEXIST from the kernel.
  void claim_thread() {
    if (!enabled_) {
      owner_ = this_tid();
      // liburing 2.3 declares io_uring_enable_rings() but does not export it.
      if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) < 0) {
        throw std::system_error(errno, std::system_category(), "uring: enabling the ring");
      }
      enabled_ = true;
    } else if (this_tid() != owner_) {
      wrong_thread();
    }
  }

  [[noreturn]] static void wrong_thread() {
    throw std::logic_error(
          "uring: a backend built with backend_options::uring_single_thread is driven by the thread "
          "that first submitted to it; another thread called submit/reap/poll. Build it without "
          "uring_single_thread to hand it between threads");
  }

  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  void fill_sq() {
    while (in_kernel() < caps().queue_depth && has_queued()) {
      io_uring_sqe* sqe = get_sqe();
      if (!sqe) return;
      io_request* r = pop_queued();
      prep(sqe, *r);
      entered_kernel(*r, 0);
    }
  }

  void prep(io_uring_sqe* sqe, io_request& r) {
    segment s = next_segment(r);
    // An SQE length is 32 bits; the kernel moves at most this much per call
    // anyway (MAX_RW_COUNT), and the base class continues the rest.
    constexpr std::size_t max_rw = 0x7ffff000;
    if (s.length > max_rw) s.length = max_rw;
    int fd = r.fd;
    bool fixed_file = false;
    if (fd >= 0 && static_cast<std::size_t>(fd) < file_index_.size() &&
        file_index_[static_cast<std::size_t>(fd)] >= 0) {
      fd = file_index_[static_cast<std::size_t>(fd)];
      fixed_file = true;
    }
    const bool fixed_buf = has(r.flags, io_flags::fixed_buffer) && r.buf_index < buffers_;
    switch (s.op) {
      case op_code::read:
        if (fixed_buf) {
          io_uring_prep_read_fixed(sqe, fd, s.buf, static_cast<unsigned>(s.length), s.offset,
                                   static_cast<int>(r.buf_index));
        } else {
          io_uring_prep_read(sqe, fd, s.buf, static_cast<unsigned>(s.length), s.offset);
        }
        break;
      case op_code::write:
        if (fixed_buf) {
          io_uring_prep_write_fixed(sqe, fd, s.buf, static_cast<unsigned>(s.length), s.offset,
                                    static_cast<int>(r.buf_index));
        } else {
          io_uring_prep_write(sqe, fd, s.buf, static_cast<unsigned>(s.length), s.offset);
        }
        break;
      case op_code::readv:
        io_uring_prep_readv(sqe, fd, s.iov, s.iov_count, s.offset);
        break;
      case op_code::writev:
        io_uring_prep_writev(sqe, fd, s.iov, s.iov_count, s.offset);
        break;
      case op_code::fdatasync:
        io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
        break;
      case op_code::fsync:
        io_uring_prep_fsync(sqe, fd, 0);
        break;
    }
    if (has(r.flags, io_flags::dsync)) sqe->rw_flags = RWF_DSYNC;
    if (fixed_file) sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data(sqe, &r);
  }

  std::size_t harvest_cq() {
    unsigned head;
    unsigned seen = 0;
    std::size_t got = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      auto* r = static_cast<io_request*>(io_uring_cqe_get_data(cqe));
      if (r == nullptr) continue;  // a cancel request's own completion
      kernel_done(*r, cqe->res);
      ++got;
    }
    if (seen) io_uring_cq_advance(&ring_, seen);
    return got;
  }

  io_uring ring_{};
  bool ext_arg_ = false;
  bool single_thread_ = false;  // SINGLE_ISSUER | DEFER_TASKRUN in force
  bool enabled_ = false;        // the disabled ring was enabled by owner_
  pid_t owner_ = 0;  // kernel thread id: std::thread ids are reused at once
  std::vector<int> file_index_;  // by fd: registered index, or -1
  std::uint32_t buffers_ = 0;
};

}  // namespace

std::unique_ptr<io_backend> make_uring_backend(const backend_options& opts) {
  return std::make_unique<uring_backend>(opts);
}

}  // namespace pageio::detail
