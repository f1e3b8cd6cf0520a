#include "pool_file.hpp"

#include "size_parse.hpp"
#include "test_file.hpp"

#include <pageio/engine/file.hpp>
#include <pageio/pagecache/page_format.hpp>

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <system_error>
#include <vector>

namespace pageio::bench {

namespace pc = pageio::pagecache;

namespace {

void fill_page(std::byte* page, std::uint64_t n) {
  std::uint64_t x = (n + 1) * 0x9E3779B97F4A7C15ULL | 1;
  for (std::size_t i = pc::format::header_size; i < pc::page_size; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(page + i, &x, 8);
  }
  pc::format::seal_page(page, n, 0);
}

bool page_checks(int fd, std::uint64_t n) {
  std::vector<std::byte> buf(pc::page_size);
  if (::pread(fd, buf.data(), buf.size(), static_cast<off_t>(n * pc::page_size)) !=
      static_cast<ssize_t>(pc::page_size)) {
    return false;
  }
  pc::lsn_t lsn = 0;
  return pc::format::check_page(buf.data(), n, &lsn) == pc::format::page_state::valid;
}

[[noreturn]] void fail(const std::string& what) { throw std::system_error(errno, std::system_category(), what); }

}  // namespace

std::filesystem::path pool_file_for(const std::filesystem::path& test_file) {
  std::filesystem::path p = test_file;
  p += ".pool";
  return p;
}

namespace {

// The file's pages leave the OS page cache: the pool reads it with O_DIRECT,
// and cached pages of the same file make every direct read look them up.
void drop_cached(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

}  // namespace

void prepare_pool_file(const std::filesystem::path& path, std::uint64_t size_bytes) {
  check_data_dir(path.has_parent_path() ? path.parent_path() : std::filesystem::path("."));
  const std::uint64_t pages = size_bytes / pc::page_size;
  {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      const bool ok = !test_file_needs_writing(path, pages * pc::page_size) && pages > 0 && page_checks(fd, 0) &&
                      page_checks(fd, pages - 1);
      ::close(fd);
      if (ok) {
        drop_cached(path);
        return;
      }
    }
  }
  pageio::file out;
  try {
    out = pageio::file::open(path, {.direct = false, .writable = true, .create = true});
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "creating " + path.string());
  }
  const int fd = out.fd();
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  constexpr std::uint64_t chunk_pages = 256;
  std::vector<std::byte> buf(chunk_pages * pc::page_size);
  int shown = -1;
  for (std::uint64_t first = 0; first < pages; first += chunk_pages) {
    const std::uint64_t n = std::min(chunk_pages, pages - first);
    for (std::uint64_t k = 0; k < n; ++k) fill_page(buf.data() + k * pc::page_size, first + k);
    const auto bytes = static_cast<ssize_t>(n * pc::page_size);
    if (::pwrite(fd, buf.data(), static_cast<std::size_t>(bytes), static_cast<off_t>(first * pc::page_size)) != bytes) {
      fail("writing " + path.string());
    }
    const int pct = static_cast<int>((first + n) * 100 / pages);
    if (tty && pct != shown) {
      shown = pct;
      fmt::print(stderr, "\rwriting {} ({} of pool pages): {:3d}%", path.string(), format_size(size_bytes), pct);
      std::fflush(stderr);
    }
  }
  if (::fsync(fd) != 0) fail("fsync " + path.string());
  out.close();
  drop_cached(path);
  if (tty) fmt::print(stderr, "\n");
}

}  // namespace pageio::bench
