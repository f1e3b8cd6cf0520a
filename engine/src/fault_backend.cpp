#include <pageio/engine/fault_backend.hpp>

#include <pageio/engine/detail/splitmix64.hpp>

#include <algorithm>
#include <cerrno>

namespace pageio {

namespace {

fault_target target_of(op_code op) noexcept {
  switch (op) {
    case op_code::read:
    case op_code::readv: return fault_target::read;
    case op_code::write:
    case op_code::writev: return fault_target::write;
    case op_code::fdatasync:
    case op_code::fsync: return fault_target::flush;
  }
  return fault_target::read;
}

}  // namespace

fault_backend::fault_backend(std::unique_ptr<io_backend> inner, const fault_options& opts)
    : forwarding_backend(std::move(inner), "fault+"), opts_(opts), rng_state_(opts.seed) {}

fault_backend::~fault_backend() { finish_inner(); }

void fault_backend::set_options(const fault_options& opts) {
  std::lock_guard lock(mu_);
  if (opts.seed != opts_.seed) rng_state_ = opts.seed;
  opts_ = opts;
}

void fault_backend::fail_next(fault_target target, int err, unsigned count) {
  std::lock_guard lock(mu_);
  for (unsigned i = 0; i < count; ++i) next_.push_back({target, err});
}

fault_backend::counters fault_backend::injected() const {
  std::lock_guard lock(mu_);
  return counters_;
}

double fault_backend::uniform() {
  return detail::splitmix64_unit(rng_state_);
}

bool fault_backend::before_submit(shadow&) {
  std::lock_guard lock(mu_);
  if (opts_.submit_eagain > 0 && uniform() < opts_.submit_eagain) {
    ++counters_.eagain;
    return false;
  }
  return true;
}

void fault_backend::after_complete(shadow& s) {
  std::lock_guard lock(mu_);
  const op_code op = s.inner.op;
  const fault_target target = target_of(op);
  int err = 0;
  // A queued fault for this kind of operation comes first.
  for (auto it = next_.begin(); it != next_.end(); ++it) {
    if (it->target == target || (target == fault_target::write && it->target == fault_target::flush &&
                                 has(s.inner.flags, io_flags::dsync))) {
      err = it->err;
      next_.erase(it);
      break;
    }
  }
  if (err == 0 && s.result >= 0) {
    switch (target) {
      case fault_target::read:
        if (opts_.read_eio > 0 && uniform() < opts_.read_eio) err = EIO;
        break;
      case fault_target::write:
        if (opts_.write_enospc > 0 && uniform() < opts_.write_enospc) {
          err = ENOSPC;
        } else if (opts_.write_eio > 0 && uniform() < opts_.write_eio) {
          err = EIO;
        } else if (has(s.inner.flags, io_flags::dsync) && opts_.flush_eio > 0 && uniform() < opts_.flush_eio) {
          err = EIO;  // the write landed, making it durable failed
        }
        break;
      case fault_target::flush:
        if (opts_.flush_eio > 0 && uniform() < opts_.flush_eio) err = EIO;
        break;
    }
  }
  if (err != 0) {
    s.result = -err;
    switch (target) {
      case fault_target::read: ++counters_.read_errors; break;
      case fault_target::write: ++counters_.write_errors; break;
      case fault_target::flush: ++counters_.flush_errors; break;
    }
  }
  if (opts_.max_added_latency.count() > 0) {
    const auto extra_ns = static_cast<std::int64_t>(uniform() * static_cast<double>(opts_.max_added_latency.count()) * 1e3);
    s.due_ns = steady_now_ns() + extra_ns;
    ++counters_.delayed;
  }
}

void fault_backend::order_ready(std::vector<shadow*>& ready) {
  std::lock_guard lock(mu_);
  if (!opts_.reorder || ready.size() < 2) return;
  for (std::size_t i = ready.size() - 1; i > 0; --i) {  // Fisher-Yates
    const auto j = static_cast<std::size_t>(uniform() * static_cast<double>(i + 1));
    std::swap(ready[i], ready[std::min(j, i)]);
  }
}

}  // namespace pageio
