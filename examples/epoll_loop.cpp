// An event loop without Asio: requests go to the backend, and the loop
// sleeps in epoll_wait on the backend's eventfd (notify_fd()) until
// completions are ready, then reaps them, as libaio programs do with
// io_set_eventfd. Writes 8 pages, then reads them back and checks them.
//   epoll_loop [DIR]     (the file: DIR/example.db; DIR defaults to .)
#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/backend.hpp>
#include <pageio/engine/file.hpp>

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>

int main(int argc, char** argv) try {
  const std::string dir = argc > 1 ? argv[1] : ".";
  constexpr unsigned pages = 8;
  auto backend = pageio::make_backend("default", {.queue_depth = pages});
  auto f = pageio::file::open(dir + "/example.db", {.direct = true, .create = true});
  pageio::aligned_buffer buf(pages * 4096);

  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{.events = EPOLLIN, .data = {}};
  if (ep < 0 || ::epoll_ctl(ep, EPOLL_CTL_ADD, backend->notify_fd(), &ev) != 0)  // before submitting
    throw std::system_error(errno, std::system_category(), "epoll");

  unsigned done = 0, failed = 0;
  pageio::io_request req[pages];
  auto run = [&](bool write) {
    done = 0;
    for (unsigned i = 0; i < pages; ++i) {
      std::byte* p = buf.data() + i * 4096;
      if (write) std::memset(p, 'a' + i, 4096); else std::memset(p, 0, 4096);
      write ? req[i].prep_write(f.fd(), p, 4096, i * 4096ull) : req[i].prep_read(f.fd(), p, 4096, i * 4096ull);
      req[i].user_data = &done;
      req[i].on_complete = [](pageio::io_request& r) { ++*static_cast<unsigned*>(r.user_data); };
      backend->submit(req[i]);
    }
    while (done < pages) {
      epoll_event ready;
      if (::epoll_wait(ep, &ready, 1, -1) < 0 && errno != EINTR)
        throw std::system_error(errno, std::system_category(), "epoll_wait");
      backend->ack_notify();  // consume the eventfd, then take everything that is ready
      backend->poll();
    }
    for (auto& r : req) failed += r.failed();
  };
  run(true);
  run(false);
  ::close(ep);
  for (unsigned i = 0; i < pages; ++i)
    if (buf.data()[i * 4096 + 100] != static_cast<std::byte>('a' + i)) ++failed;
  std::printf("%u pages written and read back through epoll on the %s backend: %s\n", pages,
              backend->name().c_str(), failed ? "FAILED" : "ok");
  return failed ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "epoll_loop: %s\n", e.what());
  return 1;
}
