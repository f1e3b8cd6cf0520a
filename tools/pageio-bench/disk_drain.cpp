#include "disk_drain.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>
#include <vector>

namespace pageio::bench {

namespace {

double micros_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

drain_result drain_disk_cache(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / ".pageio-bench-drain.tmp";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::system_error(errno, std::system_category(), "creating " + path.string());
  struct closer {
    int fd;
    std::filesystem::path path;
    ~closer() {
      ::close(fd);
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  } guard{fd, path};
  std::vector<char> page(4096, 'd');
  auto write_and_sync = [&] {
    if (::pwrite(fd, page.data(), page.size(), 0) != static_cast<ssize_t>(page.size())) {
      throw std::system_error(errno, std::system_category(), "writing " + path.string());
    }
    if (::fdatasync(fd) != 0) throw std::system_error(errno, std::system_category(), "fdatasync " + path.string());
  };
  drain_result r;
  auto t = std::chrono::steady_clock::now();
  write_and_sync();
  r.drain_ms = micros_since(t) / 1000;
  std::vector<double> each;
  for (int i = 0; i < 9; ++i) {
    t = std::chrono::steady_clock::now();
    write_and_sync();
    each.push_back(micros_since(t));
  }
  std::nth_element(each.begin(), each.begin() + 4, each.end());
  r.flush_us = each[4];
  return r;
}

}  // namespace pageio::bench
