#include "compare.hpp"
#include "numbers.hpp"

#include "run_info.hpp"

#include "chart.hpp"
#include "compare_report.hpp"
#include "errors.hpp"
#include "fio_runner.hpp"
#include "process.hpp"
#include "size_parse.hpp"
#include "test_file.hpp"
#include "workload.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>

namespace pageio::bench {

namespace {

using clock = std::chrono::steady_clock;

// Start-up cost of one run besides its warm-up and measured time, for the
// estimate: fio spends ~0.3 s starting and laying out its job.
constexpr double pageio_overhead_s = 0.05;
constexpr double fio_overhead_s = 0.35;
constexpr double write_rate_bytes_s = 1e9;  // for the estimate of creating the test file

double seconds_since(clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); }

std::string mmss(double s) {
  const auto total = static_cast<long>(std::lround(s));
  return fmt::format("{}:{:02d}", total / 60, total % 60);
}

}  // namespace

namespace {

// Each metric's median on its own: with an odd round count every value is one
// that was measured.
run_result median_run(const std::vector<run_result>& runs) {
  run_result m = runs.front();
  auto med = [&](double run_result::*field) {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(r.*field);
    m.*field = median_of(std::move(v));
  };
  med(&run_result::iops);
  med(&run_result::mib_s);
  med(&run_result::lat_p50_us);
  med(&run_result::lat_p99_us);
  med(&run_result::lat_p999_us);
  med(&run_result::lat_mean_us);
  med(&run_result::lat_max_us);
  med(&run_result::clat_p50_us);
  med(&run_result::clat_p99_us);
  med(&run_result::cpu_us_per_io);
  med(&run_result::seconds);
  std::vector<double> ios;
  for (const auto& r : runs) ios.push_back(static_cast<double>(r.ios));
  m.ios = static_cast<std::uint64_t>(median_of(std::move(ios)));
  return m;
}

std::vector<std::string> chosen_backends(const compare_options& o, const std::vector<backend_status>& probed) {
  std::vector<std::string> out;
  // The engine's registry, in the reverse of its best-first order: the
  // reference (sync) first.
  for (auto it = probed.rbegin(); it != probed.rend(); ++it) {
    const std::string& name = it->name;
    const bool wanted = o.only_backends.empty() ||
                        std::find(o.only_backends.begin(), o.only_backends.end(), name) != o.only_backends.end();
    if (wanted && it->available) out.push_back(name);
  }
  return out;
}

// The Asio rows join the randread QD32 case only.
bool asio_case(const compare_options& o, const case_spec& c) {
  return o.with_asio && c.rw == rw_mode::randread && c.qd == 32;
}

// The engines run for one case, in groups that alternate: a backend, its fio
// engine, and (see asio_case) the backend under Asio coroutines, plus Asio's
// own file beside uring.
std::vector<std::vector<engine_spec>> pairs_for(const compare_options& o, const case_spec& c,
                                                const std::vector<std::string>& backends, bool with_fio) {
  std::vector<std::vector<engine_spec>> pairs;
  for (const auto& b : backends) {
    std::vector<engine_spec> pair{{"pageio", b, b}};
    const std::string fio_engine = fio_counterpart(b);
    // psync does one I/O at a time: a queue depth above 1 means nothing to it.
    if (with_fio && !(fio_engine == "psync" && c.qd > 1)) pair.push_back({"fio", fio_engine, b});
    if (asio_case(o, c)) {
      pair.push_back({"asio", b, b});
      if (b == "uring") pair.push_back({"asio-file", "io_uring", b});
    }
    if (b == "uring") {
      // The interface's ceiling: registered buffers and file on both sides.
      pair.push_back({"pageio-reg", b, b});
      if (with_fio) pair.push_back({"fio-reg", "io_uring", b});
    }
    pairs.push_back(std::move(pair));
  }
  return pairs;
}

run_result run_one(const compare_options& o, const case_spec& c, const engine_spec& e) {
  workload_shape shape;
  shape.rw = c.rw;
  shape.bs = o.bs;
  shape.qd = c.qd;
  shape.seconds = o.seconds;
  shape.warmup_seconds = o.warmup_seconds;
  shape.file = o.file;
  shape.size_bytes = o.size_bytes;
  shape.cpu = o.cpu;
  if (e.tool != "fio" && e.tool != "fio-reg") {
    workload_params p;
    static_cast<workload_shape&>(p) = shape;
    p.backend = e.backend;
    p.callback_batch = o.callback_batch;
    p.resubmit_gap_ns = o.resubmit_gap_ns;
    p.uring_single_thread = o.uring_single_thread;
    p.uring_register = e.tool == "pageio-reg";
    p.api = e.tool == "pageio" || e.tool == "pageio-reg" ? "raw" : e.tool;
    return run_workload(p);
  }
  fio_params p;
  static_cast<workload_shape&>(p) = shape;
  p.engine = e.engine;
  p.batch = o.fio_batch;
  p.registered = e.tool == "fio-reg";
  return run_fio(p);
}

}  // namespace

