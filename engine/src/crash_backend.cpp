// The backend half of the crash model: each round of a request is recorded
// in the shared state (crash_state.hpp) before it reaches the inner backend
// and settled there when it completes.
#include <pageio/engine/crash_backend.hpp>

#include <cerrno>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>

#include "crash_state.hpp"

namespace pageio {

namespace {

bool is_write_op(op_code op) noexcept { return op == op_code::write || op == op_code::writev; }
bool is_flush_op(op_code op) noexcept { return op == op_code::fdatasync || op == op_code::fsync; }

}  // namespace

crash_backend::crash_backend(std::unique_ptr<io_backend> inner)
    : crash_backend(std::move(inner), std::make_shared<detail::crash_state>()) {}

crash_backend::crash_backend(std::unique_ptr<io_backend> inner, std::shared_ptr<detail::crash_state> state)
    : forwarding_backend(std::move(inner), "crash+"), state_(std::move(state)) {
  std::lock_guard lock(state_->mu);
  epoch_ = state_->epoch;
}

crash_backend::~crash_backend() {
  finish_inner();
  std::lock_guard lock(state_->mu);
  state_->forget_owner(this);
}

void crash_backend::cut_power() {
  std::lock_guard lock(state_->mu);
  state_->cut = true;
}

bool crash_backend::power_cut() const {
  std::lock_guard lock(state_->mu);
  return state_->dead(epoch_);
}

std::size_t crash_backend::unstable_writes() const {
  std::lock_guard lock(state_->mu);
  return state_->unstable_writes();
}

bool crash_backend::before_submit(shadow& s) {
  std::lock_guard lock(state_->mu);
  if (state_->dead(epoch_)) {
    s.skip_inner = true;
    s.result = -EIO;
    return true;
  }
  try {
    const io_request& in = s.inner;
    if (is_write_op(in.op)) {
      detail::crash_state::in_flight_op op;
      op.owner = this;
      if (in.op == op_code::write) {
        const iovec one{in.buf, in.length};
        op.seq = state_->begin_write(in.fd, in.offset, std::span<const iovec>(&one, 1));
      } else {
        op.seq = state_->begin_write(in.fd, in.offset, std::span<const iovec>(in.iov, in.iov_count));
      }
      state_->in_flight[&s] = std::move(op);
    } else if (is_flush_op(in.op)) {
      detail::crash_state::in_flight_op op;
      op.owner = this;
      op.is_flush = true;
      op.flush = state_->begin_flush(in.fd);
      state_->in_flight[&s] = std::move(op);
    }
  } catch (const std::system_error& e) {
    // Not tracked, so not run: a write the simulation could not undo would
    // make the crash image a lie.
    s.skip_inner = true;
    s.result = -(e.code().value() != 0 ? e.code().value() : EIO);
  }
  return true;
}

void crash_backend::after_complete(shadow& s) {
  std::lock_guard lock(state_->mu);
  const bool dead = state_->dead(epoch_);
  auto it = state_->in_flight.find(&s);
  if (it == state_->in_flight.end()) {
    if (dead && s.result >= 0) s.result = -EIO;  // reads too: the machine is off
    return;
  }
  const detail::crash_state::in_flight_op op = std::move(it->second);
  state_->in_flight.erase(it);
  if (dead) {
    // It stays uncovered (a write: never completed): settle() decides what landed.
    s.result = -EIO;
    return;
  }
  if (s.result < 0) return;  // a failed write may or may not have reached the file
  if (op.is_flush) {
    state_->complete_flush(op.flush);
  } else {
    state_->complete_write(op.seq, static_cast<std::size_t>(s.result), has(s.inner.flags, io_flags::dsync));
  }
}

crash_report crash_backend::settle(std::uint64_t seed) {
  std::lock_guard lock(state_->mu);
  if (!state_->cut) throw std::logic_error("crash_backend::settle: call cut_power() first");
  if (outstanding() > 0) {
    throw std::logic_error("crash_backend::settle: " + std::to_string(outstanding()) +
                           " request(s) outstanding; stop the driving thread and drain first");
  }
  return state_->settle(seed);
}

}  // namespace pageio
