// pageio::asio_driver and pageio::async_file on every backend: each kind of
// completion token, buffer sequences, errors, cancellation, many concurrent
// coroutines, a strand on a multi-threaded io_context, and shutdown with I/O
// in flight.
#include <pageio/engine/asio.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>
#include <tuple>
#include <vector>

#include "backend_fixture.hpp"

namespace pageio::test {
namespace {

namespace asio = boost::asio;

constexpr std::size_t page = 4096;

// Rethrows an exception that escaped a coroutine, so that the test sees it.
void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

class asio_test : public backend_test {
 protected:
  // Hands the fixture's backend (or one built with `opts`) to a driver on ctx_.
  void start_driver(std::optional<backend_options> opts = std::nullopt) {
    if (opts) remake(*opts);
    driver_ = std::make_unique<asio_driver>(ctx_, std::move(backend_));
  }

  asio::io_context ctx_;
  std::unique_ptr<asio_driver> driver_;
};

TEST_P(asio_test, CallbackTokenReadsThePage) {
  start_driver();
  async_file f(*driver_, make_file("cb.dat", 16 * page, 7));
  aligned_buffer buf(page, page);
  int calls = 0;
  std::error_code got_ec;
  std::size_t got_n = 0;
  f.async_read_at(3 * page, asio::buffer(buf.data(), page), [&](std::error_code ec, std::size_t n) {
    ++calls;
    got_ec = ec;
    got_n = n;
  });
  EXPECT_EQ(calls, 0) << "a handler must not run inside the initiating function";
  ctx_.run();
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(got_ec) << got_ec.message();
  EXPECT_EQ(got_n, page);
  EXPECT_TRUE(has_pattern(buf.data(), page, 3 * page, 7));
  EXPECT_EQ(driver_->outstanding(), 0u);
}

TEST_P(asio_test, UseFutureTokenFromAnotherThread) {
  start_driver();
  async_file f(*driver_, make_file("future.dat", 8 * page, 3));
  aligned_buffer buf(2 * page, page);
  auto guard = asio::make_work_guard(ctx_);
  std::thread runner([&] { ctx_.run(); });
  // Started on this thread; the driver runs it on the io_context's thread.
  std::future<std::tuple<std::error_code, std::size_t>> fut =
      f.async_read_at(2 * page, asio::buffer(buf.data(), 2 * page), asio::use_future);
  auto [ec, n] = fut.get();
  guard.reset();
  runner.join();
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(n, 2 * page);
  EXPECT_TRUE(has_pattern(buf.data(), 2 * page, 2 * page, 3));
}

TEST_P(asio_test, UseAwaitableWritesThenReadsBack) {
  start_driver();
  async_file f(*driver_, make_file("await.dat", 8 * page, 1));
  aligned_buffer out(page, page), in(page, page);
  fill_pattern(out.data(), page, 5 * page, 99);
  bool finished = false;
  asio::co_spawn(
      ctx_,
      [&]() -> asio::awaitable<void> {
        auto [wec, wn] = co_await f.async_write_at(5 * page, asio::buffer(out.data(), page), asio::use_awaitable);
        EXPECT_FALSE(wec) << wec.message();
        EXPECT_EQ(wn, page);
        auto [sec, sn] = co_await f.async_fdatasync(asio::use_awaitable);
        EXPECT_FALSE(sec) << sec.message();
        EXPECT_EQ(sn, 0u);
        auto [rec, rn] = co_await f.async_read_at(5 * page, asio::buffer(in.data(), page), asio::use_awaitable);
        EXPECT_FALSE(rec) << rec.message();
        EXPECT_EQ(rn, page);
        finished = true;
      },
      rethrow);
  ctx_.run();
  EXPECT_TRUE(finished);
  EXPECT_TRUE(has_pattern(in.data(), page, 5 * page, 99));
}

TEST_P(asio_test, DeferredTokenStartsOnlyWhenInvoked) {
  start_driver();
  async_file f(*driver_, make_file("deferred.dat", 4 * page, 11));
  aligned_buffer buf(page, page);
  auto op = f.async_read_at(page, asio::buffer(buf.data(), page), asio::deferred);
  EXPECT_EQ(driver_->outstanding(), 0u) << "deferred: nothing may start before the operation is invoked";
  int calls = 0;
  std::move(op)([&](std::error_code ec, std::size_t n) {
    ++calls;
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(n, page);
  });
  ctx_.run();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(has_pattern(buf.data(), page, page, 11));
}

TEST_P(asio_test, BufferSequencesBecomeReadvAndWritev) {
  start_driver();
  async_file f(*driver_, make_file("vec.dat", 16 * page, 2));
  aligned_buffer a(page, page), b(2 * page, page), c(page, page);
  fill_pattern(a.data(), page, 4 * page, 42);
  fill_pattern(b.data(), 2 * page, 5 * page, 42);
  fill_pattern(c.data(), page, 7 * page, 42);
  // An empty buffer in the middle is skipped, not sent as a zero-length iovec.
  const std::array<asio::const_buffer, 4> out{asio::buffer(a.data(), page), asio::const_buffer(),
                                              asio::buffer(b.data(), 2 * page), asio::buffer(c.data(), page)};
  std::size_t written = 0, read = 0;
  f.async_write_at(4 * page, out, [&](std::error_code ec, std::size_t n) {
    ASSERT_FALSE(ec) << ec.message();
    written = n;
  });
  ctx_.run();
  EXPECT_EQ(written, 4 * page);

  aligned_buffer in1(3 * page, page), in2(page, page);
  const std::array<asio::mutable_buffer, 2> into{asio::buffer(in1.data(), 3 * page), asio::buffer(in2.data(), page)};
  f.async_read_at(4 * page, into, [&](std::error_code ec, std::size_t n) {
    ASSERT_FALSE(ec) << ec.message();
    read = n;
  });
  ctx_.restart();
  ctx_.run();
  EXPECT_EQ(read, 4 * page);
  EXPECT_TRUE(has_pattern(in1.data(), 3 * page, 4 * page, 42));
  EXPECT_TRUE(has_pattern(in2.data(), page, 7 * page, 42));
}

TEST_P(asio_test, FlushesAndDsyncWritesComplete) {
  start_driver();
  async_file f(*driver_, make_file("sync.dat", 4 * page, 5));
  aligned_buffer buf(page, page);
  fill_pattern(buf.data(), page, 0, 8);
  // They run concurrently and may finish in any order.
  std::array<std::vector<std::tuple<std::error_code, std::size_t>>, 3> results;
  auto record = [&](int which) {
    return [&results, which](std::error_code ec, std::size_t n) { results[which].emplace_back(ec, n); };
  };
  f.async_write_dsync_at(0, asio::buffer(buf.data(), page), record(0));
  f.async_fdatasync(record(1));
  f.async_fsync(record(2));
  ctx_.run();
  using one = std::vector<std::tuple<std::error_code, std::size_t>>;
  EXPECT_EQ(results[0], one{std::make_tuple(std::error_code(), page)});
  EXPECT_EQ(results[1], one{std::make_tuple(std::error_code(), std::size_t{0})});
  EXPECT_EQ(results[2], one{std::make_tuple(std::error_code(), std::size_t{0})});
}

TEST_P(asio_test, ReadAtEndOfFileIsShortWithoutError) {
  start_driver();
  async_file f(*driver_, make_file("eof.dat", 3 * page, 6));
  aligned_buffer buf(2 * page, page);
  std::error_code got_ec = make_error_code(std::errc::io_error);
  std::size_t got_n = 99;
  f.async_read_at(2 * page, asio::buffer(buf.data(), 2 * page), [&](std::error_code ec, std::size_t n) {
    got_ec = ec;
    got_n = n;
  });
  ctx_.run();
  EXPECT_FALSE(got_ec) << got_ec.message();
  EXPECT_EQ(got_n, page);
  EXPECT_TRUE(has_pattern(buf.data(), page, 2 * page, 6));
}

TEST_P(asio_test, ErrorsArriveAsErrnoInTheSystemCategory) {
  start_driver();
  file good = make_file("err.dat", 4 * page, 1);
  aligned_buffer buf(2 * page, page);
  std::vector<std::error_code> errors;
  auto record = [&](std::error_code ec, std::size_t n) {
    errors.push_back(ec);
    EXPECT_EQ(n, 0u);
  };

  // A closed descriptor.
  const int closed_fd = ::dup(good.fd());
  ASSERT_GE(closed_fd, 0);
  ::close(closed_fd);
  async_file closed(*driver_, closed_fd);
  closed.async_read_at(0, asio::buffer(buf.data(), page), record);

  // A misaligned buffer under O_DIRECT.
  async_file f(*driver_, std::move(good));
  f.async_read_at(0, asio::buffer(buf.data() + 1, page), record);

  // More buffers than one readv takes: refused at initiation, still posted.
  std::vector<asio::mutable_buffer> many(IOV_MAX + 1, asio::buffer(buf.data(), 1));
  f.async_read_at(0, many, record);

  ctx_.run();
  ASSERT_EQ(errors.size(), 3u);
  // The refusal comes first: it never reached the backend.
  std::sort(errors.begin(), errors.end(), [](auto& a, auto& b) { return a.value() < b.value(); });
  for (const auto& ec : errors) EXPECT_EQ(&ec.category(), &std::system_category());
  EXPECT_EQ(errors[0].value(), EBADF) << errors[0].message();
  EXPECT_EQ(errors[1].value(), EINVAL) << errors[1].message();
  EXPECT_EQ(errors[2].value(), EINVAL) << errors[2].message();
}

TEST_P(asio_test, CancellingBeforeTheOperationStartsCompletesWithOperationAborted) {
  // Started and cancelled in the same handler: the read never reaches the
  // backend (on sync, which runs I/O at submit, this is the only window).
  start_driver();
  async_file f(*driver_, make_file("early.dat", 4 * page, 4));
  aligned_buffer buf(2 * page, page);
  asio::cancellation_signal sig;
  std::vector<std::pair<int, std::error_code>> done;
  asio::post(ctx_, [&] {
    f.async_read_at(0, asio::buffer(buf.data(), page),
                    [&](std::error_code ec, std::size_t) { done.emplace_back(1, ec); });
    f.async_read_at(page, asio::buffer(buf.data() + page, page),
                    asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec, std::size_t n) {
                      done.emplace_back(2, ec);
                      EXPECT_EQ(n, 0u);
                    }));
    sig.emit(asio::cancellation_type::terminal);
    EXPECT_TRUE(done.empty()) << "a cancelled handler is posted, not run inside emit()";
  });
  ctx_.run();
  ASSERT_EQ(done.size(), 2u);
  for (auto& [which, ec] : done) {
    if (which == 1) {
      EXPECT_FALSE(ec) << ec.message();
    } else {
      EXPECT_EQ(ec, std::errc::operation_canceled) << ec.message();
    }
  }
  EXPECT_TRUE(has_pattern(buf.data(), page, 0, 4));
}

