// Segment file names: wal-<16 lower-case hex digits>.log (format.hpp).
#include <pageio/wal/format.hpp>
#include <pageio/wal/reader.hpp>

#include <cctype>
#include <charconv>
#include <cstdio>

namespace pageio::wal {

namespace fmt = format;

std::string segment_file_name(std::uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%016llx%s", fmt::segment_prefix, static_cast<unsigned long long>(seq),
                fmt::segment_suffix);
  return buf;
}

std::optional<std::uint64_t> parse_segment_file_name(const std::string& name) {
  const std::string prefix = fmt::segment_prefix, suffix = fmt::segment_suffix;
  if (name.size() != prefix.size() + 16 + suffix.size()) return std::nullopt;
  if (name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return std::nullopt;
  std::uint64_t seq = 0;
  const char* b = name.data() + prefix.size();
  for (const char* p = b; p != b + 16; ++p) {
    if (!std::isxdigit(static_cast<unsigned char>(*p)) || std::isupper(static_cast<unsigned char>(*p))) {
      return std::nullopt;
    }
  }
  auto [ptr, ec] = std::from_chars(b, b + 16, seq, 16);
  if (ec != std::errc() || ptr != b + 16) return std::nullopt;
  return seq;
}

}  // namespace pageio::wal
