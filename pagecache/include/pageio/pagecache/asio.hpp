// Fetching pages with Boost.Asio completion tokens.
//
//   pageio::asio_driver drv(io, "uring");            // one per thread (or strand) that awaits pages
//   auto [ec, page] = co_await pageio::pagecache::async_fetch(
//       pool, drv, {file, n}, boost::asio::as_tuple(boost::asio::use_awaitable));
//
// The completion signature is void(std::error_code, page_ref). A hit
// completes at once (posted, never inline); a miss is read through `drv`'s
// backend, so 32 coroutines on one io_context keep 32 reads in flight in one
// ring; a page another fetch is already reading completes when that read
// does, on the handler's executor. Read errors arrive as the errno in the
// system category; every frame pinned for options::pin_wait gives
// std::errc::no_buffer_space. The frame is taken on the initiating thread,
// which may wait up to pin_wait for one.
#pragma once

#include <pageio/engine/asio.hpp>
#include <pageio/pagecache/buffer_pool.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/post.hpp>

#include <memory>
#include <utility>

namespace pageio::pagecache {

namespace detail {

struct initiate_fetch {
  buffer_pool* pool;
  asio_driver* driver;

  template <typename Handler>
  void operator()(Handler&& handler, page_id id) const {
    using handler_t = std::decay_t<Handler>;
    auto ex = boost::asio::get_associated_executor(handler, driver->get_executor());
    buffer_pool* p = pool;
    buffer_pool::begin_result r;
    try {
      r = p->begin_fetch(id);
    } catch (const pool_exhausted&) {
      boost::asio::post(ex, [h = handler_t(std::forward<Handler>(handler))]() mutable {
        std::move(h)(std::make_error_code(std::errc::no_buffer_space), page_ref());
      });
      return;
    } catch (const std::system_error& e) {
      boost::asio::post(ex, [h = handler_t(std::forward<Handler>(handler)), ec = e.code()]() mutable {
        std::move(h)(ec, page_ref());
      });
      return;
    }
    frame* f = r.f;
    // Hands the handler its page (pinned by begin_fetch) or the read's error.
    auto deliver = [p, f](handler_t& h) {
      std::string what;
      if (p->frame_ready(f)) {
        std::move(h)(std::error_code(), p->make_ref(f));
      } else {
        const std::error_code ec = p->take_failure(f, &what);
        std::move(h)(ec, page_ref());
      }
    };
    switch (r.k) {
      case buffer_pool::begin_result::kind::ready:
        boost::asio::post(ex, [h = handler_t(std::forward<Handler>(handler)), p, f]() mutable {
          std::move(h)(std::error_code(), p->make_ref(f));
        });
        return;
      case buffer_pool::begin_result::kind::loading: {
        // Another fetch is reading the page, perhaps on another thread: until
        // it is done, the handler's executor must count this as work, or
        // its io_context::run() would return with the fetch unfinished.
        // std::function needs a copyable callable: the handler may be move-only.
        auto shared = std::make_shared<handler_t>(std::forward<Handler>(handler));
        auto work = boost::asio::prefer(ex, boost::asio::execution::outstanding_work.tracked);
        p->on_ready(f, [shared, work, deliver]() {
          boost::asio::post(work, [shared, deliver]() mutable { deliver(*shared); });
        });
        return;
      }
      case buffer_pool::begin_result::kind::must_read: {
        pageio::detail::asio_io_args a;
        a.op = op_code::read;
        try {
          a.fd = p->fd_of(id.file);
        } catch (const std::exception&) {
          p->complete_async_read(f, -EBADF);
          boost::asio::post(ex, [h = handler_t(std::forward<Handler>(handler)), deliver]() mutable { deliver(h); });
          return;
        }
        a.offset = id.page * page_size;
        a.buf = p->frame_data(f);
        a.length = page_size;
        // The driver counts the read as work on its own executor; the
        // handler's may be another one.
        auto work = boost::asio::prefer(ex, boost::asio::execution::outstanding_work.tracked);
        driver->async_io(std::move(a), [h = handler_t(std::forward<Handler>(handler)), p, f, work,
                                        deliver](std::error_code ec, std::size_t n) mutable {
          p->complete_async_read(f, ec ? -static_cast<std::int64_t>(ec.value()) : static_cast<std::int64_t>(n));
          boost::asio::dispatch(work, [h = std::move(h), deliver]() mutable { deliver(h); });
        });
        return;
      }
    }
  }
};

}  // namespace detail

template <typename Token>
auto async_fetch(buffer_pool& pool, asio_driver& driver, page_id id, Token&& token) {
  return boost::asio::async_initiate<Token, void(std::error_code, page_ref)>(detail::initiate_fetch{&pool, &driver},
                                                                             token, id);
}

}  // namespace pageio::pagecache
