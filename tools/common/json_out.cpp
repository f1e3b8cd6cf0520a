#include "json_out.hpp"

#include "usage.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>

namespace pageio::tools {

void check_output_file(std::string_view option, const std::filesystem::path& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    throw usage_error(fmt::format("{} {}: is a directory; give a file name", option, file.string()));
  }
  const std::filesystem::path dir = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
  if (!std::filesystem::is_directory(dir, ec)) {
    throw usage_error(fmt::format("{} {}: the directory {} does not exist; create it or give another file", option,
                                  file.string(), dir.string()));
  }
}

void write_json_out(const std::filesystem::path& file, const nlohmann::json& j) {
  std::ofstream out(file, std::ios::trunc);
  out << j.dump(2) << '\n';
  out.close();
  if (!out) throw std::runtime_error(fmt::format("cannot write {}: {}", file.string(), std::strerror(errno)));
}

}  // namespace pageio::tools
