// The write-ahead log for event-loop users: wait for durability through an
// Asio completion token instead of blocking a thread.
//
//   lsn_t lsn = wal.append(record);
//   auto [ec] = co_await pageio::wal::async_flush(wal, lsn, executor, boost::asio::as_tuple(boost::asio::use_awaitable));
//
// Completes with void(std::error_code): empty once every record up to `lsn`
// is durable, the log's failure otherwise (std::errc::operation_canceled if
// the log was closed first). The handler runs on its associated executor
// (default: `ex`), never inside async_flush itself. The log's flusher thread
// posts the completion into that executor's context, and may still be
// inside that post() when the handler has run: destroy the log before the
// context (declare the context first).
#pragma once

#include <pageio/wal/log.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <memory>
#include <system_error>
#include <utility>

namespace pageio::wal {

template <typename Executor, typename Token>
auto async_flush(log& wal, lsn_t lsn, const Executor& ex, Token&& token) {
  return boost::asio::async_initiate<Token, void(std::error_code)>(
      [&wal, lsn, ex](auto handler) {
        using handler_t = decltype(handler);
        auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler, ex));
        // std::function needs a copyable callable: the handler lives in a shared state.
        struct state {
          handler_t h;
          decltype(work) w;
        };
        auto st = std::make_shared<state>(state{std::move(handler), std::move(work)});
        wal.when_durable(lsn, [st](std::error_code ec) {
          auto hex = st->w.get_executor();
          boost::asio::post(hex, [st, ec]() mutable {
            handler_t h = std::move(st->h);
            st->w.reset();
            std::move(h)(ec);
          });
        });
      },
      token);
}

}  // namespace pageio::wal
