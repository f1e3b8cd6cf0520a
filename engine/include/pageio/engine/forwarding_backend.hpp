// A backend that runs its requests on another backend: the base of the
// fault-injecting and crash-simulating wrappers (LevelDB's EnvWrapper, for
// an asynchronous interface). The outer bookkeeping (queueing, backpressure,
// short-transfer continuation, completion dispatch) stays in io_backend; the
// wrapper turns each round of an outer request into a "shadow" request on the
// inner backend and sees both ends through two hooks.
#pragma once

#include <pageio/engine/backend.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace pageio {

class forwarding_backend : public io_backend {
 public:
  ~forwarding_backend() override;

  io_backend& inner() noexcept { return *inner_; }

  void forget_fd(int fd) override { inner_->forget_fd(fd); }
  void register_files(std::span<const int> fds) override { inner_->register_files(fds); }
  void unregister_files() override { inner_->unregister_files(); }
  void register_buffers(std::span<const iovec> bufs) override { inner_->register_buffers(bufs); }
  void unregister_buffers() override { inner_->unregister_buffers(); }

 protected:
  // One round of an outer request on the inner backend.
  struct shadow {
    forwarding_backend* owner = nullptr;
    io_request inner;           // what the inner backend runs
    io_request* outer = nullptr;
    std::int64_t result = 0;    // what the outer request will complete with
    // Not before this time (steady clock, ns): added latency.
    std::int64_t due_ns = 0;
    bool skip_inner = false;    // completed without running on the inner backend
    bool in_use = false;
  };

  // `name_prefix` + the inner backend's name becomes this backend's name.
  forwarding_backend(std::unique_ptr<io_backend> inner, const std::string& name_prefix);

  // Hook: `s.inner` is prepared from the outer request's next segment; the
  // wrapper may inspect it, or set s.skip_inner with s.result to complete it
  // without the inner backend. Returning false refuses the submission, as
  // the kernel's EAGAIN does: the request stays first in line.
  virtual bool before_submit(shadow&) { return true; }
  // Hook: `s` finished (s.result holds the inner result, or what
  // before_submit set); the wrapper may replace the result or set s.due_ns.
  // Runs on the driving thread.
  virtual void after_complete(shadow&) {}

  // A wrapper's destructor calls this first, while its hooks still exist:
  // it waits for what the inner backend holds (see io_backend::abandon_all).
  void finish_inner() noexcept { abandon_all(); }
  // Hook: order in which ready completions are delivered; default: as they came.
  virtual void order_ready(std::vector<shadow*>& /*ready*/) {}

  static std::int64_t steady_now_ns() noexcept;

 private:
  void kernel_cycle(std::size_t min_wait, std::chrono::nanoseconds timeout, bool harvest) final;
  bool cancel_in_kernel(io_request& r) final;
  void notify_fd_created(int fd) final;

  static void inner_done(io_request& r) noexcept;
  std::size_t deliver_due();

  std::unique_ptr<io_backend> inner_;
  std::vector<shadow> shadows_;      // one per request the inner backend may hold
  std::vector<std::uint32_t> free_;  // indexes into shadows_
  std::vector<shadow*> finished_;    // inner completions not yet delivered
  std::vector<io_request*> batch_;   // reused by each submission
  std::vector<shadow*> ready_;       // reused by deliver_due
};

}  // namespace pageio
