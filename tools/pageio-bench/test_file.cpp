#include "test_file.hpp"

#include "errors.hpp"

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

namespace {

}  // namespace

void ensure_data_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return;
  if (std::filesystem::exists(dir, ec)) {
    throw usage_error(fmt::format("{} is not a directory: point --dir, --file or PAGEIO_DATA_DIR elsewhere", dir.string()));
  }
  // Only the default ./pageio-data is made here, and only that one level:
  // a directory the user named must exist (no mkdir -p of a mistyped path).
  const char* env = std::getenv("PAGEIO_DATA_DIR");
  const bool is_default = (env == nullptr || *env == '\0') && dir == std::filesystem::path("pageio-data");
  if (!is_default) {
    throw usage_error(fmt::format("the directory {} does not exist: create it (mkdir -p {}) or point --dir, "
                                  "--file or PAGEIO_DATA_DIR at one that does",
                                  dir.string(), dir.string()));
  }
  std::filesystem::create_directory(dir, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot create the data directory {}: {}", dir.string(), ec.message()));
}

void check_data_dir(const std::filesystem::path& dir) {
  if (const std::string fs = memory_file_system(dir); !fs.empty()) {
    throw std::runtime_error(fmt::format(
        "{} is on {}, a file system in RAM: its numbers would say nothing about a disk; point --dir, --file or "
        "PAGEIO_DATA_DIR at a directory on a disk file system (ext4, xfs, btrfs)",
        dir.string(), fs));
  }
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

}  // namespace pageio::bench
