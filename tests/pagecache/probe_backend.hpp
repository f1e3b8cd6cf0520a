// A backend wrapper that records every request the pool sends and lets a test
// stand in the way of one: hold it (so other threads arrive while it is in
// flight), fail it, or look inside a page before it is written. All the lanes
// of one pool share one io_probe, so the record covers the whole pool.
#pragma once

#include <pageio/engine/forwarding_backend.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace pageio::test {

// One round of a request as the wrapper saw it before the inner backend ran it.
struct io_record {
  op_code op = op_code::read;
  int fd = -1;
  std::uint64_t offset = 0;
  std::size_t bytes = 0;
  std::uint32_t iov_count = 0;
  // Requests the pool had submitted to this lane and not yet seen complete:
  // all the requests of one submission are outstanding together.
  std::size_t outstanding = 0;
};

// Shared by every probe_backend of one pool; safe from any thread.
class io_probe {
 public:
  // Runs on the thread driving the backend, before the inner backend sees the
  // request, outside the probe's lock (it may block or call into the pool).
  // It may change the request's buffer. A nonzero return is an errno the
  // request completes with, without running.
  using hook_fn = std::function<int(io_request&)>;

  void set_hook(hook_fn h);
  std::vector<io_record> records() const;
  void clear();

  // Rounds of kind `op` (read counts read and readv; write counts write and
  // writev); with `fd` >= 0 only those on that fd, with `offset` set only
  // those whose range covers it.
  std::size_t count(op_code op, int fd = -1, std::int64_t offset = -1) const;

 private:
  friend class probe_backend;
  int on_submit(io_request& inner, std::size_t outstanding);

  mutable std::mutex mu_;
  std::vector<io_record> records_;
  hook_fn hook_;
};

class probe_backend final : public forwarding_backend {
 public:
  probe_backend(std::unique_ptr<io_backend> inner, std::shared_ptr<io_probe> probe);
  ~probe_backend() override;

 private:
  bool before_submit(shadow& s) override;
  std::shared_ptr<io_probe> probe_;
};

bool is_read(op_code op) noexcept;
bool is_write(op_code op) noexcept;

}  // namespace pageio::test
