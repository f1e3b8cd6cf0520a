// pageio-bench: measures pageio's backends, alone or against fio.
//
//   pageio-bench io      one backend, one workload: IOPS, MiB/s, latency percentiles, CPU per I/O
//   pageio-bench fio     the same workload run by fio with the matching engine
//   pageio-bench wal     W threads committing records through the write-ahead log
//   pageio-bench cache   T threads x N fetches in flight through the buffer pool; hit cost vs a cached pread
//   pageio-bench compare every backend and fio side by side; table, JSON and SVG chart
//
// Exit status: 0 success, 2 usage error, 1 runtime failure (message on stderr).
#include "cache_bench.hpp"
#include "cli_options.hpp"
#include "errors.hpp"
#include "report.hpp"
#include "size_parse.hpp"
#include "test_file.hpp"
#include "wal_bench.hpp"

#include <pageio/version.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "run_info.hpp"

#include <cstdio>

namespace pageio::bench {

namespace {

void print_result(const run_result& r, bool json, const std::filesystem::path& file) {
  if (json) {
    nlohmann::json j = to_json(r);
    tools::stamp(j, "pageio-bench", file);
    fmt::print("{}\n", j.dump());
  } else {
    print_run(stdout, r);
    if (!r.command.empty()) fmt::print("  command: {}\n", r.command);
  }
}

int io_command(const io_cli& cli) {
  const workload_params p = to_workload(cli);
  start_backend(p);  // built and dropped: a bad name or queue depth is reported before the file is written
  prepare_test_file(p.file, p.size_bytes);
  print_result(run_workload(p), cli.json, p.file);
  return 0;
}

int wal_command(const wal_params& p, bool json) {
  const wal_result r = run_wal_bench(p);
  if (json) {
    nlohmann::json j = to_json(r);
    tools::stamp(j, "pageio-bench", p.dir);
    fmt::print("{}\n", j.dump());
  } else {
    print_wal_result(stdout, r);
  }
  return 0;
}

int cache_command(const cache_cli& cli) {
  const cache_params cp = to_cache(cli);
  const cache_result r = run_cache_bench(cp);
  if (cli.json) {
    nlohmann::json j = to_json(r);
    tools::stamp(j, "pageio-bench", cp.file);
    fmt::print("{}\n", j.dump());
  } else {
    print_cache_result(stdout, r);
  }
  return 0;
}

int fio_command(const io_cli& cli) {
  const fio_params p = to_fio(cli);
  prepare_test_file(p.file, p.size_bytes);
  print_result(run_fio(p), cli.json, p.file);
  return 0;
}

}  // namespace

}  // namespace pageio::bench

int main(int argc, char** argv) {
  using namespace pageio::bench;
  CLI::App app{"pageio-bench: measure pageio's I/O backends, alone or against fio"};
  app.set_version_flag("--version", std::string("pageio-bench ") + pageio::version_string, "print the version and exit");
  app.require_subcommand(1, 1);
  app.footer("Exit status: 0 success, 2 usage error, 1 runtime failure.");

  io_cli io_opts;
  auto* io = app.add_subcommand("io", "run one backend at a fixed queue depth and report IOPS, latency, CPU per I/O");
  add_io_options(*io, io_opts, false);

  io_cli fio_opts;
  auto* fio = app.add_subcommand("fio", "run the same workload with fio and the matching engine (fio on $PATH)");
  add_io_options(*fio, fio_opts, true);

  wal_params wal_opts;
  std::string wal_dir, wal_record = "100";
  bool wal_json = false;
  auto* walc = app.add_subcommand("wal", "W threads committing records back to back through the write-ahead log");
  walc->add_option("--backend,-b", wal_opts.backend, "sync, aio, uring, or default")->capture_default_str();
  walc->add_option("--dir,-d", wal_dir,
                   "directory for the log (a fresh subdirectory, removed afterwards); default: the data directory, "
                   "$PAGEIO_DATA_DIR or ./pageio-data");
  walc->add_option("--writers,-w", wal_opts.writers, "committing threads")->check(CLI::Range(1u, 4096u))->capture_default_str();
  walc->add_option("--record-size", wal_record, "bytes per record (suffixes allowed: 64k)")->capture_default_str();
  walc->add_option("--seconds,-t", wal_opts.seconds, "measured duration")->check(CLI::PositiveNumber)->capture_default_str();
  walc->add_option("--warmup", wal_opts.warmup_seconds, "seconds run first and not counted")->check(CLI::NonNegativeNumber)->capture_default_str();
  walc->add_option("--mode", wal_opts.mode,
                   "auto (RWF_DSYNC for group commits up to 64 KiB, else write then fdatasync), dsync (RWF_DSYNC "
                   "writes) or fdatasync (write, then fdatasync)")
      ->check(CLI::IsMember({"auto", "dsync", "fdatasync"}))
      ->capture_default_str();
  walc->add_option("--checkpoint-ms", wal_opts.checkpoint_ms,
                   "a checkpoint (truncate_before the durable LSN, recycling old segments) this often; 0: never, so "
                   "every segment is a new zero-filled file")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  std::string wal_segment = "64m";
  walc->add_option("--segment-size", wal_segment, "size of each log segment file (suffixes allowed: 64m, 1g)")
      ->capture_default_str();
  walc->add_flag("--json", wal_json, "print one JSON object instead of the table");

  cache_cli cache_opts;
  auto* cachec = app.add_subcommand(
      "cache", "T threads x N fetches in flight through the buffer pool (pageio::pagecache): lookups/s, hit ratio, "
               "miss IOPS, and a hit's cost against a buffered pread of an OS-cached page");
  add_cache_options(*cachec, cache_opts);

  compare_cli cmp_opts;
  auto* cmp = app.add_subcommand("compare", "every backend against each other and against fio; table, JSON, SVG");
  add_compare_options(*cmp, cmp_opts);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help or the parse error
    return code == 0 ? 0 : exit_usage;
  }

  try {
    if (*io) return io_command(io_opts);
    if (*fio) return fio_command(fio_opts);
    if (*walc) {
      wal_opts.dir = wal_dir.empty() ? default_data_dir() : std::filesystem::path(wal_dir);
      wal_opts.record_size = parse_size(wal_record, "--record-size");
      wal_opts.segment_bytes = parse_size(wal_segment, "--segment-size");
      if (wal_opts.segment_bytes % 4096 != 0 || wal_opts.segment_bytes < 8192) {
        throw usage_error("--segment-size must be a multiple of 4 KiB and at least 8 KiB");
      }
      return wal_command(wal_opts, wal_json);
    }
    if (*cachec) return cache_command(cache_opts);
    if (*cmp) return run_compare(to_compare(cmp_opts));
  } catch (const usage_error& e) {
    fmt::print(stderr, "pageio-bench: {}\nRun with --help for usage.\n", e.what());
    return exit_usage;
  } catch (const std::exception& e) {
    fmt::print(stderr, "pageio-bench: {}\n", e.what());
    return exit_runtime;
  }
  return exit_usage;
}
