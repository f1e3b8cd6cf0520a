// The bookkeeping every backend shares: queueing, continuation of short
// transfers, completion dispatch, cancellation of queued requests.
#include <pageio/engine/backend.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <climits>
#include <thread>

namespace pageio {

namespace {

bool is_vector(op_code op) { return op == op_code::readv || op == op_code::writev; }
bool is_transfer(op_code op) { return op != op_code::fdatasync && op != op_code::fsync; }

// Checks what no kernel interface should see; returns 0 or -errno.
int validate(const io_request& r) {
  if (static_cast<unsigned>(r.op) > static_cast<unsigned>(op_code::fsync)) return -EINVAL;
  if (is_vector(r.op)) {
    if (r.iov_count > IOV_MAX) return -EINVAL;
    if (r.iov == nullptr && r.iov_count != 0) return -EFAULT;
    if (has(r.flags, io_flags::fixed_buffer)) return -EINVAL;
  }
  if (has(r.flags, io_flags::dsync) && r.op != op_code::write && r.op != op_code::writev) {
    return -EINVAL;
  }
  if (has(r.flags, io_flags::fixed_buffer) && !is_transfer(r.op)) return -EINVAL;
  if (r.offset > static_cast<std::uint64_t>(LLONG_MAX)) return -EINVAL;
  return 0;
}

}  // namespace

io_backend::~io_backend() {
  // Derived destructors call abandon_all(); by now nothing may be in the kernel.
  assert(in_kernel_ == 0);
  if (notify_fd_ >= 0) ::close(notify_fd_);
}

void io_backend::enqueue(io_request& r) noexcept {
  assert(r.internal_.st == io_request::state::idle && "request submitted twice");
  r.internal_ = {};
  r.result = 0;
  ++outstanding_;
  if (int err = validate(r); err != 0) {
    complete_now(r, err);
    return;
  }
  if (is_transfer(r.op) && r.total_bytes() == 0) {
    // Zero-length transfers complete with 0 without entering the kernel.
    complete_now(r, 0);
    return;
  }
  r.internal_.st = io_request::state::queued;
  queued_.push_back(r);
}

void io_backend::submit(io_request& r) {
  enqueue(r);
  start_submitted();
}

void io_backend::start_submitted() {
  // From completion callbacks, requests go to the kernel in small groups: a
  // group saves syscalls, a large one delays the first request of it (and
  // the device idles meanwhile); measured in docs/engine.md.
  if (in_reap_ && queued_.size() < callback_batch_) return;
  // Spread a wave of resubmissions out (backend_options::resubmit_gap).
  const bool paced = in_reap_ && resubmit_gap_.count() > 0;
  if (paced) {
    // No PAUSE in this loop: in a virtual machine a run of PAUSEs can make
    // the host deschedule the vCPU (pause-loop exiting), the opposite of a
    // short wait. Reading the clock (vDSO) is slow enough on its own.
    const auto not_before = last_resubmit_ + resubmit_gap_;
    while (std::chrono::steady_clock::now() < not_before) {
    }
  }
  kernel_cycle(0, std::chrono::nanoseconds::zero(), false);
  if (paced) last_resubmit_ = std::chrono::steady_clock::now();
  if (!done_.empty()) signal_notify();  // finished at submission (sync, rejected)
}

void io_backend::submit(request_list& batch) {
  while (!batch.empty()) {
    io_request& r = batch.front();
    batch.pop_front();
    enqueue(r);
  }
  start_submitted();
}

void io_backend::submit(std::span<io_request* const> batch) {
  for (io_request* r : batch) enqueue(*r);
  start_submitted();
}

std::size_t io_backend::run_completions() noexcept {
  // Only what has finished so far: a callback that resubmits on the sync
  // backend finishes again at once, and must not keep this loop going forever.
  request_list ready;
  ready.swap(done_);
  std::size_t ran = 0;
  while (!ready.empty()) {
    io_request& r = ready.front();
    ready.pop_front();
    r.internal_.st = io_request::state::idle;
    --outstanding_;
    ++ran;
    // The callback may resubmit or destroy `r`: touch nothing of it afterwards.
    if (r.on_complete != nullptr) r.on_complete(r);
  }
  return ran;
}

std::size_t io_backend::reap(std::size_t min_complete, std::chrono::nanoseconds timeout) {
  assert(!in_reap_ && "reap() called from a completion callback");
  if (in_reap_) return 0;
  in_reap_ = true;
  using clock = std::chrono::steady_clock;
  const bool bounded = timeout != forever;
  const auto deadline = bounded ? clock::now() + timeout : clock::time_point::max();

  std::size_t ran = run_completions();
  bool first = true;
  for (;;) {
    const std::size_t waiting_for = in_kernel_ + queued_.size();
    std::size_t need = ran < min_complete ? min_complete - ran : 0;
    if (need > waiting_for) need = waiting_for;
    if (need == 0 && !first) break;
    std::chrono::nanoseconds left = forever;
    if (bounded) {
      left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock::now());
      if (left.count() < 0) left = std::chrono::nanoseconds::zero();
    }
    if (need > 0 && in_kernel_ == 0 && !queued_.empty()) {
      // The kernel refused to take anything (EAGAIN with nothing in flight):
      // try again shortly rather than spin.
      kernel_cycle(0, std::chrono::nanoseconds::zero(), false);
      if (in_kernel_ == 0 && done_.empty()) {
        if (bounded && left.count() == 0) break;
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        continue;
      }
    }
    kernel_cycle(need, need > 0 ? left : std::chrono::nanoseconds::zero(), true);
    ran += run_completions();
    first = false;
    if (ran >= min_complete) break;
    if (bounded && clock::now() >= deadline) break;
    if (in_kernel_ == 0 && queued_.empty() && done_.empty()) break;
  }
  // Send what the callbacks submitted, as one batch.
  if (!queued_.empty()) kernel_cycle(0, std::chrono::nanoseconds::zero(), false);
  in_reap_ = false;
  // Completions the kernel did not post (the sync backend, requests rejected or
  // cancelled from a callback) are waiting: an event loop must still wake.
  if (!done_.empty()) signal_notify();
  return ran;
}

