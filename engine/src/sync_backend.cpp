#include "sync_backend.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

namespace pageio::detail {

namespace {

// Executes requests synchronously at submission; completions are delivered by
// reap() like every other backend's, so callers cannot tell the difference
// except in timing. This is the behaviour the other backends are tested against.
class sync_backend final : public io_backend {
 public:
  explicit sync_backend(const backend_options& opts)
      : io_backend(capabilities{.name = "sync",
                                .queue_depth = opts.queue_depth,
                                .async_flush = false,
                                .per_write_dsync = true,
                                .registered_buffers = false,
                                .registered_files = false,
                                .cancel_in_kernel = false},
                   opts, /*default_callback_batch=*/1) {
    // The same limit as the other backends, so that a queue depth that works
    // on one works on all (and "default" cannot fall back to a bad one).
    if (opts.queue_depth == 0 || opts.queue_depth > 65536) {
      throw backend_unavailable(std::make_error_code(std::errc::invalid_argument),
                                "sync: queue depth " + std::to_string(opts.queue_depth) +
                                    " is outside 1..65536");
    }
  }
  ~sync_backend() override { abandon_all(); }

 protected:
  void kernel_cycle(std::size_t, std::chrono::nanoseconds, bool) override {
    while (io_request* r = pop_queued()) {
      entered_kernel(*r, 0);
      kernel_done(*r, execute(*r));  // a short transfer queues the rest again
    }
  }

 private:
  static std::int64_t execute(const io_request& r) noexcept {
    const segment s = next_segment(r);
    const int rwf = has(r.flags, io_flags::dsync) ? RWF_DSYNC : 0;
    for (;;) {
      ssize_t n = -1;
      switch (s.op) {
        case op_code::read:
          n = ::pread(r.fd, s.buf, s.length, static_cast<off_t>(s.offset));
          break;
        case op_code::write:
          if (rwf) {
            iovec v{s.buf, s.length};
            n = ::pwritev2(r.fd, &v, 1, static_cast<off_t>(s.offset), rwf);
          } else {
            n = ::pwrite(r.fd, s.buf, s.length, static_cast<off_t>(s.offset));
          }
          break;
        case op_code::readv:
          n = ::preadv(r.fd, s.iov, static_cast<int>(s.iov_count), static_cast<off_t>(s.offset));
          break;
        case op_code::writev:
          n = ::pwritev2(r.fd, s.iov, static_cast<int>(s.iov_count), static_cast<off_t>(s.offset), rwf);
          break;
        case op_code::fdatasync:
          n = ::fdatasync(r.fd);
          break;
        case op_code::fsync:
          n = ::fsync(r.fd);
          break;
      }
      if (n >= 0) return n;
      if (errno != EINTR) return -errno;
    }
  }
};

}  // namespace

std::unique_ptr<io_backend> make_sync_backend(const backend_options& opts) {
  return std::make_unique<sync_backend>(opts);
}

}  // namespace pageio::detail
