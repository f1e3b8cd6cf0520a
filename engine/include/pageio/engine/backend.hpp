// IoBackend: one interface over pread/pwrite, Linux native AIO and io_uring.
#pragma once

#include <pageio/engine/request.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace pageio {

// How a backend runs. Why each default is what it is, with the measurements
// behind it: docs/engine.md.
struct backend_options {
  // Requests the backend keeps in the kernel at once; more are queued inside
  // the backend (backpressure, never loss). 1..65536 (uring: 1..32768, the
  // kernel's ring limit).
  unsigned queue_depth = 128;
  // aio only: accept file descriptors opened without O_DIRECT. Off by default
  // because libaio performs buffered I/O synchronously inside io_submit.
  bool allow_buffered = false;
  // Requests submitted from completion callbacks go to the kernel as soon as
  // this many have gathered, and the rest when the callbacks are done.
  // 0 = the backend's default (aio and sync 1, uring 8).
  unsigned callback_batch = 0;
  // aio: while waiting, take completions from the kernel with one
  // io_getevents call per completion rather than all that are ready from the
  // shared ring (a system call each; a steadier stream of resubmissions).
  // poll() always takes everything that is ready.
  bool aio_paced_reap = true;
  // uring: the caller promises that one thread drives this backend for its
  // whole life (the first to submit, reap or poll; also the one that destroys
  // it). The ring is then set up with IORING_SETUP_SINGLE_ISSUER |
  // DEFER_TASKRUN, so completion work runs when that thread waits, and
  // callback resubmissions are paced (resubmit_gap). Another thread that drives
  // it gets std::logic_error. Ignored where the kernel lacks these flags
  // (before 6.1).
  bool uring_single_thread = false;
  // The least time between two trips to the kernel made for requests that
  // completion callbacks resubmitted during one reap(): the thread waits out
  // the rest of the gap (spinning) before the next one. It caps one
  // thread's resubmission rate near 1 / (gap + one submit call): on a very
  // fast device, set it to 0. Negative = the backend's default: 500 ns for
  // uring with uring_single_thread, 0 otherwise.
  std::chrono::nanoseconds resubmit_gap{-1};
};

// What a backend can do here, found by trying at start-up.
struct capabilities {
  std::string name;
  unsigned queue_depth = 0;
  bool async_flush = false;         // fdatasync/fsync run in the kernel without blocking submit
  bool per_write_dsync = false;     // io_flags::dsync is honoured as RWF_DSYNC
  bool registered_buffers = false;  // register_buffers() speeds up io_flags::fixed_buffer I/O
  bool registered_files = false;    // register_files() speeds up I/O on those fds
  bool cancel_in_kernel = false;    // cancel() can reach a request the kernel already holds
};

// Thrown when a backend cannot be built here (kernel support, limits, options).
class backend_unavailable : public std::system_error {
 public:
  backend_unavailable(std::error_code ec, const std::string& what) : std::system_error(ec, what) {}
};

// The backend interface. One thread drives an instance at a time; the
// bookkeeping (queueing, backpressure, short-transfer continuation, completion
// dispatch, cancellation of queued requests) lives here once, and each backend
// implements only the protected hooks.
class io_backend {
 public:
  static constexpr std::chrono::nanoseconds forever = std::chrono::nanoseconds::max();

  io_backend(const io_backend&) = delete;
  io_backend& operator=(const io_backend&) = delete;
  // Requests still outstanding are waited for (kernel-held ones) or dropped
  // (queued ones) WITHOUT running their completions: call drain() first if you
  // need them.
  virtual ~io_backend();

  const capabilities& caps() const noexcept { return caps_; }
  const std::string& name() const noexcept { return caps_.name; }

  // Hands requests to the backend: as many as the queue depth allows go to the
  // kernel in one call, the rest wait inside the backend and start as earlier
  // ones finish. Requests the kernel rejects complete with -errno. Called from
  // a completion callback, the submission joins the batch that reap() sends
  // when the callbacks are done.
  void submit(io_request& r);
  void submit(request_list& batch);  // empties `batch`
  void submit(std::span<io_request* const> batch);

  // Runs completion callbacks, waiting until at least `min_complete` have run
  // (capped at what is outstanding) or `timeout` passed. Returns how many ran.
  std::size_t reap(std::size_t min_complete, std::chrono::nanoseconds timeout = forever);
  // Runs whatever has completed, never waits.
  std::size_t poll() { return reap(0, std::chrono::nanoseconds::zero()); }
  // Reaps until nothing is outstanding.
  void drain();

  // An eventfd that becomes readable when completions are waiting for
  // reap()/poll(): register it with epoll or an event loop. Created on first
  // call; owned by the backend. Read it (or call ack_notify()) before poll().
  // Best created before submitting: on aio, the first call waits for requests
  // already in the kernel, which were sent without it.
  int notify_fd();
  // Consumes the eventfd's counter without blocking.
  void ack_notify() noexcept;

  // Cancels `r`. Returns true when `r` will complete with -ECANCELED (it was
  // still queued, or the kernel confirmed). Returns false when it was too late
  // or the attempt is asynchronous: `r` then completes with -ECANCELED or with
  // its natural result. Either way its completion runs exactly once.
  bool cancel(io_request& r);

