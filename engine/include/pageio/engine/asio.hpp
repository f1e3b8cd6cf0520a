// Boost.Asio integration: pageio I/O whose completions arrive in an
// io_context, in Asio's universal model.
//
//   boost::asio::io_context ctx;
//   pageio::asio_driver driver(ctx, "default");           // or "sync", "aio", "uring"
//   pageio::async_file f(driver, pageio::file::open(path, {.direct = true}));
//   auto [ec, n] = co_await f.async_read_at(offset, boost::asio::buffer(page), boost::asio::use_awaitable);
//
// Every operation completes with `void(std::error_code, std::size_t)`: the
// error is in std::system_category() with the errno (ECANCELED when it was
// cancelled, which compares equal to std::errc::operation_canceled), and the
// count follows pread/pwrite retried until done: bytes moved, short only when
// a read reaches end of file. Any completion token works (a callback,
// use_future, use_awaitable, deferred, as_tuple(...)). With use_awaitable and
// use_future the result is a std::tuple<std::error_code, std::size_t>:
// Asio turns only boost::system::error_code into exceptions.
//
// Threads. A driver and its backend are driven by one thread at a time. It
// runs everything on the executor it was given:
//  - an io_context run by one thread: give it the context (or its executor);
//  - an io_context run by several threads: give it a strand
//    (boost::asio::make_strand(ctx)); operations may then be started from
//    any thread, and each completion handler runs on its own associated
//    executor as usual. Do not build the backend with
//    backend_options::uring_single_thread in this case: the strand moves
//    between threads;
//  - or one driver (and backend) per thread, each on that thread's context.
//
// Lifetimes. The buffers of an operation must stay valid until its handler
// runs (or is destroyed). Destroying a driver cancels what it has in flight,
// waits for the kernel to let go of the buffers, and then posts each handler
// with its outcome (ECANCELED, or the result when it was too late to cancel).
// Destroying (or shutting down) the execution context first destroys pending
// handlers unrun, as Asio does; the driver may be destroyed afterwards.
// Never destroy a driver from inside one of its own completion handlers, nor
// let an operation's handler own the driver it runs on.
#pragma once