std::string case_spec::label() const { return fmt::format("{} QD{}", to_string(rw), qd); }

const cell* compare_results::find(const case_spec& c, const std::string& tool, const std::string& engine) const {
  for (const auto& x : cells) {
    if (x.c.rw == c.rw && x.c.qd == c.qd && x.e.tool == tool && x.e.engine == engine) return &x;
  }
  return nullptr;
}

int run_compare(const compare_options& o) {
  const auto started = clock::now();
  fmt::print("pageio-bench compare: data directory {} ({})\n", std::filesystem::absolute(o.dir).string(),
             o.dir_from == "default" ? "default; set --dir or $PAGEIO_DATA_DIR to change" : "from " + o.dir_from);
  std::fflush(stdout);
  try {
    check_data_dir(o.dir);
  } catch (const std::exception& e) {
    fmt::print(stderr, "pageio-bench: {}\n", e.what());
    return exit_runtime;
  }

  compare_results res;
  res.opts = o;
  res.backends = probe_backends();
  for (const auto& b : res.backends) {
    if (!b.available) fmt::print("backend {} is unavailable here: {}\n", b.name, b.reason);
  }
  auto backends = chosen_backends(o, res.backends);
  if (o.quick && !backends.empty()) backends = {backends.back()};  // the best that starts here
  if (backends.empty()) {
    fmt::print(stderr, "pageio-bench: none of the requested backends starts here\n");
    return exit_runtime;
  }
  if (o.use_fio) {
    if (auto v = fio_version()) {
      res.fio_version = *v;
    } else if (find_on_path("fio")) {
      fmt::print("fio is on $PATH but `fio --version` fails: running pageio only\n");
    } else {
      fmt::print("fio is not on $PATH: running pageio only (install fio for the reference runs)\n");
    }
  }
  const bool with_fio = !res.fio_version.empty();

  res.cases = {{rw_mode::randread, 1}, {rw_mode::randread, 32}, {rw_mode::randwrite, 32}};
  if (o.quick) res.cases = {{rw_mode::randread, 32}};
  std::size_t pageio_runs = 0, fio_runs = 0;
  for (const auto& c : res.cases) {
    for (const auto& pair : pairs_for(o, c, backends, with_fio)) {
      for (const auto& e : pair) {
        res.cells.push_back({c, e, {}, {}, {}});
        (e.tool == "fio" || e.tool == "fio-reg" ? fio_runs : pageio_runs) += o.rounds;
      }
    }
  }
  const bool must_write = test_file_needs_writing(o.file, o.size_bytes);
  const double per_run = o.seconds + o.warmup_seconds;
  const double wal_estimate =
      o.with_wal ? o.wal_rounds * (3 * (o.wal_seconds + o.wal_warmup_seconds + 0.3) + (find_on_path("db_bench") ? 2 * (o.wal_seconds + 1.5) : 0) +
                                   (with_fio ? 2 * (o.wal_seconds + 1) : 0))
                 : 0;
  // Five runs (two through the pool, three raw on the pool's file), the
  // hit-cost loops, and reading the pool file through once (~1 GB/s when the
  // host holds it, ~0.1 GB/s when not).
  const double cache_estimate =
      o.with_cache ? 5 * (o.cache_seconds + o.warmup_seconds + 0.1) + 1.5 + static_cast<double>(o.size_bytes) / 1e9 : 0;
  // Five timed cases for each tool in each round, one load of 1,000,000
  // keys each, a load of 100,000 keys and 1,000,000 overwrites.
  const double kv_estimate =
      o.with_kv ? (find_on_path("db_bench") ? 2 : 1) * (5.0 * o.kv_rounds * (o.kv_seconds + 1) + 6) + 15 : 0;
  const double estimate = wal_estimate + cache_estimate + kv_estimate + static_cast<double>(pageio_runs) * (per_run + pageio_overhead_s) +
                          static_cast<double>(fio_runs) * (per_run + fio_overhead_s) +
                          (must_write ? static_cast<double>(o.size_bytes) / write_rate_bytes_s : 0.0) +
                          static_cast<double>(o.size_bytes) / 1e9;  // reading it through (~1 GB/s when the host holds it)
  fmt::print("backends: {}; fio: {}; {} x {} cases, {} pageio + {} fio runs of {:.1f} s + {:.1f} s warm-up, "
             "{} round(s)\n",
             fmt::join(backends, ", "), with_fio ? res.fio_version : "not used", format_size(o.bs),
             res.cases.size(), pageio_runs, fio_runs, o.seconds, o.warmup_seconds, o.rounds);
  if (o.cpu >= 0) fmt::print("every run is pinned to CPU {} (pageio: the benchmark thread; fio: --cpus_allowed)\n", o.cpu);
  fmt::print("estimated duration: {} (m:ss){}\n", mmss(estimate), must_write ? ", including writing the test file" : "");
  std::fflush(stdout);

  if (must_write) {
    fmt::print("writing test file {} ({})...\n", o.file.string(), format_size(o.size_bytes));
    std::fflush(stdout);
    const auto t = clock::now();
    prepare_test_file(o.file, o.size_bytes);
    fmt::print("  written in {:.1f} s\n", seconds_since(t));
  } else {
    fmt::print("reusing test file {} ({})\n", o.file.string(), format_size(o.size_bytes));
  }
  // The host's cache of the file, whatever it was, is made the same for
  // every run: in one full compare of a file not read for a while, randread
  // QD32 rose from ~32k to ~48k IOPS over its first runs as they warmed it,
  // so whichever engine ran first lost.
  res.read_through_s = read_through_before_runs(o.file, "", "test file", &res.read_through_error);

  const std::size_t total_runs = pageio_runs + fio_runs;
  std::size_t done = 0;
  bool failed = false;
  auto cell_of = [&](const case_spec& c, const engine_spec& e) -> cell& {
    return const_cast<cell&>(*res.find(c, e.tool, e.engine));
  };
  for (const auto& c : res.cases) {
    for (unsigned round = 0; round < o.rounds; ++round) {
      for (auto pair : pairs_for(o, c, backends, with_fio)) {
        if (round % 2 == 1) std::reverse(pair.begin(), pair.end());  // fio first every other round
        for (const auto& e : pair) {
          cell& x = cell_of(c, e);
          ++done;
          const std::string head = fmt::format("[{:>2}/{}] {:<14} {:<18}", done, total_runs, c.label(), e.label());
          std::fflush(stdout);
          try {
            run_result r = run_one(o, c, e);
            fmt::print("{} {:>9} IOPS  p50 {:>7.1f} µs  p99 {:>7.1f} µs  CPU {:>5.2f} µs/IO  ({} elapsed)\n", head,
                       fmt::format("{:.0f}", r.iops), r.lat_p50_us, r.lat_p99_us, r.cpu_us_per_io,
                       mmss(seconds_since(started)));
            x.runs.push_back(std::move(r));
          } catch (const usage_error&) {
            throw;
          } catch (const std::exception& ex) {
            failed = true;
            if (x.error.empty()) x.error = ex.what();
            fmt::print("{} FAILED: {}\n", head, ex.what());
          }
          std::fflush(stdout);
        }
      }
    }
  }
  for (auto& x : res.cells) {
    if (!x.runs.empty()) x.median = median_run(x.runs);
  }
  if (o.with_wal) {
    wal_compare_options w;
    w.dir = o.dir;
    w.fio_file = o.file;
    w.fio_size = o.size_bytes;
    w.backend = std::find(backends.begin(), backends.end(), "uring") != backends.end() ? "uring"
                : std::find(backends.begin(), backends.end(), "aio") != backends.end() ? "aio"
                                                                                        : backends.front();
    w.seconds = o.wal_seconds;
    w.rounds = o.wal_rounds;
    w.warmup_seconds = o.wal_warmup_seconds;
    w.use_fio = with_fio;
    w.use_db_bench = find_on_path("db_bench").has_value();
    w.cpu = o.cpu;
    try {
      res.wal = run_wal_compare(w);
    } catch (const std::exception& e) {
      failed = true;
      fmt::print("[wal] FAILED: {}\n", e.what());
    }
  }
  if (o.with_cache) {
    cache_compare_options cc;
    cc.file = o.file;
    cc.size_bytes = o.size_bytes;
    cc.backend = std::find(backends.begin(), backends.end(), "uring") != backends.end() ? "uring"
                 : std::find(backends.begin(), backends.end(), "aio") != backends.end() ? "aio"
                                                                                         : backends.front();
    cc.seconds = o.cache_seconds;
    cc.callback_batch = o.callback_batch;
    cc.warmup_seconds = o.warmup_seconds;
    auto table_iops = [&](unsigned qd) {
      const cell* x = res.find({rw_mode::randread, qd}, "pageio", cc.backend);
      return x != nullptr && !x->runs.empty() ? x->median.iops : not_measured;
    };
    cc.table_randread_qd32_iops = table_iops(32);
    cc.table_randread_qd1_iops = table_iops(1);
    res.cache = run_cache_compare(cc, &failed);
  }
  if (o.with_kv) {
    kv_compare_options kc;
    kc.dir = o.dir;
    kc.seconds = o.kv_seconds;
    kc.rounds = o.kv_rounds;
    kc.use_db_bench = find_on_path("db_bench").has_value();
    res.kv = run_kv_compare(kc, &failed);
    if (!kc.use_db_bench) res.kv->notes.push_back("db_bench is not on $PATH (Debian: rocksdb-tools): no RocksDB reference");
  }
  res.duration_seconds = seconds_since(started);

  fmt::print("\n");
  print_compare_table(stdout, res);
  if (res.wal) print_wal_compare(stdout, *res.wal);
  if (res.cache) print_cache_compare(stdout, *res.cache);
  if (res.kv) print_kv_compare(stdout, *res.kv);
  print_ratio_spread(stdout, res);
  {
    std::ofstream out(o.json_out);
    nlohmann::json j = compare_json(res);
    tools::stamp(j, "pageio-bench", o.dir);
    out << j.dump(2) << '\n';
    if (!out) {
      fmt::print(stderr, "pageio-bench: cannot write {}\n", o.json_out.string());
      failed = true;
    } else {
      fmt::print("results written to {}\n", o.json_out.string());
    }
  }
  if (find_on_path("gnuplot")) {
    try {
      write_chart(res, o.chart);
      fmt::print("chart written to {}\n", o.chart.string());
    } catch (const std::exception& e) {
      fmt::print(stderr, "pageio-bench: no chart: {}\n", e.what());
    }
  } else {
    fmt::print("gnuplot is not on $PATH: no chart\n");
  }
  fmt::print("compare took {} (m:ss)\n", mmss(seconds_since(started)));
  return failed ? exit_runtime : 0;
}

}  // namespace pageio::bench
