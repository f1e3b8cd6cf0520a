// A coroutine writes a page through pageio's Boost.Asio binding, makes it
// durable, reads it back and checks it.
//   asio_write_read [DIR]     (the file: DIR/example.db; DIR defaults to .)
#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/asio.hpp>
#include <pageio/engine/file.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <tuple>

namespace asio = boost::asio;

int main(int argc, char** argv) try {
  const std::string dir = argc > 1 ? argv[1] : ".";
  asio::io_context ctx;
  pageio::asio_driver driver(ctx, "default");  // or "sync", "aio", "uring"
  pageio::async_file f(driver, pageio::file::open(dir + "/example.db", {.direct = true, .create = true}));
  int status = 1;

  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    pageio::aligned_buffer page(4096), back(4096);
    std::memset(page.data(), 'a', page.size());
    auto [ec, n] = co_await f.async_write_at(0, asio::buffer(page.data(), 4096), asio::use_awaitable);
    if (!ec) std::tie(ec, n) = co_await f.async_fdatasync(asio::use_awaitable);
    if (!ec) std::tie(ec, n) = co_await f.async_read_at(0, asio::buffer(back.data(), 4096), asio::use_awaitable);
    if (ec) {
      std::fprintf(stderr, "asio_write_read: %s\n", ec.message().c_str());  // errno, system category
    } else if (std::memcmp(page.data(), back.data(), 4096) == 0) {
      std::printf("page 0 written, made durable and read back through Asio\n");
      status = 0;
    }
  }, asio::detached);
  ctx.run();
  return status;
} catch (const std::exception& e) {  // a file system without O_DIRECT (tmpfs), no such directory...
  std::fprintf(stderr, "asio_write_read: %s\n", e.what());
  return 1;
}