#include <pageio/engine/backend.hpp>
#include <pageio/engine/detail/asio_op.hpp>
#include <pageio/engine/file.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/query.hpp>

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace pageio {

namespace detail {
class asio_driver_registry;
}

// Binds an io_backend to an Asio executor: operations started through it
// (see async_file) complete in that executor's execution context. The
// backend's eventfd is watched by a stream_descriptor, so completions are
// collected when it becomes readable, with no thread spinning or polling.
class asio_driver {
 public:
  using executor_type = boost::asio::any_io_executor;

  // Takes over `backend`, which must have nothing outstanding.
  asio_driver(const executor_type& ex, std::unique_ptr<io_backend> backend);
  // Builds the backend by name ("default", "sync", "aio", "uring"); throws
  // backend_unavailable as make_backend() does.
  asio_driver(const executor_type& ex, std::string_view backend_name, const backend_options& opts = {})
      : asio_driver(ex, make_backend(backend_name, opts)) {}

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  asio_driver(ExecutionContext& ctx, std::unique_ptr<io_backend> backend)
      : asio_driver(executor_type(ctx.get_executor()), std::move(backend)) {}
  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  asio_driver(ExecutionContext& ctx, std::string_view backend_name, const backend_options& opts = {})
      : asio_driver(executor_type(ctx.get_executor()), make_backend(backend_name, opts)) {}

  // Operations hold a pointer to their driver: it neither copies nor moves.
  asio_driver(const asio_driver&) = delete;
  asio_driver& operator=(const asio_driver&) = delete;

  ~asio_driver();

  const executor_type& get_executor() const noexcept { return ex_; }
  io_backend& backend() noexcept { return *backend_; }
  // Operations started and not finished in the kernel yet.
  std::size_t outstanding() const noexcept { return pending_.size() + live_.size(); }

  // Starts one operation described by `args`; used by async_file. The
  // completion signature is void(std::error_code, std::size_t).
  template <typename Token>
  auto async_io(detail::asio_io_args args, Token&& token) {
    return boost::asio::async_initiate<Token, void(std::error_code, std::size_t)>(initiate_io{this}, token,
                                                                                    std::move(args));
  }

 private:
  friend class detail::asio_driver_registry;
  friend struct detail::asio_cancel_handler;

  enum class mode {
    running,    // normal operation
    closing,    // in the destructor: handlers are posted with their outcome
    shut_down,  // the execution context is gone or going: handlers are destroyed unrun
  };

  // Shared with the pending wake-up read, which may finish after the driver is
  // gone: it then sees `driver == nullptr` and its buffer is still valid.
  struct wake_state {
    asio_driver* driver = nullptr;
    std::uint64_t counter = 0;  // the eventfd's 8-byte counter lands here
  };

  struct wake_handler {
    std::shared_ptr<wake_state> state;
    void operator()(const boost::system::error_code& ec, std::size_t) const {
      asio_driver* d = state->driver;
      if (d == nullptr) return;
      d->armed_ = false;
      if (ec == boost::asio::error::operation_aborted) return;
      d->deliver();
    }
  };

  struct flush_handler {
    std::shared_ptr<wake_state> state;
    void operator()() const {
      if (asio_driver* d = state->driver) d->flush_pending();
    }
  };

  struct initiate_io {
    asio_driver* driver;
    template <typename Handler>
    void operator()(Handler&& handler, detail::asio_io_args args) const {
      asio_driver* d = driver;
      if (delivering_ == d) {
        // A handler of this driver starting the next operation: we are on the
        // driver's executor already, and the request joins the batch sent
        // when the handlers of this wake-up are done.
        d->start(std::forward<Handler>(handler), std::move(args));
        return;
      }
      // Anywhere else: run on the driver's executor (inline when already
      // there, queued on its strand or context otherwise). A queued start
      // may run after the driver is gone: it then completes with ECANCELED.
      boost::asio::dispatch(d->ex_, [state = d->wake_, ex = d->ex_,
                                     h = std::decay_t<Handler>(std::forward<Handler>(handler)),
                                     a = std::move(args)]() mutable {
        if (state->driver != nullptr) {
          state->driver->start(std::move(h), std::move(a));
          return;
        }
        using op_type = detail::asio_op<std::decay_t<Handler>, executor_type>;
        op_type* op = op_type::create(std::move(h), ex);
        op->req.result = -ECANCELED;
        op->finish_op(op, op_type::finish::dispatch);
      });
    }
  };

  template <typename Handler>
  void start(Handler&& handler, detail::asio_io_args args);
  void flush_pending();
  void cancel_op(detail::asio_op_base& op);
  static void on_request_done(io_request& r) noexcept;
  void deliver();
  void arm();
  void shutdown() noexcept;  // from the registry, when the execution context shuts down
  void cancel_live() noexcept;

  // The driver whose completions the current thread is delivering, if any.
  static inline thread_local asio_driver* delivering_ = nullptr;

  executor_type ex_;
  std::unique_ptr<io_backend> backend_;
  std::shared_ptr<wake_state> wake_;
  std::optional<boost::asio::posix::stream_descriptor> notify_;  // a dup of the backend's eventfd
  // Operations started outside a completion handler wait here until a posted
  // flush hands them all to the backend in one submit: one system call for
  // many initiations, and until then a cancellation simply takes them back
  // (the only way to cancel on the sync backend, which runs I/O at submit).
  detail::asio_op_list pending_;
  detail::asio_op_list live_;  // in the backend, completion not run yet
  bool flush_posted_ = false;
  detail::asio_driver_registry* registry_ = nullptr;
  mode mode_ = mode::running;
  bool armed_ = false;  // a wake-up read is pending
};

// A file whose reads, writes and flushes run through an asio_driver. It
// borrows the fd, or owns a pageio::file. Buffer sequences of more than one
// non-empty buffer become readv/writev (at most IOV_MAX buffers).
class async_file {
 public:
  using executor_type = asio_driver::executor_type;

  async_file(asio_driver& driver, int fd) noexcept : driver_(&driver), fd_(fd) {}
  async_file(asio_driver& driver, file&& f) noexcept : driver_(&driver), owned_(std::move(f)), fd_(owned_.fd()) {}

  // Forgets the fd in the backend before an owned file is closed (see
  // io_backend::forget_fd). Operations must have finished.
  ~async_file() {
    if (owned_.is_open()) driver_->backend().forget_fd(fd_);
  }
  async_file(async_file&&) noexcept = default;
  async_file& operator=(async_file&&) = delete;

  executor_type get_executor() const noexcept { return driver_->get_executor(); }
  asio_driver& driver() const noexcept { return *driver_; }
  int native_handle() const noexcept { return fd_; }

  // Reads into `buffers` from `offset`: the count is short only at end of file.
  template <typename MutableBufferSequence, typename Token>
  auto async_read_at(std::uint64_t offset, const MutableBufferSequence& buffers, Token&& token) {
    return driver_->async_io(transfer_args(op_code::read, op_code::readv, offset, buffers, io_flags::none),
                             std::forward<Token>(token));
  }

  // Writes `buffers` at `offset`.
  template <typename ConstBufferSequence, typename Token>
  auto async_write_at(std::uint64_t offset, const ConstBufferSequence& buffers, Token&& token) {
    return driver_->async_io(transfer_args(op_code::write, op_code::writev, offset, buffers, io_flags::none),
                             std::forward<Token>(token));
  }

  // A write that is durable when it completes (RWF_DSYNC where the backend
  // supports it, see capabilities::per_write_dsync; otherwise the backend
  // follows it with an fdatasync before completing).
  template <typename ConstBufferSequence, typename Token>
  auto async_write_dsync_at(std::uint64_t offset, const ConstBufferSequence& buffers, Token&& token) {
    return driver_->async_io(transfer_args(op_code::write, op_code::writev, offset, buffers, io_flags::dsync),
                             std::forward<Token>(token));
  }

  template <typename Token>
  auto async_fdatasync(Token&& token) {
    return driver_->async_io(flush_args(op_code::fdatasync), std::forward<Token>(token));
  }

  template <typename Token>
  auto async_fsync(Token&& token) {
    return driver_->async_io(flush_args(op_code::fsync), std::forward<Token>(token));
  }

 private:
  template <typename BufferSequence>
  detail::asio_io_args transfer_args(op_code one, op_code vectored, std::uint64_t offset,
                                     const BufferSequence& buffers, io_flags flags) const {
    detail::asio_io_args a;
    a.fd = fd_;
    a.offset = offset;
    a.flags = flags;
    a.op = one;
    std::size_t count = 0;
    iovec first{};
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers);
         ++it) {
      const auto b = *it;
      if (b.size() == 0) continue;
      iovec v{const_cast<void*>(static_cast<const void*>(b.data())), b.size()};
      if (count == 0) {
        first = v;
      } else {
        if (count == 1) a.iov.push_back(first);
        a.iov.push_back(v);
      }
      ++count;
    }
    if (count > IOV_MAX) {
      a.invalid_errno = EINVAL;  // more buffers than one readv/writev takes
    } else if (count > 1) {
      a.op = vectored;
    } else {
      a.buf = first.iov_base;
      a.length = first.iov_len;
    }
    return a;
  }

  detail::asio_io_args flush_args(op_code op) const {
    detail::asio_io_args a;
    a.op = op;
    a.fd = fd_;
    return a;
  }

  asio_driver* driver_;
  file owned_;
  int fd_ = -1;
};

