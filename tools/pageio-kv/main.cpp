// pageio-kv: the command-line face of pageio::kv.
//
//   pageio-kv shell --dir D [--no-sync]          the line protocol (shell.hpp; -d D is --dir D)
//   pageio-kv get --dir D KEY                    the value, raw, and a newline
//   pageio-kv put --dir D KEY VALUE              OK <lsn> once durable
//   pageio-kv del --dir D KEY                    OK <lsn>, or NOTFOUND
//   pageio-kv scan --dir D [--from K] [--to K] [--limit N] [--json]
//   pageio-kv stats --dir D [--json]
//   pageio-kv check --dir D [--json]             every page and the tree
//   pageio-kv bench --benchmarks=... [db_bench's flags]   (bench.hpp)
//
// Keys and values on the command line are taken as given; in the shell and
// in scan's output they are escaped (%XX for every byte outside '!'..'~'
// and for '%'). shell and put create the store if the directory holds none;
// the others refuse a directory without one and create nothing.
//
// Exit status: 0 success (check: the store is sound); 1 failure: the store
// is damaged (check names the page and what is wrong), a key is not found
// (get), the store is open elsewhere, an I/O error; 2 usage (one line and a
// hint on stderr, tools/common/usage.hpp).
#include "bench.hpp"
#include "escape.hpp"
#include "shell.hpp"
#include "standby.hpp"
#include "backup_cmd.hpp"
#include "stats_json.hpp"

#include <pageio/version.hpp>

#include "backend_option.hpp"
#include "run_info.hpp"
#include "command_line.hpp"
#include "validators.hpp"

#include <pageio/kv/store.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>