TEST_P(asio_test, CancellingAQueuedReadCompletesWithOperationAborted) {
  if (GetParam() == "sync") GTEST_SKIP() << "sync runs each request at submit: nothing waits in its queue";
  backend_options opts;
  opts.queue_depth = 1;  // the second read waits inside the backend
  start_driver(opts);
  async_file f(*driver_, make_file("cancel.dat", 8 * page, 4));
  aligned_buffer buf(2 * page, page);
  // The premise: after poll() the first read is still in the kernel, so the
  // second still waits in the backend's queue. A fast disk (or a slow,
  // loaded machine) can complete the first read inside poll(), and the
  // driver then hands the second one to the kernel, where it can no longer
  // be cancelled; that attempt proves nothing and is run again.
  for (int attempt = 0; attempt < 50; ++attempt) {
    asio::cancellation_signal first_sig, second_sig;
    std::vector<std::pair<int, std::error_code>> done;
    std::size_t second_bytes = 0;
    f.async_read_at(0, asio::buffer(buf.data(), page),
                    asio::bind_cancellation_slot(first_sig.slot(), [&](std::error_code ec, std::size_t) {
                      done.emplace_back(1, ec);
                    }));
    f.async_read_at(page, asio::buffer(buf.data() + page, page),
                    asio::bind_cancellation_slot(second_sig.slot(), [&](std::error_code ec, std::size_t n) {
                      done.emplace_back(2, ec);
                      second_bytes = n;
                    }));
    ctx_.poll();  // both initiations have run: the first is in the kernel, the second queued
    const bool premise = done.empty();
    second_sig.emit(asio::cancellation_type::terminal);
    ctx_.run();
    ctx_.restart();
    ASSERT_EQ(done.size(), 2u);
    if (!premise) continue;
    for (auto& [which, ec] : done) {
      if (which == 1) {
        EXPECT_FALSE(ec) << ec.message();
      } else {
        EXPECT_EQ(ec, std::errc::operation_canceled) << ec.message();
        EXPECT_EQ(ec.value(), ECANCELED);
        EXPECT_EQ(&ec.category(), &std::system_category());
        EXPECT_EQ(second_bytes, 0u);
      }
    }
    EXPECT_TRUE(has_pattern(buf.data(), page, 0, 4));
    return;
  }
  GTEST_SKIP() << "in 50 attempts the first read always completed inside poll(): the queued case never arose here";
}

