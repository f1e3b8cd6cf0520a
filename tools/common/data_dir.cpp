#include "data_dir.hpp"

#include "usage.hpp"

#include <pageio/engine/file.hpp>

#include <fmt/format.h>

#include <cstdlib>
#include <stdexcept>
#include <system_error>

namespace pageio::tools {

std::filesystem::path default_data_dir() {
  if (const char* env = std::getenv("PAGEIO_DATA_DIR"); env != nullptr && *env != '\0') return env;
  return std::filesystem::path("pageio-data");
}

void ensure_data_dir(const std::filesystem::path& dir, std::string_view options, bool user_named) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return;
  if (std::filesystem::exists(dir, ec)) {
    throw usage_error(fmt::format("{} is not a directory: point {} elsewhere", dir.string(), options));
  }
  const char* env = std::getenv("PAGEIO_DATA_DIR");
  const bool is_default =
      !user_named && (env == nullptr || *env == '\0') && dir == std::filesystem::path("pageio-data");
  if (!is_default) {
    throw usage_error(fmt::format("the directory {} does not exist: create it (mkdir -p {}) or point {} at one that does",
                                  dir.string(), dir.string(), options));
  }
  std::filesystem::create_directory(dir, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot create the data directory {}: {}", dir.string(), ec.message()));
}

void refuse_memory_file_system(const std::filesystem::path& dir, std::string_view options) {
  if (const std::string fs = memory_file_system(dir); !fs.empty()) {
    throw usage_error(fmt::format(
        "{} is on {}, a file system in RAM: its numbers would say nothing about a disk; point {} at a directory on "
        "a disk file system (ext4, xfs, btrfs)",
        dir.string(), fs, options));
  }
}

}  // namespace pageio::tools