void io_backend::drain() {
  while (outstanding_ > 0) reap(outstanding_);
}

int io_backend::notify_fd() {
  if (notify_fd_ < 0) {
    const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::system_category(), "eventfd");
    try {
      notify_fd_created(fd);
    } catch (...) {
      ::close(fd);
      throw;
    }
    notify_fd_ = fd;
    // Requests submitted before the eventfd existed may have finished without
    // signalling it: wake the loop once so that its poll() collects them.
    if (!done_.empty() || in_kernel_ > 0) signal_notify();
  }
  return notify_fd_;
}

void io_backend::ack_notify() noexcept {
  if (notify_fd_ < 0) return;
  std::uint64_t n;
  [[maybe_unused]] auto rc = ::read(notify_fd_, &n, sizeof n);
}

void io_backend::signal_notify(std::uint64_t n) noexcept {
  if (notify_fd_ < 0) return;
  [[maybe_unused]] auto rc = ::write(notify_fd_, &n, sizeof n);
}

bool io_backend::cancel(io_request& r) {
  switch (r.internal_.st) {
    case io_request::state::queued:
      queued_.erase(queued_.iterator_to(r));
      complete_now(r, -ECANCELED);
      if (!in_reap_) signal_notify();
      return true;
    case io_request::state::in_kernel:
      r.internal_.cancel_requested = true;
      return cancel_in_kernel(r);
    default:
      return false;
  }
}

void io_backend::register_files(std::span<const int>) {}
void io_backend::unregister_files() {}
void io_backend::register_buffers(std::span<const iovec>) {}
void io_backend::unregister_buffers() {}

io_request* io_backend::pop_queued() noexcept {
  if (queued_.empty()) return nullptr;
  io_request& r = queued_.front();
  queued_.pop_front();
  return &r;
}

void io_backend::push_back_queued(io_request& r) noexcept {
  r.internal_.st = io_request::state::queued;
  queued_.push_front(r);
}