TEST_P(asio_test, CancellingAnInFlightReadCompletesOnceEitherWay) {
  start_driver();
  async_file f(*driver_, make_file("inflight.dat", 64 * page, 9));
  constexpr int n_reads = 32;
  aligned_buffer buf(n_reads * page, page);
  std::array<asio::cancellation_signal, n_reads> sigs;
  std::array<int, n_reads> calls{};
  std::array<std::error_code, n_reads> ecs;
  for (int i = 0; i < n_reads; ++i) {
    f.async_read_at(static_cast<std::uint64_t>(2 * i) * page, asio::buffer(buf.data() + i * page, page),
                    asio::bind_cancellation_slot(sigs[i].slot(), [&, i](std::error_code ec, std::size_t n) {
                      ++calls[i];
                      ecs[i] = ec;
                      if (!ec) {
                        EXPECT_EQ(n, page);
                      }
                    }));
  }
  ctx_.poll();
  for (auto& s : sigs) s.emit(asio::cancellation_type::terminal);
  ctx_.run();
  int cancelled = 0;
  for (int i = 0; i < n_reads; ++i) {
    EXPECT_EQ(calls[i], 1) << "read " << i;
    if (ecs[i]) {
      EXPECT_EQ(ecs[i], std::errc::operation_canceled) << ecs[i].message();
      ++cancelled;
    } else {
      // Too late to cancel: the data must be complete and right.
      EXPECT_TRUE(has_pattern(buf.data() + i * page, page, static_cast<std::uint64_t>(2 * i) * page, 9));
    }
  }
  std::printf("[          ] %s: %d of %d in-flight reads were cancelled, the rest had finished\n",
              GetParam().c_str(), cancelled, n_reads);
}

