// pageio-wal: the operator's tool for a pageio write-ahead log.
//
//   pageio-wal verify PATH... [--json]           is the log intact? where does it end?
//   pageio-wal dump PATH... [--from LSN] [--to LSN] [--limit N] [--decode kv] [--hex] [--json]
//                                                one line per record (per change, decoded)
//   pageio-wal stats PATH... [--json]            segments, records, bytes, LSN range
//   pageio-wal replay --into B (--wal DIR | --archive DIR)... [--to-lsn N | --to-time T]
//                     [--inclusive | --exclusive] [--dry-run] [--json]   point-in-time restore (replay.hpp)
//   pageio-wal replay --into B (--wal DIR | --archive DIR)... --follow [--poll-ms N]   a warm standby
//
// PATH: a log directory, an archive directory (log archiving: wal::options::
// archive_dir), or one segment file; several are read as one log (an archive
// then the live log). PATH may also be given as -d/--dir PATH, as in the
// other tools. A usage error is one line and a hint on stderr
// (tools/common/usage.hpp).
//
// Exit status: 0 the log is clean or ends in a torn tail (reported); 1 it is
// damaged before its end (segment, page and offset named), or a segment is
// missing between the ones given; 2 a usage error, a path that cannot be
// read or holds no segment files, or a --from past the last record. replay:
// 0 target reached, 1 damage (or a store in use), 2 usage, 3 not reachable.
#include "inspect.hpp"
#include "replay.hpp"

#include <pageio/version.hpp>

#include "command_line.hpp"
#include "usage.hpp"
#include "validators.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <string>
#include <vector>

using namespace pageio::wal::tool;

