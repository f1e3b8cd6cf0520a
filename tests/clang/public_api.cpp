// Compiled with clang++ -fsyntax-only by tests/clang/check_syntax.sh, never
// run: every public header, and every Asio entry point instantiated with
// the handler shapes users write (a callback, a cancellation slot, a
// coroutine). Templates are checked only where instantiated, and clang
// rejects some things gcc accepts (parenthesized initialization of an
// aggregate, before clang 16).
#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/asio.hpp>
#include <pageio/engine/backend.hpp>
#include <pageio/engine/crash_backend.hpp>
#include <pageio/engine/crash_file_system.hpp>
#include <pageio/engine/crc32c.hpp>
#include <pageio/engine/durable_log.hpp>
#include <pageio/engine/error.hpp>
#include <pageio/engine/fault_backend.hpp>
#include <pageio/engine/fault_file_system.hpp>
#include <pageio/engine/file.hpp>
#include <pageio/engine/file_system.hpp>
#include <pageio/engine/forwarding_backend.hpp>
#include <pageio/engine/request.hpp>
#include <pageio/engine/units.hpp>
#include <pageio/kv/log_record.hpp>
#include <pageio/kv/store.hpp>
#include <pageio/pagecache/asio.hpp>
#include <pageio/pagecache/buffer_pool.hpp>
#include <pageio/pagecache/page_format.hpp>
#include <pageio/version.hpp>
#include <pageio/wal/asio.hpp>
#include <pageio/wal/crc32c.hpp>
#include <pageio/wal/format.hpp>
#include <pageio/wal/log.hpp>
#include <pageio/wal/reader.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <system_error>

namespace asio = boost::asio;

void with_callbacks(pageio::async_file& f, pageio::wal::log& wal, pageio::pagecache::buffer_pool& pool,
                    pageio::asio_driver& driver, asio::io_context& ctx, std::byte* page) {
  auto done = [](std::error_code, std::size_t) {};
  f.async_read_at(0, asio::buffer(page, 4096), done);
  f.async_write_at(0, asio::buffer(page, 4096), done);
  f.async_write_dsync_at(0, asio::buffer(page, 4096), done);
  f.async_fdatasync(done);
  f.async_fsync(done);
  asio::cancellation_signal cancel;
  f.async_read_at(0, asio::buffer(page, 4096), asio::bind_cancellation_slot(cancel.slot(), done));
  pageio::wal::async_flush(wal, 1, ctx.get_executor(), [](std::error_code) {});
  pageio::pagecache::async_fetch(pool, driver, {0, 0}, [](std::error_code, pageio::pagecache::page_ref) {});
}

asio::awaitable<void> with_coroutines(pageio::async_file& f, pageio::wal::log& wal,
                                      pageio::pagecache::buffer_pool& pool, pageio::asio_driver& driver,
                                      std::byte* page) {
  auto [ec, n] = co_await f.async_read_at(0, asio::buffer(page, 4096), asio::as_tuple(asio::use_awaitable));
  (void)ec;
  (void)n;
  co_await f.async_fdatasync(asio::use_awaitable);
  co_await pageio::wal::async_flush(wal, 1, co_await asio::this_coro::executor, asio::use_awaitable);
  auto [fetch_ec, ref] = co_await pageio::pagecache::async_fetch(pool, driver, {0, 0}, asio::as_tuple(asio::use_awaitable));
  (void)fetch_ec;
}
