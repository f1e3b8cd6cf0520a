// Internals of pageio/engine/asio.hpp: the heap object behind one
// asynchronous operation. Not part of the public interface.
#pragma once

#include <pageio/engine/request.hpp>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/intrusive/list.hpp>

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace pageio {

class asio_driver;

namespace detail {

// What an operation asks of the backend, gathered before it is started.
struct asio_io_args {
  op_code op = op_code::read;
  int fd = -1;
  std::uint64_t offset = 0;
  io_flags flags = io_flags::none;
  // read/write: one buffer; readv/writev: the vector (copied into the op).
  void* buf = nullptr;
  std::size_t length = 0;
  std::vector<iovec> iov;
  // Set when the arguments cannot be submitted at all (checked at initiation).
  int invalid_errno = 0;
};

// The part of an operation the driver handles without knowing the handler's
// type: the backend request, the links the driver keeps, and two entry points
// into the typed part.
struct asio_op_base {
  // How an operation ends: its handler is invoked (dispatched inline when the
  // driver is running completions, posted otherwise) or destroyed unrun (the
  // execution context is shutting down, Asio's rule for pending handlers).
  enum class finish { dispatch, post, destroy };
  using finish_fn = void (*)(asio_op_base*, finish) noexcept;

  io_request req;
  boost::intrusive::list_member_hook<> live_hook;  // in asio_driver::pending_ or live_
  bool in_backend = false;                         // live_: the backend holds `req`
  asio_driver* driver = nullptr;
  finish_fn finish_op = nullptr;
  // Cancellation types this operation honours: a read has no side effects
  // and accepts every type; a write or flush stopped midway may have had some.
  boost::asio::cancellation_type_t cancellable = boost::asio::cancellation_type::all;
  // readv/writev: the op's own copy of the caller's buffer sequence.
  std::vector<iovec> iov;
};

using asio_op_list = boost::intrusive::list<
    asio_op_base,
    boost::intrusive::member_hook<asio_op_base, boost::intrusive::list_member_hook<>, &asio_op_base::live_hook>,
    boost::intrusive::constant_time_size<true>>;

// Handed to the handler's cancellation slot: forwards a cancellation request
// to the backend (io_cancel, an io_uring cancel, or dequeuing a request the
// backend has not started). Defined in asio.hpp, where the driver is complete.
struct asio_cancel_handler {
  // A constructor, not an aggregate: the slot builds it with parentheses,
  // which clang before 16 does not accept for aggregates.
  explicit asio_cancel_handler(asio_op_base* o) noexcept : op(o) {}
  asio_op_base* op;
  void operator()(boost::asio::cancellation_type_t type);
};

// One operation with its completion handler. It lives in memory from the
// handler's associated allocator (Asio's recycling allocator by default), and
// gives that memory back before the handler runs so that a handler starting
// the next operation can reuse it.
template <typename Handler, typename IoExecutor>
struct asio_op final : asio_op_base {
  using handler_executor = boost::asio::associated_executor_t<Handler, IoExecutor>;
  using allocator_type =
      typename std::allocator_traits<boost::asio::associated_allocator_t<
          Handler, boost::asio::recycling_allocator<void>>>::template rebind_alloc<asio_op>;

  Handler handler;
  // Keeps the handler's executor (and its io_context's run()) busy until the
  // handler has run.
  boost::asio::executor_work_guard<handler_executor> work;

  template <typename H>
  asio_op(H&& h, const IoExecutor& io_ex)
      : handler(std::forward<H>(h)), work(boost::asio::get_associated_executor(handler, io_ex)) {
    finish_op = &asio_op::do_finish;
  }

  // `h` is moved from or copied (a token used as an lvalue is copied).
  template <typename H>
  static asio_op* create(H&& h, const IoExecutor& io_ex) {
    allocator_type alloc(boost::asio::get_associated_allocator(h, boost::asio::recycling_allocator<void>()));
    asio_op* mem = std::allocator_traits<allocator_type>::allocate(alloc, 1);
    try {
      return ::new (static_cast<void*>(mem)) asio_op(std::forward<H>(h), io_ex);
    } catch (...) {
      std::allocator_traits<allocator_type>::deallocate(alloc, mem, 1);
      throw;
    }
  }

  static void do_finish(asio_op_base* base, finish how) noexcept {
    auto* self = static_cast<asio_op*>(base);
    boost::asio::get_associated_cancellation_slot(self->handler).clear();
    const std::int64_t res = self->req.result;
    // Move what the invocation needs out, then free the operation first.
    Handler h(std::move(self->handler));
    boost::asio::executor_work_guard<handler_executor> w(std::move(self->work));
    allocator_type alloc(boost::asio::get_associated_allocator(h, boost::asio::recycling_allocator<void>()));
    self->~asio_op();
    std::allocator_traits<allocator_type>::deallocate(alloc, self, 1);
    if (how == finish::destroy) return;  // `h` and `w` are destroyed unrun

    const std::error_code ec = result_code(res);
    const std::size_t n = res < 0 ? 0 : static_cast<std::size_t>(res);
    auto call = [h = std::move(h), ec, n]() mutable { std::move(h)(ec, n); };
    const handler_executor ex = w.get_executor();
    if (how == finish::dispatch) {
      boost::asio::dispatch(ex, std::move(call));
    } else {
      boost::asio::post(ex, std::move(call));
    }
  }
};

}  // namespace detail
}  // namespace pageio
