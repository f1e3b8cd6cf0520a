// A backend that runs every request on another one and injects the faults a
// real disk produces rarely and never on demand: EIO on reads, writes and
// flushes, ENOSPC on writes, EAGAIN from submission, added latency and
// completions out of order. Random faults follow a seed and per-operation
// rates; deterministic ones are queued with fail_next().
#pragma once

#include <pageio/engine/forwarding_backend.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

namespace pageio {

struct fault_options {
  std::uint64_t seed = 1;
  // Probability (0..1) that an operation of the kind fails with the errno.
  double read_eio = 0;
  double write_eio = 0;     // write and writev; the data may or may not have reached the file
  double write_enospc = 0;  // write and writev; nothing is written
  double flush_eio = 0;     // fdatasync, fsync, and the durability part of an io_flags::dsync write
  // Probability that a submission is refused with EAGAIN (the request waits
  // and is tried again, as with a full kernel queue).
  double submit_eagain = 0;
  // Each completion is delivered after an extra delay, uniform in [0, max].
  std::chrono::microseconds max_added_latency{0};
  // Completions that are ready together are delivered in a random order.
  bool reorder = false;
};

enum class fault_target : std::uint8_t { read, write, flush };

class fault_backend final : public forwarding_backend {
 public:
  fault_backend(std::unique_ptr<io_backend> inner, const fault_options& opts = {});
  ~fault_backend() override;

  // Replaces the options; safe from any thread.
  void set_options(const fault_options& opts);
  // The next `count` operations of kind `target` fail with `err` (EIO,
  // ENOSPC, ...), before any random fault; safe from any thread.
  void fail_next(fault_target target, int err, unsigned count = 1);

  // Faults injected so far; safe from any thread.
  struct counters {
    std::uint64_t read_errors = 0, write_errors = 0, flush_errors = 0, eagain = 0, delayed = 0;
  };
  counters injected() const;

 private:
  bool before_submit(shadow& s) override;
  void after_complete(shadow& s) override;
  void order_ready(std::vector<shadow*>& ready) override;

  double uniform();  // [0, 1), from the seeded generator

  mutable std::mutex mu_;  // guards everything below
  fault_options opts_;
  std::uint64_t rng_state_;
  struct queued_fault {
    fault_target target;
    int err;
  };
  std::deque<queued_fault> next_;
  counters counters_;
};

}  // namespace pageio
