// verify, dump and stats: a scan of the log, reported for an operator (or
// as JSON).
#include "inspect.hpp"
#include "kv_decode.hpp"

#include "command_line.hpp"
#include "run_info.hpp"
#include "usage.hpp"

#include <pageio/version.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>

namespace pageio::wal::tool {

namespace {

// Progress on stderr during long scans, only when a person is watching.
scan_progress progress_on_terminal() {
  if (!::isatty(STDERR_FILENO)) return {};
  return [](std::uint64_t done, std::uint64_t total) {
    fmt::print(stderr, "\rscanned {} of {} MiB", done >> 20, total >> 20);
    if (done >= total) fmt::print(stderr, "\n");
    std::fflush(stderr);
  };
}

// A directory with no segment file is not a log (an empty one is not an
// empty log either: the writer makes its first segment when it opens).
class not_a_log : public std::runtime_error {
 public:
  explicit not_a_log(const log_paths& paths)
      : std::runtime_error(fmt::format("{} {} no segment files (wal-<16 hex digits>.log, or archived "
                                       "wal-<16 hex digits>.<first LSN>-<last LSN>.log): not a pageio log",
                                       fmt::join(paths, ", "), paths.size() == 1 ? "holds" : "hold")) {}
};

scan_result scan_or_refuse(const log_paths& paths, lsn_t from = 0,
                           const std::function<bool(const record_view&)>& on_record = {}) {
  const std::vector<std::filesystem::path> p(paths.begin(), paths.end());
  scan_result r = scan_logs(p, from, on_record, progress_on_terminal());
  if (r.segments.empty()) throw not_a_log(paths);
  return r;
}

std::string where(const log_paths& paths) { return fmt::format("{}", fmt::join(paths, " + ")); }

nlohmann::json corruption_json(const damage& d) {
  return {{"file", d.file.string()}, {"segment", d.segment}, {"page", d.page}, {"offset", d.offset}, {"what", d.what}};
}

// verify's and stats' JSON: what the scan found, and whether it is clean.
nlohmann::json summary_json(const log_paths& paths, const scan_result& r) {
  nlohmann::json j = {
      {"paths", paths},
      {"segments", r.segments.size()},
      {"first_segment", r.segments.empty() ? 0 : r.segments.front()},
      {"last_segment", r.segments.empty() ? 0 : r.segments.back()},
      {"segment_pages", r.segment_pages},
      {"records", r.records},
      {"record_bytes", r.record_bytes},
      {"first_lsn", r.first_lsn},
      {"last_lsn", r.last_lsn},
      {"end", {{"segment", r.end_segment}, {"page", r.end_page}}},
      {"torn_tail", r.tail.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.tail)},
      {"clean", !r.corruption},
      {"corruption", r.corruption ? corruption_json(*r.corruption) : nlohmann::json(nullptr)},
  };
  pageio::tools::stamp(j, "pageio-wal", paths.front());
  return j;
}

void print_corruption(const damage& d) {
  fmt::print("CORRUPT: {} (segment {}, page {}, byte offset {}): {}\n", d.file.string(), d.segment, d.page, d.offset,
             d.what);
  fmt::print("  Records after this point cannot be trusted and were not read; nothing was changed.\n"
             "  Restore the segment from a backup or replica, or move the damaged segments aside\n"
             "  knowingly: the log's writer refuses to open it as it is.\n");
}

void print_end(const scan_result& r) {
  if (r.last_lsn == 0) {
    fmt::print("the log holds no records\n");
  } else {
    fmt::print("records {} to {}; the log ends after LSN {} (segment {}, page {})\n", r.first_lsn, r.last_lsn,
               r.last_lsn, r.end_segment, r.end_page);
  }
  if (!r.tail.empty()) fmt::print("torn tail (expected after a crash, never acknowledged): {}\n", r.tail);
}

}  // namespace

int verify(const log_paths& paths, bool json) {
  const scan_result r = scan_or_refuse(paths);
  if (json) {
    fmt::print("{}\n", summary_json(paths, r).dump());
    return r.corruption ? exit_corrupt : exit_ok;
  }
  fmt::print("{}: {} segment(s), {} record(s), {} bytes of records\n", where(paths), r.segments.size(), r.records,
             r.record_bytes);
  if (r.corruption) {
    print_corruption(*r.corruption);
    return exit_corrupt;
  }
  print_end(r);
  fmt::print("OK\n");
  return exit_ok;
}