namespace detail {

// Ties the drivers of one execution context to its life: when the context
// shuts down, each driver cancels and drains its backend and destroys the
// pending handlers unrun, before the context's services go away.
class asio_driver_registry final : public boost::asio::execution_context::service {
 public:
  using key_type = asio_driver_registry;
  static inline boost::asio::execution_context::id id;

  explicit asio_driver_registry(boost::asio::execution_context& ctx) : service(ctx) {}

  void add(asio_driver* d) {
    std::lock_guard lock(mutex_);
    drivers_.push_back(d);
  }
  void remove(asio_driver* d) noexcept {
    std::lock_guard lock(mutex_);
    drivers_.erase(std::remove(drivers_.begin(), drivers_.end(), d), drivers_.end());
  }

 private:
  void shutdown() override {
    for (;;) {
      asio_driver* d = nullptr;
      {
        std::lock_guard lock(mutex_);
        if (drivers_.empty()) return;
        d = drivers_.back();
        drivers_.pop_back();
      }
      d->registry_ = nullptr;
      d->shutdown();
    }
  }

  std::mutex mutex_;
  std::vector<asio_driver*> drivers_;
};

inline void asio_cancel_handler::operator()(boost::asio::cancellation_type_t type) {
  if ((type & op->cancellable) == boost::asio::cancellation_type::none) return;
  op->driver->cancel_op(*op);
}

}  // namespace detail

