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
// which may wait up to pin_wait for one (longer while write-backs hold
// frames for their writes, up to stall_wait_factor x pin_wait).
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

// A pin taken for an asynchronous fetch's handler, moved along with it.
// Dropped with it unless release()d to the handler; if it still owned the page's read
// (read_finished() never called), the read ends as cancelled first, so the
// fetches waiting for it get ECANCELED and a later fetch reads it afresh.
class frame_hold {
 public:
  frame_hold(buffer_pool* p, frame* f, bool owns_read, std::uint32_t stripe) noexcept
      : p_(p), f_(f), owns_read_(owns_read), stripe_(stripe) {}
  frame_hold(frame_hold&& o) noexcept : p_(o.p_), f_(o.f_), owns_read_(o.owns_read_), stripe_(o.stripe_) {
    o.f_ = nullptr;
  }
  frame_hold(const frame_hold&) = delete;
  frame_hold& operator=(const frame_hold&) = delete;
  frame_hold& operator=(frame_hold&&) = delete;
  ~frame_hold() {
    if (f_ != nullptr) p_->abandon_async_fetch(f_, owns_read_, stripe_);
  }
  frame* read_finished() noexcept {
    owns_read_ = false;
    return f_;
  }
  frame* release() noexcept {
    frame* f = f_;
    f_ = nullptr;
    return f;
  }
  std::uint32_t stripe() const noexcept { return stripe_; }

 private:
  buffer_pool* p_;
  frame* f_;
  bool owns_read_;
  std::uint32_t stripe_;  // where the pin is counted (begin_result::stripe)
};

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
    // The pin begin_fetch took for the handler, owned by whatever holds the
    // handler until it runs: a handler destroyed unrun (its io_context went
    // away first) drops it, and a read it owned then ends as cancelled, so
    // no frame stays pinned or loading for ever.
    // Moved with the handler: no allocation for it.
    frame_hold hold(p, r.f, r.k == buffer_pool::begin_result::kind::must_read, r.stripe);
    // Hands the handler its page or the read's error.
    auto deliver = [p](handler_t& h, frame_hold& held) {
      const std::uint32_t stripe = held.stripe();
      frame* f = held.release();
      if (p->frame_ready(f)) {
        std::move(h)(std::error_code(), p->make_ref(f, stripe));
      } else {
        std::string what;
        const std::error_code ec = p->take_failure(f, &what);
        std::move(h)(ec, page_ref());
      }
    };
    switch (r.k) {
      case buffer_pool::begin_result::kind::ready:
        boost::asio::post(ex, [h = handler_t(std::forward<Handler>(handler)), hold = std::move(hold),
                               deliver]() mutable { deliver(h, hold); });
        return;
      case buffer_pool::begin_result::kind::loading: {
        // Another fetch is reading the page, perhaps on another thread: until
        // it is done, the handler's executor must count this as work, or
        // its io_context::run() would return with the fetch unfinished.
        // std::function needs a copyable callable: the handler may be move-only.
        auto shared = std::make_shared<handler_t>(std::forward<Handler>(handler));
        auto work = boost::asio::prefer(ex, boost::asio::execution::outstanding_work.tracked);
        auto held = std::make_shared<frame_hold>(std::move(hold));
        p->on_ready(r.f, [shared, work, held, deliver]() {
          boost::asio::post(work, [shared, held, deliver]() mutable { deliver(*shared, *held); });
        });
        return;
      }
      case buffer_pool::begin_result::kind::must_read: {
        pageio::detail::asio_io_args a;
        a.op = op_code::read;
        try {
          a.fd = p->fd_of(id.file);
        } catch (const std::exception&) {
          p->complete_async_read(hold.read_finished(), -EBADF);
          boost::asio::post(ex, [h = handler_t(std::forward<Handler>(handler)), hold = std::move(hold),
                                 deliver]() mutable { deliver(h, hold); });
          return;
        }
        a.offset = id.page * page_size;
        a.buf = p->frame_data(r.f);
        a.length = page_size;
        // The driver counts the read as work on its own executor; the
        // handler's may be another one.
        auto work = boost::asio::prefer(ex, boost::asio::execution::outstanding_work.tracked);
        driver->async_io(std::move(a), [h = handler_t(std::forward<Handler>(handler)), p,
                                        hold = std::move(hold), work, deliver](std::error_code ec,
                                                                                std::size_t n) mutable {
          p->complete_async_read(hold.read_finished(),
                                 ec ? -static_cast<std::int64_t>(ec.value()) : static_cast<std::int64_t>(n));
          boost::asio::dispatch(work, [h = std::move(h), hold = std::move(hold), deliver]() mutable {
            deliver(h, hold);
          });
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
