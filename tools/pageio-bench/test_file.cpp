#include "test_file.hpp"

#include "errors.hpp"

#include "size_parse.hpp"

#include "data_dir.hpp"

#include <pageio/engine/file.hpp>

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
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

}  // namespace pageio::bench
