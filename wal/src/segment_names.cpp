// Segment file names: wal-<16 lower-case hex digits>.log (format.hpp), and
// archived ones: wal-<16 hex digits>.<first LSN>-<last LSN>.log.
#include <pageio/wal/format.hpp>
#include <pageio/wal/reader.hpp>

#include <algorithm>
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

std::string archive_file_name(const archived_segment& a) {
  const std::string live = segment_file_name(a.seq);
  const std::string suffix = fmt::segment_suffix;
  return live.substr(0, live.size() - suffix.size()) + "." + std::to_string(a.first_lsn) + "-" +
         std::to_string(a.last_lsn) + suffix;
}

std::optional<archived_segment> parse_archive_file_name(const std::string& name) {
  const std::string prefix = fmt::segment_prefix, suffix = fmt::segment_suffix;
  const std::size_t dot = prefix.size() + 16;
  if (name.size() <= dot + 1 + suffix.size() || name[dot] != '.') return std::nullopt;
  const auto seq = parse_segment_file_name(name.substr(0, dot) + suffix);
  if (!seq || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return std::nullopt;
  const std::string range = name.substr(dot + 1, name.size() - suffix.size() - dot - 1);
  const auto dash = range.find('-');
  if (dash == std::string::npos) return std::nullopt;
  auto number = [](const std::string& t, lsn_t* out) {
    if (t.empty() || !std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), *out, 10);
    return ec == std::errc() && ptr == t.data() + t.size();
  };
  archived_segment a;
  a.seq = *seq;
  if (!number(range.substr(0, dash), &a.first_lsn) || !number(range.substr(dash + 1), &a.last_lsn)) return std::nullopt;
  if (a.first_lsn == 0 || a.first_lsn > a.last_lsn) return std::nullopt;
  return a;
}

}  // namespace pageio::wal