namespace {

std::string head_of(std::span<const std::byte> data, std::size_t n, bool hex) {
  std::string out;
  for (std::size_t i = 0; i < std::min(n, data.size()); ++i) {
    const auto c = static_cast<unsigned char>(data[i]);
    if (hex) {
      out += fmt::format("{:02x}", c);
    } else {
      out += std::isprint(c) ? static_cast<char>(c) : '.';
    }
  }
  return out;
}

}  // namespace

int dump(const log_paths& paths, const dump_options& o) {
  const lsn_t from = o.from;
  const bool json = o.json;
  std::uint64_t printed = 0;
  std::string undecodable;
  const scan_result r = scan_or_refuse(
      paths, from,
      [&](const record_view& v) {
        if (o.to != 0 && v.lsn > o.to) return false;
        if (o.decode_kv) {
          try {
            if (json) {
              nlohmann::json j = kv_record_json(v, o.hex);
              j["version"] = pageio::version_string;  // in every JSON output, each line of these too
              fmt::print("{}\n", j.dump());
            } else {
              fmt::print("{}", kv_record_text(v, o.hex));
            }
          } catch (const std::exception& e) {
            undecodable = fmt::format("LSN {} (segment {}, byte offset {}): {} (is this the log of a pageio::kv "
                                      "store? leave out --decode kv to dump it raw)",
                                      v.lsn, v.segment, v.offset, e.what());
            return false;
          }
        } else if (json) {
          nlohmann::json j = {{"lsn", v.lsn},       {"length", v.data.size()},
                              {"crc32c", fmt::format("{:08x}", v.crc)},
                              {"segment", v.segment}, {"page", v.page},
                              {"offset", v.offset},   {"head_hex", head_of(v.data, 16, true)}};
          if (o.hex) j["payload_hex"] = payload_hex(v.data);
          j["version"] = pageio::version_string;
          fmt::print("{}\n", j.dump());
        } else {
          fmt::print("LSN {:>10}  len {:>8}  crc32c {:08x}  seg {} page {:>6}  {:<32} |{}|\n", v.lsn, v.data.size(),
                     v.crc, v.segment, v.page, head_of(v.data, 16, true), head_of(v.data, 16, false));
          if (o.hex) fmt::print("    {}\n", payload_hex(v.data));
        }
        return ++printed != o.limit;
      });
  if (!undecodable.empty()) {
    pageio::tools::report_failure("pageio-wal", undecodable);
    return exit_corrupt;
  }
  if (r.corruption) {
    if (json) {
      fmt::print(stderr, "{}\n",
                 nlohmann::json{{"corruption", corruption_json(*r.corruption)}, {"version", pageio::version_string}}.dump());
    } else {
      print_corruption(*r.corruption);
    }
    return exit_corrupt;
  }
  if (!json && !r.tail.empty()) fmt::print(stderr, "torn tail: {}\n", r.tail);
  if (from > r.last_lsn) {
    if (r.last_lsn == 0) {
      return pageio::tools::report_usage_error(
          "pageio-wal", fmt::format("--from {}: past the end of the log, which holds no records", from));
    }
    return pageio::tools::report_usage_error(
        "pageio-wal", fmt::format("--from {}: past the end of the log: the last LSN is {}; give {} or less", from,
                                  r.last_lsn, r.last_lsn));
  }
  if (from != 0 && from < r.first_lsn) {
    fmt::print(stderr, "pageio-wal: note: the log starts at LSN {}; records before it were recycled by a checkpoint\n",
               r.first_lsn);
  }
  return exit_ok;
}

int stats(const log_paths& paths, bool json) {
  const scan_result r = scan_or_refuse(paths);
  if (json) {
    fmt::print("{}\n", summary_json(paths, r).dump());
    return r.corruption ? exit_corrupt : exit_ok;
  }
  fmt::print("{}     {}\n", paths.size() == 1 ? "log  " : "logs ", where(paths));
  fmt::print("segments      {}", r.segments.size());
  if (!r.segments.empty()) fmt::print(" ({} to {}, {} pages each)", r.segments.front(), r.segments.back(), r.segment_pages);
  fmt::print("\nrecords       {}\n", r.records);
  fmt::print("record bytes  {}\n", r.record_bytes);
  fmt::print("first LSN     {}\n", r.first_lsn);
  fmt::print("last LSN      {}\n", r.last_lsn);
  fmt::print("ends at       segment {}, page {}\n", r.end_segment, r.end_page);
  if (!r.tail.empty()) fmt::print("torn tail     {}\n", r.tail);
  if (r.corruption) {
    print_corruption(*r.corruption);
    return exit_corrupt;
  }
  return exit_ok;
}


}  // namespace pageio::wal::tool