TEST_P(asio_test, WritesIgnoreTotalCancellation) {
  start_driver();
  async_file f(*driver_, make_file("wtotal.dat", 4 * page, 1));
  aligned_buffer buf(page, page);
  fill_pattern(buf.data(), page, 0, 77);
  asio::cancellation_signal sig;
  std::error_code got = make_error_code(std::errc::io_error);
  f.async_write_at(0, asio::buffer(buf.data(), page),
                   asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec, std::size_t) { got = ec; }));
  ctx_.poll();
  // "total" promises no side effects, which a write stopped midway cannot
  // keep: the write goes on.
  sig.emit(asio::cancellation_type::total);
  ctx_.run();
  EXPECT_FALSE(got) << got.message();
}

TEST_P(asio_test, TenThousandConcurrentCoroutineReads) {
  start_driver();
  constexpr std::size_t pages_in_file = 1024;
  constexpr int coroutines = 10'000;
  async_file f(*driver_, make_file("many.dat", pages_in_file * page, 21));
  aligned_buffer arena(static_cast<std::size_t>(coroutines) * page, page);
  int ok = 0;
  for (int i = 0; i < coroutines; ++i) {
    asio::co_spawn(
        ctx_,
        [&, i]() -> asio::awaitable<void> {
          const std::uint64_t off = static_cast<std::uint64_t>(i % pages_in_file) * page;
          std::byte* dst = arena.data() + static_cast<std::size_t>(i) * page;
          auto [ec, n] = co_await f.async_read_at(off, asio::buffer(dst, page), asio::use_awaitable);
          if (!ec && n == page && has_pattern(dst, page, off, 21)) ++ok;
        },
        rethrow);
  }
  ctx_.run();
  EXPECT_EQ(ok, coroutines);
  EXPECT_EQ(driver_->outstanding(), 0u);
}

