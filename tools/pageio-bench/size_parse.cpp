#include "size_parse.hpp"

#include "errors.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>

namespace pageio::bench {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::uint64_t parse_size(std::string_view text, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return usage_error(fmt::format("{}: '{}' is not a size ({}); use bytes or a suffix, e.g. 4096, 4k, 1g",
                                   what, text, why));
  };
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) throw bad("no number");
  double number = 0;
  const auto num = text.substr(0, i);
  if (auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), number);
      ec != std::errc() || p != num.data() + num.size()) {
    throw bad("malformed number");
  }
  const std::string suffix = lower(text.substr(i));
  int power = 0;
  std::string rest = suffix;
  if (!rest.empty()) {
    switch (rest.front()) {
      case 'k': power = 1; break;
      case 'm': power = 2; break;
      case 'g': power = 3; break;
      case 't': power = 4; break;
      case 'b': break;
      default: throw bad("unknown suffix '" + suffix + "'");
    }
    if (power > 0) rest.erase(0, 1);
    if (!(rest.empty() || rest == "b" || rest == "ib")) throw bad("unknown suffix '" + suffix + "'");
  }
  const double bytes = number * std::pow(1024.0, power);
  if (bytes >= 0x1p63) throw bad("too large");
  if (bytes != std::floor(bytes)) throw bad("not a whole number of bytes");
  return static_cast<std::uint64_t>(bytes);
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
