#include "escape.hpp"

namespace pageio::tools {

std::string escape(std::string_view raw) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  for (const char ch : raw) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= '!' && c <= '~' && c != '%') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}
}  // namespace

std::optional<std::string> unescape(std::string_view in, std::string* why) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c == '%') {
      const bool room = i + 2 < in.size();
      const int hi = room ? hex_value(in[i + 1]) : -1;
      const int lo = room ? hex_value(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        if (why) *why = "a '%' at byte " + std::to_string(i) + " is not followed by two hex digits";
        return std::nullopt;
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c < '!' || c > '~') {
      if (why) *why = "byte " + std::to_string(i) + " (0x" + escape(std::string(1, static_cast<char>(c))).substr(1) +
                      ") must be written %XX";
      return std::nullopt;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

}  // namespace pageio::tools
