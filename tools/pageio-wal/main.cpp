// pageio-wal: the operator's tool for a pageio write-ahead log.
//
//   pageio-wal verify DIR                 is the log intact? where does it end?
//   pageio-wal dump DIR [--from LSN] [--json]   one line per record
//   pageio-wal stats DIR                  segments, records, bytes, LSN range
//
// DIR may also be given as -d/--dir DIR, as in the other tools. A usage
// error is one line and a hint on stderr (tools/common/usage.hpp).
//
// Exit status: 0 the log is clean or ends in a torn tail (reported); 1 it is
// damaged before its end (segment, page and offset named); 2 a usage error,
// a directory that cannot be read or holds no segment files, or a --from
// past the last record.
#include <pageio/version.hpp>

#include <pageio/wal/reader.hpp>

#include "command_line.hpp"
#include "validators.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>

namespace {

using namespace pageio::wal;

constexpr int exit_ok = 0, exit_corrupt = 1, exit_usage = 2;

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
  explicit not_a_log(const std::string& dir)
      : std::runtime_error(dir + " holds no segment files (wal-<16 hex digits>.log): not a pageio log directory") {}
};

scan_result scan_or_refuse(const std::string& dir, lsn_t from = 0,
                           const std::function<bool(const record_view&)>& on_record = {}) {
  scan_result r = scan_log(dir, from, on_record, progress_on_terminal());
  if (r.segments.empty()) throw not_a_log(dir);
  return r;
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

int verify(const std::string& dir) {
  const scan_result r = scan_or_refuse(dir);
  fmt::print("{}: {} segment(s), {} record(s), {} bytes of records\n", dir, r.segments.size(), r.records,
             r.record_bytes);
  if (r.corruption) {
    print_corruption(*r.corruption);
    return exit_corrupt;
  }
  print_end(r);
  fmt::print("OK\n");
  return exit_ok;
}

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

int dump(const std::string& dir, lsn_t from, bool json) {
  const scan_result r = scan_or_refuse(
      dir, from,
      [&](const record_view& v) {
        if (json) {
          nlohmann::json j = {{"lsn", v.lsn},       {"length", v.data.size()},
                              {"crc32c", fmt::format("{:08x}", v.crc)},
                              {"segment", v.segment}, {"page", v.page},
                              {"offset", v.offset},   {"head_hex", head_of(v.data, 16, true)}};
          fmt::print("{}\n", j.dump());
        } else {
          fmt::print("LSN {:>10}  len {:>8}  crc32c {:08x}  seg {} page {:>6}  {:<32} |{}|\n", v.lsn, v.data.size(),
                     v.crc, v.segment, v.page, head_of(v.data, 16, true), head_of(v.data, 16, false));
        }
        return true;
      });
  if (r.corruption) {
    if (json) {
      nlohmann::json j = {{"corruption", {{"file", r.corruption->file.string()},
                                          {"segment", r.corruption->segment},
                                          {"page", r.corruption->page},
                                          {"offset", r.corruption->offset},
                                          {"what", r.corruption->what}}}};
      fmt::print(stderr, "{}\n", j.dump());
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

int stats(const std::string& dir) {
  const scan_result r = scan_or_refuse(dir);
  fmt::print("directory     {}\n", dir);
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

}  // namespace

int main(int argc, char** argv) {
  const char* const tool = "pageio-wal";
  CLI::App app{"pageio-wal: verify, dump and summarise a pageio write-ahead log", tool};
  pageio::tools::set_common_flags(app, pageio::version_string);
  app.require_subcommand(1, 1);
  app.footer("Exit status: 0 clean or torn tail, 1 corruption before the end, 2 usage error, unreadable directory,\n"
             "a directory without segment files, or --from past the last record.");
  std::string dir;
  lsn_t from = 0;
  bool json = false;
  // The log's directory, as the first argument or as -d/--dir (the name every tool gives a directory).
  auto add_dir = [&](CLI::App* cmd) {
    auto* positional = cmd->add_option("DIR", dir, "the log directory")->type_name("");
    cmd->add_option("-d,--dir", dir, "the log directory, instead of DIR")->type_name("DIR")->excludes(positional);
  };
  auto* v = app.add_subcommand("verify", "check every page and record; report where the log ends");
  add_dir(v);
  auto* d = app.add_subcommand("dump", "one line per record: LSN, length, checksum, where, first bytes");
  add_dir(d);
  pageio::tools::as_count(d->add_option("--from", from, "first LSN to print"), 0);
  d->add_flag("--json", json, "print one JSON object per record on stdout instead of the table");
  auto* s = app.add_subcommand("stats", "segments, records, bytes, first and last LSN");
  add_dir(s);
  if (auto code = pageio::tools::parse_command_line(app, argc, argv)) return *code;
  if (dir.empty()) {
    return pageio::tools::report_usage_error(tool, "DIR is required: give the log's directory (or -d DIR)");
  }
  try {
    if (!std::filesystem::is_directory(dir)) {
      return pageio::tools::report_usage_error(
          tool, fmt::format("{}: not a directory (or it cannot be read); give the log's directory", dir));
    }
    if (*v) return verify(dir);
    if (*d) return dump(dir, from, json);
    if (*s) return stats(dir);
  } catch (const std::exception& e) {
    // not_a_log, and a directory that cannot be read: the log cannot be examined.
    pageio::tools::report_failure(tool, e.what());
    return exit_usage;
  }
  return exit_usage;
}
