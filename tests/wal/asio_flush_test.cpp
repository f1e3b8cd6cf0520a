// pageio::wal::async_flush: coroutines wait for durability without blocking
// the event loop thread; failures arrive as the log's error.
#include <pageio/engine/fault_backend.hpp>
#include <pageio/wal/asio.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <gtest/gtest.h>

#include <string>

#include "log_dir_fixture.hpp"
#include "support/test_dir.hpp"

namespace pageio::wal {
namespace {

namespace asio = boost::asio;

class wal_asio_test : public test_support::log_dir_test {
 protected:
  void SetUp() override {
    log_dir_test::SetUp();
    if (IsSkipped()) return;
    opts_.segment_bytes = 16 * 4096;
  }
};

TEST_F(wal_asio_test, ManyCoroutinesAwaitTheirCommits) {
  // The context outlives the log: the flusher posts completions into it from
  // its own thread, and may still be inside post() when run() returns.
  asio::io_context ctx;
  log w(opts_);
  int durable = 0;
  for (int i = 0; i < 200; ++i) {
    asio::co_spawn(
        ctx,
        [&, i]() -> asio::awaitable<void> {
          const std::string rec = "coroutine record " + std::to_string(i);
          const lsn_t lsn = w.append(std::as_bytes(std::span(rec)));
          auto [ec] = co_await async_flush(w, lsn, ctx.get_executor(), asio::as_tuple(asio::use_awaitable));
          EXPECT_FALSE(ec) << ec.message();
          EXPECT_GE(w.durable_lsn(), lsn);
          ++durable;
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
  }
  ctx.run();
  EXPECT_EQ(durable, 200);
}

TEST_F(wal_asio_test, AFailureReachesTheAwaitingHandler) {
  fault_backend* fb = nullptr;
  opts_.make_backend = [&]() -> std::unique_ptr<io_backend> {
    auto f = std::make_unique<fault_backend>(make_backend("sync"));
    fb = f.get();
    return f;
  };
  asio::io_context ctx;  // outlives the log, whose flusher posts into it
  log w(opts_);
  fb->fail_next(fault_target::write, ENOSPC, 100);
  std::error_code got;
  int calls = 0;
  const std::string rec = "doomed";
  const lsn_t lsn = w.append(std::as_bytes(std::span(rec)));
  async_flush(w, lsn, ctx.get_executor(), [&](std::error_code ec) {
    ++calls;
    got = ec;
  });
  ctx.run();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got, std::error_code(ENOSPC, std::system_category())) << got.message();
}

}  // namespace
}  // namespace pageio::wal