TEST_P(asio_test, StrandOnAMultiThreadedContext) {
  // The driver's own work is serialised by a strand; coroutines run on any
  // of four threads and start reads from there.
  remake(backend_options{});
  driver_ = std::make_unique<asio_driver>(asio::make_strand(ctx_), std::move(backend_));
  constexpr std::size_t pages_in_file = 256;
  constexpr int coroutines = 64, reads_each = 50;
  async_file f(*driver_, make_file("strand.dat", pages_in_file * page, 13));
  aligned_buffer arena(coroutines * page, page);
  std::atomic<int> ok{0};
  for (int c = 0; c < coroutines; ++c) {
    asio::co_spawn(
        ctx_,
        [&, c]() -> asio::awaitable<void> {
          std::byte* dst = arena.data() + static_cast<std::size_t>(c) * page;
          for (int k = 0; k < reads_each; ++k) {
            const std::uint64_t off = static_cast<std::uint64_t>((c * 7 + k * 13) % pages_in_file) * page;
            auto [ec, n] = co_await f.async_read_at(off, asio::buffer(dst, page), asio::use_awaitable);
            if (!ec && n == page && has_pattern(dst, page, off, 13)) ok.fetch_add(1, std::memory_order_relaxed);
          }
        },
        rethrow);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&] { ctx_.run(); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), coroutines * reads_each);
}

TEST_P(asio_test, CancellingAReadTheKernelHoldsOnUring) {
  // A read from an empty pipe never finishes by itself: only a cancellation
  // in the kernel (IORING_OP_ASYNC_CANCEL) can end it. aio refuses pipes and
  // sync would block in submit, so this is uring's.
  if (GetParam() != "uring") GTEST_SKIP() << "needs a request the kernel holds indefinitely: uring only";
  start_driver();
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  async_file reader(*driver_, fds[0]);
  char byte = 0;
  asio::cancellation_signal sig;
  std::error_code got;
  int calls = 0;
  reader.async_read_at(0, asio::buffer(&byte, 1),
                       asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec, std::size_t n) {
                         ++calls;
                         got = ec;
                         EXPECT_EQ(n, 0u);
                       }));
  // Let it reach the kernel, then cancel it from another handler.
  asio::steady_timer timer(ctx_, std::chrono::milliseconds(20));
  timer.async_wait([&](boost::system::error_code) { sig.emit(asio::cancellation_type::terminal); });
  ctx_.run();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got, std::errc::operation_canceled) << got.message();
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_P(asio_test, StartedFromAnotherThreadAfterTheDriverIsGone) {
  start_driver();
  file data = make_file("late.dat", 4 * page, 1);
  aligned_buffer buf(page, page);
  std::error_code got;
  {
    async_file f(*driver_, data.fd());
    // From a thread that is not running ctx_: the start is queued on it.
    std::thread([&] {
      f.async_read_at(0, asio::buffer(buf.data(), page), [&](std::error_code ec, std::size_t) { got = ec; });
    }).join();
  }
  driver_.reset();
  ctx_.run();
  EXPECT_EQ(got, std::errc::operation_canceled) << got.message();
}