inline asio_driver::asio_driver(const executor_type& ex, std::unique_ptr<io_backend> backend)
    : ex_(ex), backend_(std::move(backend)), wake_(std::make_shared<wake_state>()) {
  if (!backend_) throw std::invalid_argument("asio_driver: no backend given");
  if (backend_->outstanding() > 0) {
    throw std::invalid_argument("asio_driver: the backend has requests outstanding; hand it over idle");
  }
  const int fd = ::fcntl(backend_->notify_fd(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::system_category(), "asio_driver: duplicating the eventfd");
  try {
    notify_.emplace(ex_, fd);
  } catch (...) {
    ::close(fd);
    throw;
  }
  auto& ctx = boost::asio::query(ex_, boost::asio::execution::context);
  registry_ = &boost::asio::use_service<detail::asio_driver_registry>(ctx);
  registry_->add(this);
  wake_->driver = this;
}

inline asio_driver::~asio_driver() {
  if (registry_ != nullptr) registry_->remove(this);
  wake_->driver = nullptr;
  if (mode_ == mode::running) {
    mode_ = mode::closing;
    cancel_live();      // pending ones are posted with ECANCELED here
    backend_->drain();  // each completion posts its handler
  }
  notify_.reset();
}

template <typename Handler>
void asio_driver::start(Handler&& handler, detail::asio_io_args args) {
  using op_type = detail::asio_op<std::decay_t<Handler>, executor_type>;
  op_type* op = op_type::create(std::forward<Handler>(handler), ex_);
  op->driver = this;
  if (args.invalid_errno != 0 || mode_ != mode::running) {
    // Never completes inside the initiating function: posted.
    op->req.result = -(args.invalid_errno != 0 ? args.invalid_errno : ECANCELED);
    op->finish_op(op, mode_ == mode::shut_down ? op_type::finish::destroy : op_type::finish::post);
    return;
  }
  io_request& r = op->req;
  switch (args.op) {
    case op_code::read:
      r.prep_read(args.fd, args.buf, args.length, args.offset);
      break;
    case op_code::write:
      r.prep_write(args.fd, args.buf, args.length, args.offset);
      break;
    case op_code::readv:
    case op_code::writev:
      op->iov = std::move(args.iov);
      if (args.op == op_code::readv) {
        r.prep_readv(args.fd, op->iov.data(), static_cast<std::uint32_t>(op->iov.size()), args.offset);
      } else {
        r.prep_writev(args.fd, op->iov.data(), static_cast<std::uint32_t>(op->iov.size()), args.offset);
      }
      break;
    case op_code::fdatasync:
      r.prep_fdatasync(args.fd);
      break;
    case op_code::fsync:
      r.prep_fsync(args.fd);
      break;
  }
  r.flags = args.flags;
  r.on_complete = &asio_driver::on_request_done;
  r.user_data = static_cast<detail::asio_op_base*>(op);
  op->cancellable = (args.op == op_code::read || args.op == op_code::readv)
                        ? boost::asio::cancellation_type::all
                        : boost::asio::cancellation_type::terminal | boost::asio::cancellation_type::partial;
  auto slot = boost::asio::get_associated_cancellation_slot(op->handler);
  if (slot.is_connected()) slot.template emplace<detail::asio_cancel_handler>(op);
  pending_.push_back(*op);
  // From one of this driver's handlers: deliver() sends it when the handlers
  // of this wake-up are done, with everything else they started.
  if (delivering_ == this) return;
  if (!flush_posted_) {
    flush_posted_ = true;
    boost::asio::post(ex_, flush_handler{wake_});
  }
}

inline void asio_driver::flush_pending() {
  flush_posted_ = false;
  if (pending_.empty()) return;
  request_list batch;
  while (!pending_.empty()) {
    detail::asio_op_base& op = pending_.front();
    pending_.pop_front();
    op.in_backend = true;
    live_.push_back(op);
    batch.push_back(op.req);
  }
  backend_->submit(batch);
  arm();
}

inline void asio_driver::cancel_op(detail::asio_op_base& op) {
  if (!op.in_backend) {
    // Not handed to the backend yet: it never starts.
    pending_.erase(pending_.iterator_to(op));
    op.req.result = -ECANCELED;
    op.finish_op(&op, mode_ == mode::shut_down ? detail::asio_op_base::finish::destroy
                                               : detail::asio_op_base::finish::post);
    return;
  }
  backend_->cancel(op.req);
}

inline void asio_driver::on_request_done(io_request& r) noexcept {
  auto* op = static_cast<detail::asio_op_base*>(r.user_data);
  asio_driver* d = op->driver;
  d->live_.erase(d->live_.iterator_to(*op));
  using finish = detail::asio_op_base::finish;
  const finish how = d->mode_ == mode::shut_down ? finish::destroy
                     : d->mode_ == mode::closing ? finish::post
                     : delivering_ == d          ? finish::dispatch
                                                 : finish::post;
  op->finish_op(op, how);
}

inline void asio_driver::deliver() {
  // The eventfd's counter was consumed by the read that woke us. Handlers run
  // inline from here, and the requests they start wait in pending_ until all
  // of them have run: then they go to the backend as one submission (one
  // system call for a whole wave of completions, whatever the backend's
  // callback_batch; docs/engine.md has the measurements).
  asio_driver* const outer = delivering_;
  delivering_ = this;
  struct restore {
    asio_driver* prev;
    ~restore() { delivering_ = prev; }
  } guard{outer};
  try {
    backend_->poll();
  } catch (...) {
    // The backend broke: what the handlers started still goes out later.
    if (!pending_.empty() && !flush_posted_) {
      flush_posted_ = true;
      boost::asio::post(ex_, flush_handler{wake_});
    }
    throw;
  }
  flush_pending();
  arm();
}

inline void asio_driver::arm() {
  if (armed_ || mode_ != mode::running || live_.empty() || !notify_) return;
  armed_ = true;
  notify_->async_read_some(boost::asio::buffer(&wake_->counter, sizeof wake_->counter), wake_handler{wake_});
}

inline void asio_driver::cancel_live() noexcept {
  using finish = detail::asio_op_base::finish;
  while (!pending_.empty()) {
    detail::asio_op_base& op = pending_.front();
    pending_.pop_front();
    op.req.result = -ECANCELED;
    op.finish_op(&op, mode_ == mode::shut_down ? finish::destroy : finish::post);
  }
  // cancel() never runs a completion itself: the list stays intact.
  for (auto& op : live_) backend_->cancel(op.req);
}

inline void asio_driver::shutdown() noexcept {
  mode_ = mode::shut_down;
  wake_->driver = nullptr;
  cancel_live();
  backend_->drain();  // each completion destroys its handler unrun
  notify_.reset();
}

}  // namespace pageio
