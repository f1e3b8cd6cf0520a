// A backend for tests that runs every request on another one and changes
// chosen write or flush rounds: completes the n-th one later than the kernel
// did, and/or with another result (-errno, or 0 bytes for a write: one that
// transferred nothing, which the bookkeeping reports as a short transfer).
#pragma once

#include <pageio/engine/forwarding_backend.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

namespace pageio::test {

class scripted_backend final : public forwarding_backend {
 public:
  explicit scripted_backend(std::unique_ptr<io_backend> inner) : forwarding_backend(std::move(inner), "scripted+") {}
  ~scripted_backend() override { finish_inner(); }

  // The n-th write round (counted from 1, writes and writevs) completes
  // `delay` after the kernel finished it, with `result` when given.
  void on_write(unsigned n, std::chrono::microseconds delay, std::optional<std::int64_t> result = {}) {
    std::lock_guard lock(mu_);
    writes_script_[n] = {delay, result};
  }
  // The n-th fdatasync or fsync (counted from 1), likewise.
  void on_flush(unsigned n, std::chrono::microseconds delay, std::optional<std::int64_t> result = {}) {
    std::lock_guard lock(mu_);
    flushes_script_[n] = {delay, result};
  }
  // Rounds the kernel has finished so far.
  unsigned writes_seen() const {
    std::lock_guard lock(mu_);
    return writes_;
  }
  unsigned flushes_seen() const {
    std::lock_guard lock(mu_);
    return flushes_;
  }

 private:
  struct step {
    std::chrono::microseconds delay{0};
    std::optional<std::int64_t> result;
  };
  void after_complete(shadow& s) override {
    const bool write = s.inner.op == op_code::write || s.inner.op == op_code::writev;
    const bool flush = s.inner.op == op_code::fdatasync || s.inner.op == op_code::fsync;
    if (!write && !flush) return;
    std::lock_guard lock(mu_);
    const unsigned n = write ? ++writes_ : ++flushes_;
    const auto& script = write ? writes_script_ : flushes_script_;
    const auto it = script.find(n);
    if (it == script.end()) return;
    if (it->second.result) s.result = *it->second.result;
    s.due_ns = steady_now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(it->second.delay).count();
  }

  mutable std::mutex mu_;
  std::map<unsigned, step> writes_script_, flushes_script_;
  unsigned writes_ = 0, flushes_ = 0;
};

}  // namespace pageio::test
