#include <pageio/engine/forwarding_backend.hpp>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <thread>

namespace pageio {

namespace {

capabilities wrapped_caps(const io_backend& inner, const std::string& prefix) {
  capabilities c = inner.caps();
  c.name = prefix + inner.name();
  return c;
}

}  // namespace

forwarding_backend::forwarding_backend(std::unique_ptr<io_backend> inner, const std::string& name_prefix)
    : io_backend(wrapped_caps(*inner, name_prefix), backend_options{}, 1), inner_(std::move(inner)) {
  if (inner_->outstanding() > 0) {
    throw std::invalid_argument("a wrapper takes over an idle backend: this one has requests outstanding");
  }
  const unsigned depth = std::max(1u, inner_->caps().queue_depth);
  shadows_.resize(depth);
  free_.reserve(depth);
  for (unsigned i = depth; i > 0; --i) free_.push_back(i - 1);
  for (auto& s : shadows_) s.owner = this;
  batch_.reserve(depth);
  finished_.reserve(depth);
  ready_.reserve(depth);
}

forwarding_backend::~forwarding_backend() {
  // The wrapper's destructor normally did this already (finish_inner()).
  abandon_all();
}

std::int64_t forwarding_backend::steady_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void forwarding_backend::inner_done(io_request& r) noexcept {
  auto* s = static_cast<shadow*>(r.user_data);
  s->result = r.result;
  s->owner->after_complete(*s);
  s->owner->finished_.push_back(s);
}

void forwarding_backend::kernel_cycle(std::size_t min_wait, std::chrono::nanoseconds timeout, bool harvest) {
  // Hand queued requests to the inner backend, one shadow per round.
  batch_.clear();
  while (!free_.empty()) {
    io_request* r = pop_queued();
    if (r == nullptr) break;
    const std::uint32_t index = free_.back();
    shadow& s = shadows_[index];
    const segment seg = next_segment(*r);
    io_request& in = s.inner;
    switch (seg.op) {
      case op_code::read: in.prep_read(r->fd, seg.buf, seg.length, seg.offset); break;
      case op_code::write: in.prep_write(r->fd, seg.buf, seg.length, seg.offset); break;
      case op_code::readv: in.prep_readv(r->fd, seg.iov, seg.iov_count, seg.offset); break;
      case op_code::writev: in.prep_writev(r->fd, seg.iov, seg.iov_count, seg.offset); break;
      case op_code::fdatasync: in.prep_fdatasync(r->fd); break;
      case op_code::fsync: in.prep_fsync(r->fd); break;
    }
    in.flags = r->flags;
    in.buf_index = r->buf_index;
    in.on_complete = &forwarding_backend::inner_done;
    in.user_data = &s;
    s.outer = r;
    s.result = 0;
    s.due_ns = 0;
    s.skip_inner = false;
    if (!before_submit(s)) {
      push_back_queued(*r);  // refused, as the kernel's EAGAIN: first in line again
      break;
    }
    free_.pop_back();
    s.in_use = true;
    entered_kernel(*r, index);
    if (s.skip_inner) {
      after_complete(s);
      finished_.push_back(&s);
    } else {
      batch_.push_back(&in);
    }
  }
  if (!batch_.empty()) inner_->submit(std::span<io_request* const>(batch_));
  if (!harvest) return;

  // Collect: deliver what is due, waiting for the inner backend or for added
  // latency to run out until `min_wait` were delivered or `timeout` passed.
  constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();
  const bool bounded = timeout != forever;
  const std::int64_t deadline = bounded ? steady_now_ns() + timeout.count() : never;
  if (inner_->outstanding() > 0) inner_->poll();
  std::size_t got = deliver_due();
  while (got < min_wait) {
    const std::int64_t now = steady_now_ns();
    if (now >= deadline) break;
    std::int64_t wake_at = deadline;
    for (const shadow* s : finished_) wake_at = std::min(wake_at, s->due_ns);
    if (inner_->outstanding() > 0) {
      inner_->reap(1, wake_at == never ? forever : std::chrono::nanoseconds(std::max<std::int64_t>(0, wake_at - now)));
    } else if (!finished_.empty()) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(std::max<std::int64_t>(0, wake_at - now)));
    } else {
      break;  // nothing more can finish
    }
    got += deliver_due();
  }
}

std::size_t forwarding_backend::deliver_due() {
  if (finished_.empty()) return 0;
  const std::int64_t now = steady_now_ns();
  ready_.clear();
  std::erase_if(finished_, [&](shadow* s) {
    if (s->due_ns > now) return false;
    ready_.push_back(s);
    return true;
  });
  order_ready(ready_);
  for (shadow* s : ready_) {
    io_request* outer = s->outer;
    const std::int64_t res = s->result;
    s->outer = nullptr;
    s->in_use = false;
    free_.push_back(static_cast<std::uint32_t>(s - shadows_.data()));
    kernel_done(*outer, res);
  }
  return ready_.size();
}

bool forwarding_backend::cancel_in_kernel(io_request& r) {
  shadow& s = shadows_[slot_of(r)];
  if (s.skip_inner || !s.in_use) return false;
  return inner_->cancel(s.inner);
}

void forwarding_backend::notify_fd_created(int) {
  throw std::logic_error(name() +
                         ": a wrapping backend has no completion eventfd (notify_fd); drive it with reap() or poll()");
}

}  // namespace pageio
