// pageio-bench: measures pageio's backends, alone or against fio.
//
//   pageio-bench io      one backend, one workload: IOPS, MiB/s, latency percentiles, CPU per I/O
//   pageio-bench fio     the same workload run by fio with the matching engine
//   pageio-bench wal     W threads committing records through the write-ahead log
//   pageio-bench cache   T threads x N fetches in flight through the buffer pool; hit cost vs a cached pread
//   pageio-bench compare every backend and fio side by side; table, JSON and SVG chart
//
// Exit status: 0 success, 2 usage error (one line and a hint on stderr,
// nothing on disk touched), 1 runtime failure (message on stderr).
#include "cache_bench.hpp"
#include "cli_convert.hpp"
#include "cli_options.hpp"
#include "errors.hpp"
#include "report.hpp"
#include "test_file.hpp"
#include "wal_bench.hpp"

#include <pageio/version.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "json_out.hpp"
#include "run_info.hpp"
#include "command_line.hpp"

#include <cstdio>
#include <functional>

namespace pageio::bench {

namespace {

const char* const tool = "pageio-bench";

// --json prints the document instead of the table; --json-out also writes it.
void emit(nlohmann::json j, const std::filesystem::path& measured, bool json, const std::string& json_out,
          const std::function<void()>& print_table) {
  tools::stamp(j, tool, measured);
  if (json) {
    fmt::print("{}\n", j.dump());
  } else {
    print_table();
  }
  if (!json_out.empty()) tools::write_json_out(json_out, j);
}

int io_command(const io_cli& cli) {
  const workload_params p = to_workload(cli);
  start_backend(p);  // built and dropped: a bad name or queue depth is reported before the file is written
  prepare_test_file(p.file, p.size_bytes);
  const run_result r = run_workload(p);
  emit(to_json(r), p.file, cli.json, cli.json_out, [&] { print_run(stdout, r); });
  return 0;
}

int fio_command(const io_cli& cli) {
  const fio_params p = to_fio(cli);
  prepare_test_file(p.file, p.size_bytes);
  const run_result r = run_fio(p);
  emit(to_json(r), p.file, cli.json, cli.json_out, [&] {
    print_run(stdout, r);
    if (!r.command.empty()) fmt::print("  command: {}\n", r.command);
  });
  return 0;
}

int wal_command(const wal_cli& cli) {
  const wal_params p = to_wal(cli);
  const wal_result r = run_wal_bench(p);
  emit(to_json(r), p.dir, cli.json, cli.json_out, [&] { print_wal_result(stdout, r); });
  return 0;
}

int cache_command(const cache_cli& cli) {
  const cache_params p = to_cache(cli);
  const cache_result r = run_cache_bench(p);
  emit(to_json(r), p.file, cli.json, cli.json_out, [&] { print_cache_result(stdout, r); });
  return 0;
}

}  // namespace

}  // namespace pageio::bench

int main(int argc, char** argv) {
  using namespace pageio::bench;
  CLI::App app{"pageio-bench: measure pageio's I/O backends, alone or against fio", tool};
  pageio::tools::set_common_flags(app, pageio::version_string);
  app.require_subcommand(1, 1);
  app.footer("Exit status: 0 success, 2 usage error, 1 runtime failure.");

  io_cli io_opts;
  auto* io = app.add_subcommand("io", "run one backend at a fixed queue depth and report IOPS, latency, CPU per I/O");
  add_io_options(*io, io_opts, false);

  io_cli fio_opts;
  auto* fio = app.add_subcommand("fio", "run the same workload with fio and the matching engine (fio on $PATH)");
  add_io_options(*fio, fio_opts, true);

  wal_cli wal_opts;
  auto* walc = app.add_subcommand("wal", "W threads committing records back to back through the write-ahead log");
  add_wal_options(*walc, wal_opts);

  cache_cli cache_opts;
  auto* cachec = app.add_subcommand(
      "cache", "T threads x N fetches in flight through the buffer pool (pageio::pagecache): lookups/s, hit ratio, "
               "miss IOPS, and a hit's cost against a buffered pread of an OS-cached page");
  add_cache_options(*cachec, cache_opts);

  compare_cli cmp_opts;
  auto* cmp = app.add_subcommand("compare", "every backend against each other and against fio; table, JSON, SVG");
  add_compare_options(*cmp, cmp_opts);

  if (auto code = pageio::tools::parse_command_line(app, argc, argv)) return *code;

  try {
    if (*io) return io_command(io_opts);
    if (*fio) return fio_command(fio_opts);
    if (*walc) return wal_command(wal_opts);
    if (*cachec) return cache_command(cache_opts);
    if (*cmp) return run_compare(to_compare(cmp_opts));
  } catch (const usage_error& e) {
    return pageio::tools::report_usage_error(tool, e.what());
  } catch (const std::exception& e) {
    pageio::tools::report_failure(tool, e.what());
    return exit_runtime;
  }
  return exit_usage;
}
