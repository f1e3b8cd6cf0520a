// Writes a page with pageio's best backend, reads it back and checks it.
//   read_write_page [DIR]     (the file: DIR/example.db; DIR defaults to .)
#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/backend.hpp>
#include <pageio/engine/file.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

int main(int argc, char** argv) try {
  const std::string dir = argc > 1 ? argv[1] : ".";
  auto backend = pageio::make_backend("default", {.queue_depth = 32});  // the best that starts here
  auto f = pageio::file::open(dir + "/example.db", {.direct = true, .create = true});
  pageio::aligned_buffer page(4096), back(4096);                         // O_DIRECT needs aligned memory
  std::memset(page.data(), 'p', page.size());

  pageio::io_request req;                     // caller-owned: lives until its completion runs
  req.on_complete = [](pageio::io_request& r) {
    if (r.failed()) std::fprintf(stderr, "%s\n", pageio::describe_failure(r).c_str());
  };
  req.prep_write(f.fd(), page.data(), page.size(), /*offset=*/0);
  backend->submit(req);                       // a batch goes to the kernel in one call
  backend->reap(1);                           // runs completion callbacks on this thread
  if (req.failed()) return 1;
  req.prep_read(f.fd(), back.data(), back.size(), /*offset=*/0);
  backend->submit(req);
  backend->reap(1);
  if (req.failed() || std::memcmp(page.data(), back.data(), page.size()) != 0) return 1;
  std::printf("wrote and read back page 0 of %s with the %s backend\n", f.path().c_str(), backend->name().c_str());
  return 0;
} catch (const std::exception& e) {           // a file system without O_DIRECT (tmpfs), a full disk...
  std::fprintf(stderr, "read_write_page: %s\n", e.what());
  return 1;
}
