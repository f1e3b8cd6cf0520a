#include "workload.hpp"

#include "asio_workload.hpp"
#include "errors.hpp"
#include "meter.hpp"
#include "rng.hpp"

#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/backend.hpp>
#include <pageio/engine/file.hpp>

#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <exception>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace pageio::bench {

namespace {

// Pins the calling thread to one CPU for its lifetime and gives it back the
// CPUs it had before, so that a `compare` run leaves the next one unpinned.
class cpu_pin {
 public:
  explicit cpu_pin(int cpu) {
    if (cpu < 0) return;
    if (int rc = ::pthread_getaffinity_np(::pthread_self(), sizeof before_, &before_); rc != 0) {
      throw std::system_error(rc, std::system_category(), "pthread_getaffinity_np");
    }
    if (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &before_)) {
      std::string allowed;
      for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (!CPU_ISSET(c, &before_)) continue;
        if (!allowed.empty()) allowed += ',';
        allowed += std::to_string(c);
      }
      throw usage_error(fmt::format("--cpu {}: this process may only run on CPU(s) {}", cpu, allowed));
    }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (int rc = ::pthread_setaffinity_np(::pthread_self(), sizeof one, &one); rc != 0) {
      throw std::system_error(rc, std::system_category(), fmt::format("pinning to CPU {}", cpu));
    }
    pinned_ = true;
  }
  ~cpu_pin() {
    if (pinned_) ::pthread_setaffinity_np(::pthread_self(), sizeof before_, &before_);
  }
  cpu_pin(const cpu_pin&) = delete;
  cpu_pin& operator=(const cpu_pin&) = delete;

 private:
  cpu_set_t before_{};
  bool pinned_ = false;
};

}  // namespace

backend_options backend_options_for(const workload_params& p) {
  backend_options o;
  o.queue_depth = p.qd;
  if (p.callback_batch != 0) o.callback_batch = p.callback_batch;
  if (p.resubmit_gap_ns >= 0) o.resubmit_gap = std::chrono::nanoseconds(p.resubmit_gap_ns);
  o.uring_single_thread = p.uring_single_thread;
  return o;
}

std::unique_ptr<io_backend> start_backend(const workload_params& p) {
  try {
    return make_backend(p.backend, backend_options_for(p));
  } catch (const backend_unavailable& e) {
    // A bad name or queue depth is the caller's mistake; anything else is this machine.
    if (e.code() == std::errc::invalid_argument) throw usage_error(e.what());
    throw;
  }
}

namespace {

// Keeps `qd` requests in flight: every completion records its latency, picks
// the next offset and resubmits itself, until the deadline. Everything the
// loop touches is allocated before the first submission. Job `job` of
// p.numjobs keeps to its own part of the file (workload_params::numjobs).
class runner {
 public:
  runner(const workload_params& p, io_backend& backend, const file& f, unsigned job = 0)
      : p_(p),
        backend_(backend),
        rng_(p.seed + job),
        blocks_(p.size_bytes / p.bs / p.numjobs),
        first_block_(blocks_ * job),
        slots_(p.qd),
        meter_(p) {
    const std::size_t align = std::max<std::size_t>(4096, f.alignment().memory);
    arena_ = aligned_buffer(p.bs * p.qd, align);
    if (is_write(p.rw)) {
      for (std::size_t i = 0; i + 8 <= arena_.size(); i += 8) {
        const std::uint64_t w = rng_.next();
        std::memcpy(arena_.data() + i, &w, 8);
      }
    }
    io_flags flags = io_flags::none;
    if (p.uring_register) {
      const int fd = f.fd();
      backend_.register_files({&fd, 1});
      const iovec whole{arena_.data(), arena_.size()};
      backend_.register_buffers({&whole, 1});
      flags = io_flags::fixed_buffer;  // buf_index 0: the whole arena
    }
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      slot& s = slots_[i];
      void* buf = arena_.data() + i * p.bs;
      if (is_write(p.rw)) {
        s.req.prep_write(f.fd(), buf, p.bs, 0);
      } else {
        s.req.prep_read(f.fd(), buf, p.bs, 0);
      }
      s.req.flags = flags;
      s.req.on_complete = &runner::on_complete;
      s.req.user_data = &s;
      s.owner = this;
    }
  }

  ~runner() {
    if (p_.uring_register) {
      backend_.unregister_buffers();
      backend_.unregister_files();
    }
  }

  run_result run() {
    run_loop();
    run_result r = meter_.result("pageio", backend_.name());
    r.api = "raw";
    return r;
  }

  // Runs until the deadline; throws std::runtime_error naming the first
  // failed request. The figures are then in meter().
  void run_loop() {
    std::vector<io_request*> batch;
    for (slot& s : slots_) batch.push_back(&s.req);

    const std::uint64_t start = now_ns();
    meter_.start(start);
    for (slot& s : slots_) {
      s.req.offset = next_offset();
      s.start_ns = start;
    }
    backend_.submit(std::span<io_request* const>(batch));

    // A bounded wait, so that a stalled device cannot hold us past the deadline.
    constexpr std::chrono::milliseconds wait_at_most{100};
    while (!stopping_) {
      if (backend_.reap(1, wait_at_most) == 0 && meter_.past_deadline(now_ns())) stopping_ = true;
    }
    meter_.stop();
    backend_.drain();  // completions after the deadline are neither counted nor resubmitted
    if (!failure_.empty()) throw std::runtime_error(failure_);
  }

  const run_meter& meter() const noexcept { return meter_; }

 private:
  struct slot {
    io_request req;
    std::uint64_t start_ns = 0;
    runner* owner = nullptr;
  };

  static void on_complete(io_request& r) {
    auto* s = static_cast<slot*>(r.user_data);
    s->owner->completed(*s);
  }