int main(int argc, char** argv) {
  const char* const tool = "pageio-wal";
  CLI::App app{"pageio-wal: verify, dump and summarise a pageio write-ahead log", tool};
  pageio::tools::set_common_flags(app, pageio::version_string);
  app.require_subcommand(1, 1);
  app.footer("PATH: a log directory, an archive directory or a segment file; several are read as one log.\n"
             "Exit status: 0 clean or torn tail, 1 corruption before the end (or a missing segment), 2 usage error,\n"
             "an unreadable path, a path without segment files, or --from past the last record.");
  std::vector<std::string> paths, dir_opts;
  dump_options dopt;
  bool json = false;
  std::string decode;
  // The log's paths, as arguments or as -d/--dir (the name every tool gives a directory), repeatable.
  auto add_paths = [&](CLI::App* cmd) {
    auto* positional =
        cmd->add_option("PATH", paths, "log directories, archive directories or segment files, read as one log")
            ->type_name("");
    cmd->add_option("-d,--dir", dir_opts, "a log or archive directory, instead of PATH (repeatable)")
        ->type_name("DIR")
        ->excludes(positional);
  };
  auto* v = app.add_subcommand("verify", "check every page and record; report where the log ends");
  add_paths(v);
  v->add_flag("--json", json, "print one JSON object on stdout instead of the report");
  auto* d = app.add_subcommand("dump", "one line per record: LSN, length, checksum, where, first bytes");
  add_paths(d);
  pageio::tools::as_count(d->add_option("--from", dopt.from, "first LSN to print"), 0);
  pageio::tools::as_count(d->add_option("--to", dopt.to, "last LSN to print (inclusive; 0: to the end)"), 0);
  pageio::tools::as_count(d->add_option("--limit", dopt.limit, "print at most this many records (0: all)"), 0);
  d->add_flag("--json", json, "print one JSON object per record on stdout instead of the table");
  d->add_flag("--hex", dopt.hex, "add each record's whole payload, in hex");
  d->add_option("--decode", decode,
                "kv: tell each record of a pageio::kv store's log: puts and deletes (key escaped, value length), "
                "merges, checkpoints, and the commit time")
      ->check(CLI::IsMember({"kv"}))
      ->type_name("FORMAT");
  auto* s = app.add_subcommand("stats", "segments, records, bytes, first and last LSN");
  add_paths(s);
  s->add_flag("--json", json, "print one JSON object on stdout instead of the table");
  replay_options ro;
  std::vector<std::string> wal_dirs, archive_dirs;
  std::string to_time;
  bool exclusive = false, inclusive = false;
  auto* rp = app.add_subcommand("replay", "point-in-time restore: apply the records after a backup's end, up to a "
                                          "target, into the backup (exit 3: target not reachable)");
  rp->add_option("--into", ro.into, "the store to replay into (a backup made by pageio-kv backup)")
      ->required()
      ->type_name("DIR");
  rp->add_option("--wal", wal_dirs, "a live log directory (a store's wal/), repeatable")->type_name("DIR");
  rp->add_option("--archive", archive_dirs, "a log archive directory, repeatable")->type_name("DIR");
  auto* to_lsn = pageio::tools::as_count(rp->add_option("--to-lsn", ro.to_lsn, "stop at this LSN"), 1);
  rp->add_option("--to-time", to_time, "stop at this commit time (UTC, as dump --decode kv prints it)")
      ->type_name("TIME")
      ->excludes(to_lsn);
  auto* inc = rp->add_flag("--inclusive", inclusive, "apply the target record itself (the default)");
  rp->add_flag("--exclusive", exclusive, "stop just before the target record")->excludes(inc);
  rp->add_flag("--dry-run", ro.dry_run, "print the plan (LSN range, segments, records, bytes, reachable?) and change "
                                         "nothing");
  rp->add_flag("--json", ro.json, "print one JSON summary on stdout");
  pageio::tools::as_count(rp->add_option("--cache-mb", ro.cache_mib,
                                         "the store's cache while replaying, in MiB (a cache that holds the pages "
                                         "the records change reads each once)"),
                          16, 1u << 20)
      ->capture_default_str();
  auto* follow = rp->add_flag("--follow", ro.follow,
                               "a warm standby: after the end of the logs, keep applying what they gain and serve "
                               "read-only shells (pageio-kv shell --dir B --read-only) until SIGINT or SIGTERM");
  follow->excludes(to_lsn)->excludes("--to-time")->excludes("--dry-run");
  pageio::tools::as_count(rp->add_option("--poll-ms", ro.poll_ms, "with --follow: how often the logs are read again"),
                          1, 3'600'000)
      ->capture_default_str();
  if (auto code = pageio::tools::parse_command_line(app, argc, argv)) return *code;
  if (*rp) {
    ro.sources = archive_dirs;
    ro.sources.insert(ro.sources.end(), wal_dirs.begin(), wal_dirs.end());
    ro.inclusive = !exclusive;
    if (ro.sources.empty()) {
      return pageio::tools::report_usage_error(tool, "give the logs to replay from: --wal DIR and/or --archive DIR");
    }
    try {
      if (!to_time.empty()) ro.to_time_us = parse_utc_time(to_time);
    } catch (const std::invalid_argument& e) {
      return pageio::tools::report_usage_error(tool, e.what());
    }
    for (const auto& p : ro.sources) {
      std::error_code ec;
      if (!std::filesystem::is_directory(p, ec)) {
        return pageio::tools::report_usage_error(tool, fmt::format("{}: not a directory; give a log or archive "
                                                                   "directory",
                                                                   p));
      }
    }
    try {
      return replay(ro);
    } catch (const std::exception& e) {
      // The store in use by another process, an I/O error, records that do
      // not apply: the store is as the last record applied left it.
      pageio::tools::report_failure(tool, e.what());
      return exit_corrupt;
    }
  }
  paths.insert(paths.end(), dir_opts.begin(), dir_opts.end());
  if (paths.empty()) {
    return pageio::tools::report_usage_error(
        tool, "PATH is required: give the log's directory (or -d DIR), an archive directory or a segment file");
  }
  try {
    for (const auto& p : paths) {
      std::error_code ec;
      if (!std::filesystem::is_directory(p, ec) && !std::filesystem::is_regular_file(p, ec)) {
        return pageio::tools::report_usage_error(
            tool, fmt::format("{}: no such directory or file (or it cannot be read); give the log's directory, an "
                              "archive directory or a segment file",
                              p));
      }
    }
    if (*v) return verify(paths, json);
    if (*d) {
      if (dopt.to != 0 && dopt.to < dopt.from) {
        return pageio::tools::report_usage_error(
            tool, fmt::format("--to {} is before --from {}: give --to at or after --from", dopt.to, dopt.from));
      }
      dopt.json = json;
      dopt.decode_kv = decode == "kv";
      return dump(paths, dopt);
    }
    if (*s) return stats(paths, json);
  } catch (const std::exception& e) {
    // not_a_log, and a path that cannot be read: the log cannot be examined.
    pageio::tools::report_failure(tool, e.what());
    return exit_usage;
  }
  return exit_usage;
}
