#include "probe_backend.hpp"

#include <utility>

namespace pageio::test {

bool is_read(op_code op) noexcept { return op == op_code::read || op == op_code::readv; }
bool is_write(op_code op) noexcept { return op == op_code::write || op == op_code::writev; }

void io_probe::set_hook(hook_fn h) {
  std::lock_guard lock(mu_);
  hook_ = std::move(h);
}

std::vector<io_record> io_probe::records() const {
  std::lock_guard lock(mu_);
  return records_;
}

void io_probe::clear() {
  std::lock_guard lock(mu_);
  records_.clear();
}

std::size_t io_probe::count(op_code op, int fd, std::int64_t offset) const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const io_record& r : records_) {
    const bool kind = is_read(op) ? is_read(r.op) : is_write(op) ? is_write(r.op) : r.op == op;
    if (!kind) continue;
    if (fd >= 0 && r.fd != fd) continue;
    if (offset >= 0 && (static_cast<std::uint64_t>(offset) < r.offset ||
                        static_cast<std::uint64_t>(offset) >= r.offset + r.bytes)) {
      continue;
    }
    ++n;
  }
  return n;
}

int io_probe::on_submit(io_request& inner, std::size_t outstanding) {
  io_record rec;
  rec.op = inner.op;
  rec.fd = inner.fd;
  rec.offset = inner.offset;
  rec.iov_count = inner.iov_count;
  rec.outstanding = outstanding;
  if (inner.iov != nullptr) {
    for (std::uint32_t i = 0; i < inner.iov_count; ++i) rec.bytes += inner.iov[i].iov_len;
  } else {
    rec.bytes = inner.length;
  }
  hook_fn hook;
  {
    std::lock_guard lock(mu_);
    records_.push_back(rec);
    hook = hook_;
  }
  return hook ? hook(inner) : 0;
}

probe_backend::probe_backend(std::unique_ptr<io_backend> inner, std::shared_ptr<io_probe> probe)
    : forwarding_backend(std::move(inner), "probe+"), probe_(std::move(probe)) {}

probe_backend::~probe_backend() { finish_inner(); }

bool probe_backend::before_submit(shadow& s) {
  const int err = probe_->on_submit(s.inner, outstanding());
  if (err != 0) {
    s.skip_inner = true;
    s.result = -err;
  }
  return true;
}

}  // namespace pageio::test
