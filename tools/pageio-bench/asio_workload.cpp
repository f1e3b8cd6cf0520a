#include "asio_workload.hpp"

#include "errors.hpp"
#include "meter.hpp"
#include "rng.hpp"

#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/asio.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#if defined(BOOST_ASIO_HAS_FILE)
#include <boost/asio/random_access_file.hpp>
#endif

#include <fmt/format.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace pageio::bench {

namespace asio = boost::asio;

namespace {

// What the coroutines share: offsets, buffers, the meter and the first failure.
class coroutine_run {
 public:
  coroutine_run(const workload_params& p, std::size_t alignment)
      : p_(p), rng_(p.seed), blocks_(p.size_bytes / p.bs), meter_(p) {
    arena_ = aligned_buffer(p.bs * p.qd, std::max<std::size_t>(4096, alignment));
    if (is_write(p.rw)) {
      for (std::size_t i = 0; i + 8 <= arena_.size(); i += 8) {
        const std::uint64_t w = rng_.next();
        std::memcpy(arena_.data() + i, &w, 8);
      }
    }
  }

  asio::mutable_buffer buffer(std::size_t slot) { return asio::buffer(arena_.data() + slot * p_.bs, p_.bs); }

  std::uint64_t next_offset() noexcept {
    if (is_random(p_.rw)) return rng_.below(blocks_) * p_.bs;
    const std::uint64_t off = cursor_ * p_.bs;
    if (++cursor_ == blocks_) cursor_ = 0;
    return off;
  }

  // One request finished: false when the coroutine should stop.
  template <typename ErrorCode>
  bool completed(std::uint64_t began, const ErrorCode& ec, std::size_t n, std::uint64_t offset) {
    const std::uint64_t now = now_ns();
    if (stopping_) return false;
    if (ec || n != p_.bs) {
      if (failure_.empty()) {
        failure_ = ec ? fmt::format("{} of {} bytes at offset {} in {} failed: {}", is_write(p_.rw) ? "write" : "read",
                                    p_.bs, offset, p_.file.string(), ec.message())
                      : fmt::format("short transfer of {} of {} bytes at offset {} in {} (the file is smaller "
                                    "than --size?)",
                                    n, p_.bs, offset, p_.file.string());
      }
      stop();
      return false;
    }
    if (!meter_.completed(began, now)) {
      stop();
      return false;
    }
    return true;
  }

  void failed(std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      if (failure_.empty()) failure_ = x.what();
    }
    stop();
  }

  void start() { meter_.start(now_ns()); }

  run_result finish(std::string engine) {
    if (!stopping_) meter_.stop();
    if (!failure_.empty()) throw std::runtime_error(failure_);
    return meter_.result("pageio", std::move(engine));
  }

  bool stopping() const noexcept { return stopping_; }

 private:
  void stop() {
    if (stopping_) return;
    stopping_ = true;
    meter_.stop();  // the CPU time of the run, not of the last requests draining
  }

  const workload_params& p_;
  xoshiro256 rng_;
  const std::uint64_t blocks_;
  std::uint64_t cursor_ = 0;
  aligned_buffer arena_;
  run_meter meter_;
  bool stopping_ = false;
  std::string failure_;
};

}  // namespace

run_result run_asio_workload(const workload_params& p, std::unique_ptr<io_backend> backend, const file& f) {
  asio::io_context ctx(1);  // one thread runs it: Asio can skip its locking
  const std::string name = backend->name();
  asio_driver driver(ctx, std::move(backend));
  async_file af(driver, f.fd());
  coroutine_run run(p, f.alignment().memory);
  const bool writing = is_write(p.rw);

  auto worker = [&](std::size_t slot) -> asio::awaitable<void> {
    const asio::mutable_buffer buf = run.buffer(slot);
    while (!run.stopping()) {
      const std::uint64_t off = run.next_offset();
      const std::uint64_t began = now_ns();
      auto [ec, n] = writing ? co_await af.async_write_at(off, asio::const_buffer(buf), asio::use_awaitable)
                             : co_await af.async_read_at(off, buf, asio::use_awaitable);
      if (!run.completed(began, ec, n, off)) break;
    }
  };
  run.start();
  for (std::size_t i = 0; i < p.qd; ++i) {
    asio::co_spawn(ctx, worker(i), [&](std::exception_ptr e) { run.failed(e); });
  }
  ctx.run();
  driver.backend().forget_fd(f.fd());
  run_result r = run.finish(name);
  r.api = "asio";
  return r;
}

run_result run_asio_file_workload(const workload_params& p, const file& f) {
#if defined(BOOST_ASIO_HAS_FILE)
  asio::io_context ctx(1);
  // Asio runs one read (and one write) at a time per file object and queues
  // the rest behind it, so one object would measure QD1 whatever --qd says.
  // Each coroutine gets its own object over its own descriptor of the file.
  std::vector<asio::random_access_file> files;
  files.reserve(p.qd);
  for (std::size_t i = 0; i < p.qd; ++i) {
    const int fd = ::fcntl(f.fd(), F_DUPFD_CLOEXEC, 0);  // each Asio file closes its own
    if (fd < 0) throw std::system_error(errno, std::system_category(), "duplicating the test file's fd");
    files.emplace_back(ctx, fd);
  }
  coroutine_run run(p, f.alignment().memory);
  const bool writing = is_write(p.rw);

  auto worker = [&](std::size_t slot) -> asio::awaitable<void> {
    const asio::mutable_buffer buf = run.buffer(slot);
    asio::random_access_file& rf = files[slot];
    while (!run.stopping()) {
      const std::uint64_t off = run.next_offset();
      const std::uint64_t began = now_ns();
      auto [ec, n] = writing
                         ? co_await rf.async_write_some_at(off, asio::const_buffer(buf), asio::as_tuple(asio::use_awaitable))
                         : co_await rf.async_read_some_at(off, buf, asio::as_tuple(asio::use_awaitable));
      if (!run.completed(began, ec, n, off)) break;
    }
  };
  run.start();
  for (std::size_t i = 0; i < p.qd; ++i) {
    asio::co_spawn(ctx, worker(i), [&](std::exception_ptr e) { run.failed(e); });
  }
  ctx.run();
  run_result r = run.finish("asio-file");
  r.api = "asio-file";
  return r;
#else
  (void)p;
  (void)f;
  throw usage_error(
      "--api asio-file: this build's Boost.Asio has no file support (it needs BOOST_ASIO_HAS_IO_URING and liburing)");
#endif
}

}  // namespace pageio::bench
