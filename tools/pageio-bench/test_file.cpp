#include "test_file.hpp"

#include "errors.hpp"

#include "size_parse.hpp"

#include "data_dir.hpp"

#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/file.hpp>

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <system_error>

namespace pageio::bench {

std::filesystem::path default_data_dir() { return tools::default_data_dir(); }

namespace {
constexpr std::string_view where_options = "--dir, --file or PAGEIO_DATA_DIR";
}  // namespace

void ensure_data_dir(const std::filesystem::path& dir) { tools::ensure_data_dir(dir, where_options); }

void check_data_dir(const std::filesystem::path& dir) {
  tools::refuse_memory_file_system(dir, where_options);
  ensure_data_dir(dir);
  if (std::string why; !supports_direct_io(dir, &why)) {
    throw std::runtime_error(fmt::format(
        "{}\nbenchmarks need direct I/O to reach the device; point --dir or PAGEIO_DATA_DIR at a disk", why));
  }
}

bool test_file_needs_writing(const std::filesystem::path& path, std::uint64_t size_bytes) {
  std::error_code ec;
  const auto have = std::filesystem::file_size(path, ec);
  return ec || have < size_bytes;
}

void prepare_test_file(const std::filesystem::path& path, std::uint64_t size_bytes) {
  check_data_dir(path.has_parent_path() ? path.parent_path() : std::filesystem::path("."));
  if (!test_file_needs_writing(path, size_bytes)) return;
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  int shown_pct = -1;
  auto progress = [&](std::uint64_t done, std::uint64_t total) {
    if (!tty || total == 0) return;
    const int pct = static_cast<int>(done * 100 / total);
    if (pct == shown_pct) return;
    shown_pct = pct;
    fmt::print(stderr, "\rwriting {} ({}): {:3d}%", path.string(), format_size(size_bytes), pct);
    std::fflush(stderr);
  };
  ensure_file_written(path, size_bytes, progress);
  if (tty) fmt::print(stderr, "\n");
}

double read_through(const std::filesystem::path& path) {
  pageio::file in;
  try {
    in = pageio::file::open(path, {.direct = true, .writable = false});
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "opening " + path.string() + " to read it through");
  }
  const int fd = in.fd();
  const std::uint64_t size = in.size();
  constexpr std::size_t chunk = std::size_t{1} << 20;
  pageio::aligned_buffer buf(chunk, 4096);
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  int shown = -1;
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t at = 0; at < size;) {
    const ssize_t got = ::pread(fd, buf.data(), chunk, static_cast<off_t>(at));
    if (got < 0) throw std::system_error(errno, std::system_category(), fmt::format("reading {} at byte offset {}", path.string(), at));
    if (got == 0) break;
    at += static_cast<std::uint64_t>(got);
    const int pct = static_cast<int>(at * 100 / size);
    if (tty && pct != shown) {
      shown = pct;
      fmt::print(stderr, "\rreading {} through once: {:3d}%", path.string(), pct);
      std::fflush(stderr);
    }
  }
  if (tty) fmt::print(stderr, "\n");
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double read_through_before_runs(const std::filesystem::path& path, std::string_view prefix, std::string_view name,
                                std::string* failure) {
  double seconds = std::numeric_limits<double>::quiet_NaN();
  try {
    seconds = read_through(path);
    fmt::print("{}{} read through once so that every run finds it cached alike: {} in {:.1f} s\n", prefix, name,
               format_size(std::filesystem::file_size(path)), seconds);
  } catch (const std::exception& e) {
    *failure = e.what();
    fmt::print("{}reading the {} through FAILED (the runs go on): {}\n", prefix, name, e.what());
  }
  std::fflush(stdout);
  return seconds;
}

}  // namespace pageio::bench
