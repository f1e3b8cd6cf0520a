#include "test_file.hpp"

#include "size_parse.hpp"

#include <pageio/engine/file.hpp>

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <system_error>

namespace pageio::bench {

std::filesystem::path default_data_dir() {
  if (const char* env = std::getenv("PAGEIO_DATA_DIR"); env != nullptr && *env != '\0') return env;
  return std::filesystem::path("pageio-data");
}

void check_data_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot create data directory {}: {}", dir.string(), ec.message()));
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
  if (!test_file_needs_writing(path, size_bytes)) return;
  const auto parent = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  check_data_dir(parent);
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

}  // namespace pageio::bench