  // Submitted requests whose completion has not run yet.
  std::size_t outstanding() const noexcept { return outstanding_; }
  std::size_t in_kernel() const noexcept { return in_kernel_; }
  // backend_options::resubmit_gap as resolved for this backend.
  std::chrono::nanoseconds resubmit_gap() const noexcept { return resubmit_gap_; }
  // backend_options::callback_batch as resolved for this backend.
  std::size_t callback_batch() const noexcept { return callback_batch_; }

  // Call after closing an fd you did I/O on and before its number is reused:
  // the aio backend remembers whether each fd was opened with O_DIRECT.
  virtual void forget_fd(int) {}

  // Optional speed-ups (capabilities say whether they do anything here).
  // register_files: I/O on these fds skips the per-request fd lookup.
  virtual void register_files(std::span<const int> fds);
  virtual void unregister_files();
  // register_buffers: requests with io_flags::fixed_buffer and buf_index = i
  // must lie inside bufs[i].
  virtual void register_buffers(std::span<const iovec> bufs);
  virtual void unregister_buffers();

 protected:
  io_backend(capabilities caps, const backend_options& opts, unsigned default_callback_batch,
             std::chrono::nanoseconds default_resubmit_gap = std::chrono::nanoseconds::zero())
      : caps_(std::move(caps)),
        callback_batch_(opts.callback_batch != 0 ? opts.callback_batch : default_callback_batch),
        resubmit_gap_(opts.resubmit_gap.count() >= 0 ? opts.resubmit_gap : default_resubmit_gap) {}

  // Hook: hand queued requests (take them with pop_queued()) to the kernel as
  // capacity allows; then, when `harvest`, collect finished ones with
  // kernel_done(), waiting until at least `min_wait` were collected or
  // `timeout` passed.
  virtual void kernel_cycle(std::size_t min_wait, std::chrono::nanoseconds timeout,
                            bool harvest) = 0;
  // Hook: try to cancel a request the kernel holds; true if it certainly will
  // complete with -ECANCELED.
  virtual bool cancel_in_kernel(io_request&) { return false; }
  // Hook: the notify eventfd was just created. Throwing refuses it (and
  // notify_fd() throws).
  virtual void notify_fd_created(int) {}

  // For hooks.
  io_request* pop_queued() noexcept;
  void push_back_queued(io_request& r) noexcept;  // could not start: first in line again
  // The kernel refused `r` after entered_kernel() (EAGAIN): first in line again.
  void requeue_from_kernel(io_request& r) noexcept;
  bool has_queued() const noexcept { return !queued_.empty(); }
  void entered_kernel(io_request& r, std::uint32_t slot) noexcept;
  // The kernel finished one round of `r` with `res` (bytes or -errno).
  // Continues a short transfer, or completes the request.
  void kernel_done(io_request& r, std::int64_t res) noexcept;
  // Completes `r` without the kernel (rejected at submission).
  void complete_now(io_request& r, std::int64_t res) noexcept;
  // Called first in a derived destructor: see ~io_backend.
  void abandon_all() noexcept;
  // Drops all bookkeeping without waiting: for a destructor whose kernel
  // object already finished or cancelled everything it held.
  void forget_all() noexcept;
  int existing_notify_fd() const noexcept { return notify_fd_; }
  void signal_notify(std::uint64_t n = 1) noexcept;

  // The part of `r` still to transfer, as one syscall's worth of arguments.
  struct segment {
    op_code op;
    void* buf;               // read/write
    std::size_t length;      // read/write
    const iovec* iov;        // readv/writev
    std::uint32_t iov_count; // readv/writev
    std::uint64_t offset;
  };
  static segment next_segment(const io_request& r) noexcept;
  // The slot entered_kernel() gave `r`.
  static std::uint32_t slot_of(const io_request& r) noexcept { return r.internal_.slot; }

 private:
  const capabilities caps_;  // found when the backend started; never changes
  void enqueue(io_request& r) noexcept;
  void start_submitted();
  std::size_t run_completions() noexcept;

  request_list queued_;  // accepted, waiting for kernel capacity
  request_list done_;    // finished, completion not run yet
  std::size_t callback_batch_;
  std::chrono::nanoseconds resubmit_gap_;
  std::chrono::steady_clock::time_point last_resubmit_{};  // when the last paced resubmission left
  std::size_t outstanding_ = 0;
  std::size_t in_kernel_ = 0;
  int notify_fd_ = -1;
  bool in_reap_ = false;
};

// Builds a backend by name ("sync", "aio", "uring"; "default" = the best that
// works here). Throws backend_unavailable saying why one cannot start.
std::unique_ptr<io_backend> make_backend(std::string_view name, const backend_options& opts = {});

struct backend_status {
  std::string name;
  bool available = false;
  std::string reason;  // why not, when unavailable
};
// The names of every backend built in, best first, without starting any
// ("default" is not one: it picks the first that starts).
std::vector<std::string> backend_names();
// Every backend, best first, each probed by starting it.
std::vector<backend_status> probe_backends();
// Names of the backends that start here, best first.
std::vector<std::string> available_backends();

}  // namespace pageio