// Counts how many handlers were destroyed without being invoked.
struct handler_probe {
  std::shared_ptr<int> token;  // its use_count tells how many copies are alive
  int* invoked;
  void operator()(std::error_code, std::size_t) { ++*invoked; }
};

TEST_P(asio_test, DestroyingTheDriverWithReadsInFlightPostsEveryHandler) {
  start_driver();
  file data = make_file("destroy.dat", 64 * page, 17);
  constexpr int n_reads = 48;  // more than in a small queue: some wait in the backend
  aligned_buffer buf(n_reads * page, page);
  std::vector<std::error_code> ecs;
  {
    async_file f(*driver_, data.fd());  // borrows: the file stays open until the test ends
    asio::post(ctx_, [&] {
      for (int i = 0; i < n_reads; ++i) {
        const std::uint64_t off = static_cast<std::uint64_t>(i) * page;
        std::byte* dst = buf.data() + i * page;
        f.async_read_at(off, asio::buffer(dst, page), [&ecs, dst, off](std::error_code ec, std::size_t n) {
          ecs.push_back(ec);
          if (!ec) {
            EXPECT_EQ(n, page);
            EXPECT_TRUE(has_pattern(dst, page, off, 17));
          }
        });
      }
    });
    // Run the initiations and the flush, not the completions.
    for (int i = 0; i < 2 && ctx_.run_one() > 0;) ++i;
  }
  const std::size_t before = ecs.size();
  driver_.reset();  // cancels, waits for the kernel, posts the handlers
  EXPECT_EQ(ecs.size(), before) << "handlers must be posted, not run inside the destructor";
  ctx_.run();
  ASSERT_EQ(ecs.size(), static_cast<std::size_t>(n_reads));
  for (const auto& ec : ecs) {
    if (ec) {
      EXPECT_EQ(ec, std::errc::operation_canceled) << ec.message();
    }
  }
}

TEST_P(asio_test, DestroyingTheContextWithReadsInFlightDestroysHandlersUnrun) {
  auto ctx = std::make_unique<asio::io_context>();
  remake(backend_options{});
  auto driver = std::make_unique<asio_driver>(*ctx, std::move(backend_));
  file data = make_file("ctxgone.dat", 64 * page, 19);
  async_file f(*driver, data.fd());  // borrows: nothing to do when it goes
  constexpr int n_reads = 32;
  aligned_buffer buf(n_reads * page, page);
  auto token = std::make_shared<int>(0);
  int invoked = 0;
  asio::post(*ctx, [&] {
    for (int i = 0; i < n_reads; ++i) {
      f.async_read_at(static_cast<std::uint64_t>(i) * page, asio::buffer(buf.data() + i * page, page),
                      handler_probe{token, &invoked});
    }
  });
  // Coroutines too: their frames are owned by their pending handlers.
  for (int i = 0; i < 8; ++i) {
    asio::co_spawn(
        *ctx,
        [&f, &buf, i, token]() -> asio::awaitable<void> {
          co_await f.async_read_at(static_cast<std::uint64_t>(i) * page, asio::buffer(buf.data() + i * page, page),
                                   asio::use_awaitable);
        },
        asio::detached);
  }
  // Run the initiations (the posted one, eight coroutine starts) and the
  // flush that submits them, but no completion: on aio and uring the reads
  // are in the kernel, on sync they have run and wait for delivery.
  for (int i = 0; i < 10; ++i) ctx->run_one();
  EXPECT_GT(token.use_count(), 1);
  ctx.reset();  // shuts the driver down: cancels, drains, destroys the handlers
  EXPECT_EQ(invoked, 0);
  EXPECT_EQ(token.use_count(), 1) << "every pending handler and coroutine frame was destroyed";
  EXPECT_EQ(driver->outstanding(), 0u);
  driver.reset();  // after its context: must not touch the context's services
}

PAGEIO_INSTANTIATE_ON_ALL_BACKENDS(asio_test);

}  // namespace
}  // namespace pageio::test
