// One coroutine reads a large file through pageio with 32 reads in flight
// and checks every byte.
//
//   asio_read_file FILE [SIZE_MIB] [BACKEND]
//
// FILE is written first when it holds fewer than SIZE_MIB MiB (default 256):
// every 8-byte word holds its own offset mixed with a constant, so a block
// read from the wrong place, or not read at all, shows up. BACKEND is
// "default", "sync", "aio" or "uring". Exit status: 0 when the file checks
// out, 1 on a mismatch or an I/O error (the message says where), 2 on a usage
// error.
#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/asio.hpp>
#include <pageio/engine/file.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>

namespace asio = boost::asio;

namespace {

constexpr std::size_t chunk_bytes = 64 * 1024;
constexpr unsigned reads_in_flight = 32;

std::uint64_t word_at(std::uint64_t offset) { return offset ^ 0x70616765696f2121ULL; }  // "pageio!!"

// Writes the pattern with plain buffered writes, then makes it durable.
void write_pattern(const std::string& path, std::uint64_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::system_error(errno, std::system_category(), "creating " + path);
  std::string block(1 << 20, '\0');
  for (std::uint64_t off = 0; off < size; off += block.size()) {
    for (std::size_t i = 0; i < block.size(); i += 8) {
      const std::uint64_t w = word_at(off + i);
      std::memcpy(block.data() + i, &w, 8);
    }
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(block.size(), size - off));
    if (::pwrite(fd, block.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n)) {
      const int e = errno;
      ::close(fd);
      throw std::system_error(e, std::system_category(), "writing " + path);
    }
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) throw std::system_error(errno, std::system_category(), "syncing " + path);
}

// The first word of `n` bytes read from `offset` that does not hold the
// pattern, or -1.
long long first_mismatch(const std::byte* p, std::size_t n, std::uint64_t offset) {
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w != word_at(offset + i)) return static_cast<long long>(offset + i);
  }
  return -1;
}

struct slot {
  std::uint64_t offset = 0;
  std::error_code ec;
  std::size_t bytes = 0;
};

// Keeps `reads_in_flight` reads going: each finished read posts its slot
// number to a channel; the coroutine checks that chunk and reuses the slot
// for the next one. Returns the number of bytes checked.
asio::awaitable<std::uint64_t> read_and_check(pageio::async_file& f, std::uint64_t size) {
  auto ex = co_await asio::this_coro::executor;
  asio::experimental::channel<void(boost::system::error_code, unsigned)> done(ex, reads_in_flight);
  pageio::aligned_buffer buffers(chunk_bytes * reads_in_flight, 4096);
  slot slots[reads_in_flight];
  std::uint64_t next = 0, checked = 0;
  unsigned running = 0;

  auto start = [&](unsigned s) {
    slots[s].offset = next;
    next += chunk_bytes;
    ++running;
    f.async_read_at(slots[s].offset, asio::buffer(buffers.data() + s * chunk_bytes, chunk_bytes),
                    [&done, &slots, s](std::error_code ec, std::size_t n) {
                      slots[s].ec = ec;
                      slots[s].bytes = n;
                      done.try_send(boost::system::error_code(), s);  // room for every slot: never full
                    });
  };
  for (unsigned s = 0; s < reads_in_flight && next < size; ++s) start(s);

  while (running > 0) {
    const unsigned s = co_await done.async_receive(asio::use_awaitable);
    --running;
    const slot& r = slots[s];
    if (r.ec) {
      throw std::system_error(r.ec, "reading " + std::to_string(chunk_bytes) + " bytes at offset " +
                                        std::to_string(r.offset));
    }
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_bytes, size - r.offset));
    if (r.bytes < want) {
      throw std::runtime_error("short read at offset " + std::to_string(r.offset) + ": " + std::to_string(r.bytes) +
                               " of " + std::to_string(want) + " bytes (the file shrank?)");
    }
    if (const long long bad = first_mismatch(buffers.data() + s * chunk_bytes, want, r.offset); bad >= 0) {
      throw std::runtime_error("wrong data at offset " + std::to_string(bad));
    }
    checked += want;
    if (next < size) start(s);
  }
  co_return checked;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr, "usage: %s FILE [SIZE_MIB=256] [BACKEND=default]\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  char* end = nullptr;
  const unsigned long long mib = argc > 2 ? std::strtoull(argv[2], &end, 10) : 256;
  if (argc > 2 && (end == argv[2] || *end != '\0' || mib == 0)) {
    std::fprintf(stderr, "%s: SIZE_MIB must be a positive number of MiB, not '%s'\n", argv[0], argv[2]);
    return 2;
  }
  const std::string backend = argc > 3 ? argv[3] : "default";
  const std::uint64_t size = static_cast<std::uint64_t>(mib) << 20;

  try {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) < size) {
      std::printf("writing %llu MiB of pattern to %s\n", mib, path.c_str());
      write_pattern(path, size);
    }
    asio::io_context ctx(1);
    pageio::asio_driver driver(ctx, backend);
    pageio::async_file f(driver, pageio::file::open(path, {.direct = true}));

    const auto t0 = std::chrono::steady_clock::now();
    std::uint64_t checked = 0;
    std::exception_ptr failure;
    asio::co_spawn(ctx, read_and_check(f, size), [&](std::exception_ptr e, std::uint64_t n) {
      failure = e;
      checked = n;
    });
    ctx.run();
    if (failure) std::rethrow_exception(failure);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s: %llu MiB checked with the %s backend, %u reads of %zu KiB in flight, %.0f MiB/s: ok\n",
                path.c_str(), static_cast<unsigned long long>(checked >> 20), driver.backend().name().c_str(),
                reads_in_flight, chunk_bytes / 1024, static_cast<double>(checked) / (1 << 20) / s);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s: %s\n", argv[0], path.c_str(), e.what());
    return 1;
  }
}