namespace {

using namespace pageio::kv;
namespace tool = pageio::kv::tool;

constexpr int exit_ok = 0, exit_failure = 1, exit_usage = 2;

struct cli {
  std::string dir, key, value, from, to, wal_archive;
  bool no_sync = false, json = false, has_from = false, has_to = false, no_wal_archive = false, read_only = false;
  std::uint64_t limit = 0;
};

// How a command opens the store: `create` if missing; `read_only` for the
// commands that only read (they log nothing, so a replica being replayed
// into stays one).
options open_options(const cli& c, bool create, bool read_only = false) {
  options o;
  o.dir = c.dir;
  o.sync = !c.no_sync;
  o.create_if_missing = create;
  o.read_only = read_only;
  o.wal_archive = c.wal_archive;
  o.wal_archive_off = c.no_wal_archive;
  return o;
}

int cmd_get(const cli& c) {
  store db(open_options(c, false, true));
  const auto v = db.get(c.key);
  if (!v) {
    fmt::print(stderr, "pageio-kv: {}: not found\n", pageio::tools::escape(c.key));
    return exit_failure;
  }
  std::fwrite(v->data(), 1, v->size(), stdout);
  std::fputc('\n', stdout);
  return exit_ok;
}

int cmd_put(const cli& c) {
  store db(open_options(c, true));
  fmt::print("OK {}\n", db.put(c.key, c.value));
  return exit_ok;
}

int cmd_del(const cli& c) {
  store db(open_options(c, false));
  const lsn_t l = db.del(c.key);
  if (l == 0) {
    fmt::print("NOTFOUND\n");
  } else {
    fmt::print("OK {}\n", l);
  }
  return exit_ok;
}

int cmd_scan(const cli& c) {
  store db(open_options(c, false, true));
  std::optional<std::string_view> from, to;
  if (c.has_from) from = c.from;
  if (c.has_to) to = c.to;
  std::uint64_t n = 0;
  for (auto it = db.scan(from, to, c.limit); it.valid(); it.next()) {
    if (c.json) {
      // JSON Lines: each line carries the version, as every JSON output does.
      fmt::print("{}\n", nlohmann::json{{"key", pageio::tools::escape(it.key())},
                                        {"value", pageio::tools::escape(it.value())},
                                        {"version", pageio::version_string}}
                             .dump());
    } else {
      fmt::print("{} {}\n", pageio::tools::escape(it.key()), pageio::tools::escape(it.value()));
    }
    ++n;
  }
  if (!c.json) fmt::print(stderr, "{} pair(s)\n", n);
  return exit_ok;
}

int cmd_stats(const cli& c) {
  store db(open_options(c, false, true));
  const statistics s = db.stats();
  if (c.json) {
    nlohmann::json j = tool::stats_json(s);
    pageio::tools::stamp(j, "pageio-kv", c.dir);
    fmt::print("{}\n", j.dump());
    return exit_ok;
  }
  fmt::print("store          {}\n", c.dir);
  fmt::print("pages          {} ({} free), tree height {}\n", s.pages, s.free_pages, s.height);
  fmt::print("log            last LSN {}, durable {}, last checkpoint {}\n", s.last_lsn, s.durable_lsn,
             s.checkpoint_lsn);
  fmt::print("recovery       {} record(s) read at open\n", s.recovered_records);
  fmt::print("write buffer   {} pair(s), {:.1f} MiB, logged and not yet in their leaves\n", s.buffered_pairs,
             static_cast<double>(s.buffered_bytes) / (1 << 20));
  if (s.wal_archive.empty()) {
    fmt::print("log archive    off\n");
  } else {
    fmt::print("log archive    {}\n", s.wal_archive);
    if (!s.archive_error.empty()) fmt::print("               the last copy failed: {}\n", s.archive_error);
  }
  return exit_ok;
}

int cmd_check(const cli& c) {
  store db(open_options(c, false, true));
  const check_report r = db.check();
  if (c.json) {
    nlohmann::json problems = nlohmann::json::array();
    for (const auto& p : r.problems) problems.push_back({{"page", p.page}, {"what", p.what}});
    nlohmann::json j{{"clean", r.clean()},
                     {"pages", r.pages},
                     {"leaf_pages", r.leaf_pages},
                     {"internal_pages", r.internal_pages},
                     {"overflow_pages", r.overflow_pages},
                     {"free_list_pages", r.trunk_pages},
                     {"free_pages", r.free_pages},
                     {"keys", r.keys},
                     {"buffered_pairs", r.buffered_pairs},
                     {"height", r.height},
                     {"problems", problems}};
    pageio::tools::stamp(j, "pageio-kv", c.dir);
    fmt::print("{}\n", j.dump());
  } else {
    fmt::print("{}: {} pages ({} leaf, {} internal, {} overflow, {} free-list, {} free), {} keys, height {}\n",
               c.dir, r.pages, r.leaf_pages, r.internal_pages, r.overflow_pages, r.trunk_pages, r.free_pages, r.keys,
               r.height);
    for (const auto& p : r.problems) fmt::print("DAMAGE: page {} of {}/data: {}\n", p.page, c.dir, p.what);
    if (r.clean()) {
      fmt::print("clean: every page checks and the tree is sound\n");
    } else {
      fmt::print("{} problem(s) found; nothing was changed. Restore the store from a backup, or copy out what\n"
                 "still reads (pageio-kv scan) before you change it.\n",
                 r.problems.size());
    }
  }
  return r.clean() ? exit_ok : exit_failure;
}

int cmd_shell(const cli& c) {
  if (c.read_only) {
    // A store that pageio-wal replay --follow is following is open in the
    // follower; the follower serves the reads.
    if (const int sock = tool::connect_standby(c.dir); sock >= 0) {
      if (tool::relay_shell(sock, STDIN_FILENO, STDOUT_FILENO)) return exit_ok;
      pageio::tools::report_failure("pageio-kv", "the follower serving " + c.dir +
                                                     " (pageio-wal replay --follow) ended the session: it stopped "
                                                     "following; run the shell again to read the store itself");
      return exit_failure;
    }
  }
  store db(open_options(c, !c.read_only, c.read_only));
  std::ios::sync_with_stdio(false);
  tool::run_shell(db, std::cin, std::cout);
  db.close();
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  const char* const tool_name = "pageio-kv";
  CLI::App app{"pageio-kv: the pageio key-value store from the command line", tool_name};
  pageio::tools::set_common_flags(app, pageio::version_string);
  app.require_subcommand(1, 1);
  app.footer("Exit status: 0 success, 1 failure (damage, not found, store in use, I/O error), 2 usage error.");
  cli c;
  auto add_dir = [&](CLI::App* s) {
    s->add_option("-d,--dir", c.dir, "the store's directory")->required()->type_name("DIR");
    auto* archive = s->add_option("--wal-archive", c.wal_archive,
                                  "archive the log's segments into this directory before they are recycled; the store "
                                  "remembers it, so later commands archive there too")
                        ->type_name("DIR");
    s->add_flag("--no-wal-archive", c.no_wal_archive, "stop archiving the log (the store forgets its archive)")
        ->excludes(archive);
  };
  auto* shell = app.add_subcommand("shell", "requests on stdin, one reply each on stdout (put, get, del, batch, "
                                            "scan, checkpoint, stats, quit; see the README)");
  add_dir(shell);
  shell->add_flag("--no-sync", c.no_sync, "reply to a write once it is in the log, before it is durable");
  shell->add_flag("--read-only", c.read_only,
                  "reads only (writes get ERR): nothing is logged, so a replica being replayed into (pageio-wal "
                  "replay) stays one; a store that pageio-wal replay --follow is following is read through the "
                  "follower, as it applies records");
  auto* get = app.add_subcommand("get", "print KEY's value (exit 1 when absent)");
  add_dir(get);
  get->add_option("KEY", c.key, "the key")->required();
  auto* put = app.add_subcommand("put", "set KEY to VALUE; prints OK <lsn> once durable");
  add_dir(put);
  put->add_option("KEY", c.key, "the key")->required();
  put->add_option("VALUE", c.value, "the value")->required();
  auto* del = app.add_subcommand("del", "delete KEY; prints OK <lsn>, or NOTFOUND");
  add_dir(del);
  del->add_option("KEY", c.key, "the key")->required();
  auto* scan = app.add_subcommand("scan", "pairs in key order, escaped (%XX), one per line");
  add_dir(scan);
  scan->add_option("--from", c.from, "first key (inclusive)");
  scan->add_option("--to", c.to, "end key (exclusive)");
  pageio::tools::as_count(scan->add_option("--limit", c.limit, "at most this many pairs (0: all)"), 0);
  scan->add_flag("--json", c.json,
                 "print JSON Lines on stdout instead of the pairs: {\"key\": K, \"value\": V}, escaped as in "
                 "the shell");
  auto* stats = app.add_subcommand("stats", "pages, tree height, log positions");
  add_dir(stats);
  stats->add_flag("--json", c.json, "print one JSON object on stdout instead of the table");
  auto* check = app.add_subcommand("check", "read every page and check the tree; exit 1 on damage");
  add_dir(check);
  check->add_flag("--json", c.json, "print one JSON object with the problems found on stdout instead of the report");
  tool::bench_flags bf;
  tool::backup_flags bk;
  auto* backup = app.add_subcommand("backup", "copy a store no process has open into a new directory (the shell's "
                                              "backup request copies a store in use, online)");
  backup->add_option("-d,--dir", bk.dir, "the store's directory")->required()->type_name("DIR");
  backup->add_option("--to", bk.to, "the backup's directory (new; its parent must exist)")->required()->type_name("DIR");
  backup->add_flag("--force", bk.force, "replace an earlier backup at --to (only a pageio store is replaced)");
  backup->add_flag("--json", bk.json, "print one JSON summary on stdout (LSN, pages, bytes, seconds)");
  auto* bench = app.add_subcommand("bench", "db_bench's workloads, flags and output lines (see bench.hpp)");
  using pageio::tools::as_count;
  bench->add_option("--benchmarks", bf.benchmarks,
                    "comma-separated: fillseq, fillrandom, overwrite, readrandom, readseq, seekrandom, "
                    "readwhilewriting, deleterandom")
      ->capture_default_str();
  as_count(bench->add_option("--num", bf.num, "keys (and operations per thread)"), 0)->capture_default_str();
  as_count(bench->add_option("--reads", bf.reads, "reads per thread (-1: --num)"), -1)->capture_default_str();
  as_count(bench->add_option("--writes", bf.writes, "writes per thread (-1: --num)"), -1)->capture_default_str();
  as_count(bench->add_option("--threads", bf.threads, "threads running each benchmark"), 1, 4096)
      ->capture_default_str();
  pageio::tools::as_seconds(
      bench->add_option("--duration", bf.duration, "seconds each benchmark runs at most (0: no limit; 30s, 2m)"),
      pageio::tools::seconds_from::zero)
      ->capture_default_str();
  as_count(bench->add_option("--key_size", bf.key_size, "bytes per key"), 1, 1024)->capture_default_str();
  as_count(bench->add_option("--value_size", bf.value_size, "bytes per value"), 0, 64u << 20)->capture_default_str();
  bench->add_option("--sync", bf.sync, "1: every write durable when it returns")->capture_default_str();
  as_count(bench->add_option("--cache_size", bf.cache_size, "buffer pool bytes"), 0, INT64_MAX)
      ->capture_default_str();
  as_count(bench->add_option("--write_buffer_size", bf.write_buffer_size,
                             "bytes of puts kept in memory instead of reading their leaves (-1: the store's "
                             "default, 32 MiB; 0: none)"),
           -1, INT64_MAX)
      ->capture_default_str();
  bench->add_option("--use_existing_db", bf.use_existing_db, "1: run on the store at --db as it is")
      ->capture_default_str();
  bench->add_option("--db,-d,--dir", bf.db,
                    "the store's directory (default: $PAGEIO_DATA_DIR/kv-bench or ./pageio-data/kv-bench)")
      ->type_name("DIR");
  as_count(bench->add_option("--seed", bf.seed, "random seed (0: from the clock)"), 0)->capture_default_str();
  pageio::tools::as_backend(
      bench->add_option("--backend", bf.backend,
                        "the store's I/O backend: " + pageio::tools::backend_list(true) + " (the best that starts)"),
      true)
      ->capture_default_str();
  bench->add_flag("--json", bf.json, "print one JSON object on stdout instead of the lines");
  if (auto code = pageio::tools::parse_command_line(app, argc, argv)) return *code;
  c.has_from = scan->count("--from") > 0;
  c.has_to = scan->count("--to") > 0;
  try {
    if (*shell) return cmd_shell(c);
    if (*get) return cmd_get(c);
    if (*put) return cmd_put(c);
    if (*del) return cmd_del(c);
    if (*scan) return cmd_scan(c);
    if (*stats) return cmd_stats(c);
    if (*check) return cmd_check(c);
    if (*backup) return tool::run_backup(bk);
    if (*bench) return tool::run_bench(bf);
  } catch (const std::invalid_argument& e) {
    return pageio::tools::report_usage_error(tool_name, e.what());
  } catch (const pageio::tools::usage_error& e) {
    return pageio::tools::report_usage_error(tool_name, e.what());
  } catch (const std::exception& e) {
    pageio::tools::report_failure(tool_name, e.what());
    return exit_failure;
  }
  return exit_usage;
}
