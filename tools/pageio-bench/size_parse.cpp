#include "size_parse.hpp"

#include "errors.hpp"
#include "validators.hpp"

#include <fmt/format.h>

namespace pageio::bench {

std::uint64_t parse_size(std::string_view text, std::string_view what) {
  const std::string message = tools::check_size(what, text);
  if (!message.empty()) throw usage_error(message);
  return *tools::parse_size(text);
}

std::string format_size(std::uint64_t bytes) {
  static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (u < 4 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{} {}", bytes, units[u]);
}

}  // namespace pageio::bench