void io_backend::requeue_from_kernel(io_request& r) noexcept {
  assert(in_kernel_ > 0);
  --in_kernel_;
  push_back_queued(r);
}

void io_backend::entered_kernel(io_request& r, std::uint32_t slot) noexcept {
  r.internal_.st = io_request::state::in_kernel;
  r.internal_.slot = slot;
  ++in_kernel_;
}

void io_backend::kernel_done(io_request& r, std::int64_t res) noexcept {
  assert(r.internal_.st == io_request::state::in_kernel);
  assert(in_kernel_ > 0);
  --in_kernel_;
  if (is_transfer(r.op) && res > 0) {
    r.internal_.progress += static_cast<std::size_t>(res);
    if (r.internal_.progress < r.total_bytes() && !r.internal_.cancel_requested) {
      // Short transfer: the rest goes first in line.
      push_back_queued(r);
      return;
    }
    res = static_cast<std::int64_t>(r.internal_.progress);
  } else if (is_transfer(r.op) && res == 0) {
    res = static_cast<std::int64_t>(r.internal_.progress);  // end of file
  }
  // An error after partial progress is reported as the error: the caller must
  // not mistake a failed transfer for end of file.
  r.result = res;
  r.internal_.st = io_request::state::completing;
  done_.push_back(r);
}

void io_backend::complete_now(io_request& r, std::int64_t res) noexcept {
  r.result = res;
  r.internal_.st = io_request::state::completing;
  done_.push_back(r);
}

void io_backend::abandon_all() noexcept {
  while (!queued_.empty()) {
    io_request& r = queued_.front();
    queued_.pop_front();
    r.internal_.st = io_request::state::idle;
  }
  while (in_kernel_ > 0) {
    kernel_cycle(in_kernel_, forever, true);
    // A continuation may have been queued again: drop it.
    while (!queued_.empty()) {
      io_request& r = queued_.front();
      queued_.pop_front();
      r.internal_.st = io_request::state::idle;
    }
  }
  while (!done_.empty()) {
    io_request& r = done_.front();
    done_.pop_front();
    r.internal_.st = io_request::state::idle;
  }
  outstanding_ = 0;
}

void io_backend::forget_all() noexcept {
  for (request_list* l : {&queued_, &done_}) {
    while (!l->empty()) {
      io_request& r = l->front();
      l->pop_front();
      r.internal_.st = io_request::state::idle;
    }
  }
  in_kernel_ = 0;
  outstanding_ = 0;
}

io_backend::segment io_backend::next_segment(const io_request& r) noexcept {
  const std::size_t done = r.internal_.progress;
  segment s{r.op, nullptr, 0, nullptr, 0, r.offset + done};
  switch (r.op) {
    case op_code::read:
    case op_code::write:
      s.buf = static_cast<char*>(r.buf) + done;
      s.length = r.length - done;
      return s;
    case op_code::readv:
    case op_code::writev: {
      std::uint32_t i = 0;
      std::size_t skip = done;
      while (i < r.iov_count && skip >= r.iov[i].iov_len) {
        skip -= r.iov[i].iov_len;
        ++i;
      }
      if (skip == 0) {
        s.iov = r.iov + i;
        s.iov_count = r.iov_count - i;
      } else {
        // Finish the partly transferred element on its own, then carry on vectored.
        s.op = r.op == op_code::readv ? op_code::read : op_code::write;
        s.buf = static_cast<char*>(r.iov[i].iov_base) + skip;
        s.length = r.iov[i].iov_len - skip;
      }
      return s;
    }
    default:
      return s;
  }
}

std::size_t io_request::total_bytes() const noexcept {
  switch (op) {
    case op_code::read:
    case op_code::write:
      return length;
    case op_code::readv:
    case op_code::writev: {
      std::size_t n = 0;
      for (std::uint32_t i = 0; i < iov_count; ++i) n += iov[i].iov_len;
      return n;
    }
    default:
      return 0;
  }
}

}  // namespace pageio