  void completed(slot& s) {
    const std::uint64_t now = now_ns();
    if (s.req.result != static_cast<std::int64_t>(p_.bs)) {
      if (failure_.empty()) {
        failure_ = s.req.failed() ? describe_failure(s.req)
                                  : fmt::format("{} (short transfer: the file is smaller than --size?)",
                                                describe_failure(s.req));
      }
      stopping_ = true;
    }
    if (stopping_) return;
    if (!meter_.completed(s.start_ns, now)) {
      stopping_ = true;
      return;
    }
    s.req.offset = next_offset();
    s.start_ns = now;
    backend_.submit(s.req);  // joins the batch reap() sends when the callbacks are done
  }

  std::uint64_t next_offset() noexcept {
    if (is_random(p_.rw)) return (first_block_ + rng_.below(blocks_)) * p_.bs;
    const std::uint64_t off = (first_block_ + cursor_) * p_.bs;
    if (++cursor_ == blocks_) cursor_ = 0;
    return off;
  }

  const workload_params& p_;
  io_backend& backend_;
  xoshiro256 rng_;
  const std::uint64_t blocks_;       // of this job's part of the file
  const std::uint64_t first_block_;  // where that part starts
  std::uint64_t cursor_ = 0;
  aligned_buffer arena_;
  std::vector<slot> slots_;
  run_meter meter_;
  bool stopping_ = false;
  std::string failure_;
};

void check_params(const workload_params& p) {
  if (p.bs == 0) throw usage_error("--bs must be at least 1 byte");
  if (p.qd == 0) throw usage_error("--qd must be at least 1");
  if (p.numjobs == 0) throw usage_error("--numjobs must be at least 1");
  if (p.numjobs > 1 && p.api != "raw") throw usage_error("--numjobs works with --api raw only");
  if (p.size_bytes / std::max<std::uint64_t>(p.bs, 1) < p.numjobs) {
    throw usage_error("--numjobs: fewer blocks in --size than jobs");
  }
  if (!(p.seconds > 0)) throw usage_error("--seconds must be positive");
  if (p.warmup_seconds < 0) throw usage_error("the warm-up cannot be negative");
  if (p.size_bytes < p.bs) {
    throw usage_error(fmt::format("--size ({} bytes) is smaller than --bs ({} bytes): not one block fits",
                                  p.size_bytes, p.bs));
  }
  if (p.bs > (std::uint64_t{1} << 30)) throw usage_error("--bs larger than 1 GiB is not supported");
}

}  // namespace

namespace {

file open_test_file(const workload_params& p) {
  file f = file::open(p.file, {.direct = true, .writable = is_write(p.rw)});
  if (const std::uint64_t have = f.size(); have < p.size_bytes) {
    throw std::runtime_error(fmt::format("{} holds {} bytes, fewer than --size {}", p.file.string(), have,
                                         p.size_bytes));
  }
  if (std::string why; f.check_io(nullptr, p.bs, 0, &why)) {
    throw usage_error(fmt::format("--bs {}: {}", p.bs, why));
  }
  return f;
}

// Checks what the backend `p` asks for can do.
void check_backend(const workload_params& p, const io_backend& backend) {
  if (p.uring_register && p.api != "raw") throw usage_error("--uring-register works with --api raw only");
  if (p.uring_register && !backend.caps().registered_buffers) {
    throw usage_error(fmt::format("--uring-register: the {} backend cannot register files or buffers; "
                                  "use --backend uring",
                                  backend.name()));
  }
}

// p.numjobs threads, each building, driving and destroying its own backend
// (as uring_single_thread requires) over the shared descriptor of `f`. They
// set up, wait for each other, and start together.
run_result run_jobs(const workload_params& p, const file& f) {
  const unsigned n = p.numjobs;
  std::vector<run_meter> meters(n, run_meter(p));
  std::vector<std::string> names(n);
  std::vector<std::exception_ptr> errors(n);
  std::atomic<bool> setup_failed{false};
  std::barrier ready(static_cast<std::ptrdiff_t>(n));
  auto job = [&](unsigned j) {
    bool arrived = false;
    try {
      const cpu_pin pin(p.cpu);
      auto backend = start_backend(p);
      check_backend(p, *backend);
      runner r(p, *backend, f, j);
      arrived = true;
      ready.arrive_and_wait();
      if (setup_failed.load()) return;
      r.run_loop();
      meters[j] = r.meter();
      names[j] = backend->name();
      backend->forget_fd(f.fd());
    } catch (...) {
      errors[j] = std::current_exception();
      if (!arrived) {
        setup_failed.store(true);
        ready.arrive_and_wait();
      }
    }
  };
  {
    std::vector<std::jthread> threads;
    threads.reserve(n);
    for (unsigned j = 0; j < n; ++j) threads.emplace_back(job, j);
  }
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  run_result r = run_meter::combined(meters, "pageio", names.front());
  r.api = "raw";
  return r;
}

}  // namespace

run_result run_workload(const workload_params& p) {
  check_params(p);
  if (p.numjobs > 1) return run_jobs(p, open_test_file(p));
  const cpu_pin pin(p.cpu);  // before the backend, so that its ring is set up from the pinned thread
  if (p.api == "asio-file") {
    if (p.uring_register) throw usage_error("--uring-register works with --api raw only");
    return run_asio_file_workload(p, open_test_file(p));
  }
  auto backend = start_backend(p);
  check_backend(p, *backend);
  const file f = open_test_file(p);
  if (p.api == "asio") return run_asio_workload(p, std::move(backend), f);
  runner r(p, *backend, f);
  run_result res = r.run();
  backend->forget_fd(f.fd());
  return res;
}

}  // namespace pageio::bench
