#include "compare_report.hpp"
#include "numbers.hpp"

#include "report.hpp"
#include "size_parse.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace pageio::bench {

namespace {

bool has_numbers(const cell* c) { return c != nullptr && !c->runs.empty(); }



}  // namespace

std::string fio_counterpart(const std::string& backend) {
  if (backend == "sync") return "psync";
  if (backend == "aio") return "libaio";
  if (backend == "uring") return "io_uring";
  return "";
}

double iops_ratio(const cell* a, const cell* b) {
  if (!has_numbers(a) || !has_numbers(b) || !(b->median.iops > 0)) return not_measured;
  return a->median.iops / b->median.iops;
}

namespace {

// a / b of one metric in each round (empty when a round is missing or b's is 0).
std::vector<double> ratio_each_round(const cell* a, const cell* b, double run_result::*field) {
  std::vector<double> out;
  if (!has_numbers(a) || !has_numbers(b) || a->runs.size() != b->runs.size()) return out;
  for (std::size_t i = 0; i < a->runs.size(); ++i) {
    if (!(b->runs[i].*field > 0)) return {};
    out.push_back(a->runs[i].*field / b->runs[i].*field);
  }
  return out;
}

}  // namespace

std::vector<double> iops_ratio_each_round(const cell* a, const cell* b) {
  return ratio_each_round(a, b, &run_result::iops);
}

double paired_iops_ratio(const cell* a, const cell* b) { return median_of(iops_ratio_each_round(a, b)); }

namespace {

std::vector<double> cpu_ratio_each_round(const cell* a, const cell* b) {
  return ratio_each_round(a, b, &run_result::cpu_us_per_io);
}

const cell* fio_reference(const compare_results& r, const cell& x) {
  if (x.e.tool == "pageio") return r.find(x.c, "fio", fio_counterpart(x.e.engine));
  if (x.e.tool == "pageio-reg") return r.find(x.c, "fio-reg", fio_counterpart(x.e.engine));
  return nullptr;
}

// "0.95x [0.91-1.02x]": the median of the rounds' ratios and their range.
std::string with_spread(const std::vector<double>& each) {
  if (each.empty()) return "-";
  std::string s = times(median_of(each));
  if (each.size() > 1) {
    const auto [lo, hi] = std::minmax_element(each.begin(), each.end());
    s += fmt::format(" [{:.2f}-{:.2f}x]", *lo, *hi);
  }
  return s;
}

}  // namespace

void print_ratio_spread(std::FILE* out, const compare_results& r) {
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& c : r.cases) {
    for (const auto& x : r.cells) {
      if (x.c.rw != c.rw || x.c.qd != c.qd || (x.e.tool != "pageio" && x.e.tool != "pageio-reg")) continue;
      const cell* ref = fio_reference(r, x);
      if (!has_numbers(&x) || !has_numbers(ref)) continue;
      rows.emplace_back(fmt::format("{} {} / {}", c.label(), x.e.label(), ref->e.label()),
                        fmt::format("IOPS {:<20} CPU/IO {}", with_spread(iops_ratio_each_round(&x, ref)),
                                    with_spread(cpu_ratio_each_round(&x, ref))));
    }
  }
  if (r.wal) {
    for (const auto& shape : r.wal->shapes) {
      if (shape.each_round.empty()) continue;
      for (const auto& ref : shape.references) {
        const auto each = shape.ratio_each_round(ref);
        if (each.empty()) continue;
        rows.emplace_back(fmt::format("log {} x {} / {}", shape.median.writers, format_size(shape.median.record_size),
                                      ref.what),
                          fmt::format("{} {}", ref.unit == "MiB/s" ? "MiB/s" : "commits/s", with_spread(each)));
      }
    }
  }
  if (rows.empty()) return;
  std::size_t width = 0;
  for (const auto& [what, value] : rows) width = std::max(width, what.size());
  fmt::print(out,
             "\nratios with their spread: pageio / reference, the median of the rounds' paired ratios [lowest-highest "
             "round]\n(above 1: pageio ahead; for CPU/IO below 1: pageio cheaper). Between two builds, a ratio has "
             "moved only where the two ranges do not overlap.\n");
  for (const auto& [what, value] : rows) fmt::print(out, "  {:<{}}  {}\n", what, width, value);
}

double cpu_ratio(const cell* a, const cell* b) {
  if (!has_numbers(a) || !has_numbers(b) || !(b->median.cpu_us_per_io > 0)) return not_measured;
  return a->median.cpu_us_per_io / b->median.cpu_us_per_io;
}

void print_compare_table(std::FILE* out, const compare_results& r) {
  const auto& o = r.opts;
  fmt::print(out, "{} O_DIRECT, {} file, {:g} s per run{}; latency is submission to completion\n",
             format_size(o.bs), format_size(o.size_bytes), o.seconds,
             o.rounds > 1 ? fmt::format(", median of {} rounds", o.rounds) : "");
  if (std::isfinite(r.read_through_s)) {
    fmt::print(out, "the test file was read through once first ({:.1f} s), so that the host caches it alike for every run\n",
               r.read_through_s);
  } else if (!r.read_through_error.empty()) {
    fmt::print(out, "the test file could not be read through first ({}): the first runs may find it less cached\n",
               r.read_through_error);
  }
  const std::string rule(121, '-');
  fmt::print(out, "{:<15} {:<18} {:>9} {:>8} {:>9} {:>9} {:>10} {:>12} {:>11} {:>13}\n", "case", "engine", "IOPS",
             "MiB/s", "p50 µs", "p99 µs", "CPU µs/IO", "IOPS vs fio", "CPU vs fio", "IOPS vs sync");
  fmt::print(out, "{}\n", rule);
  std::vector<std::string> failures;
  for (const auto& c : r.cases) {
    bool first = true;
    for (const auto& x : r.cells) {
      if (x.c.rw != c.rw || x.c.qd != c.qd) continue;
      const std::string case_col = first ? c.label() : "";
      first = false;
      if (!has_numbers(&x)) {
        fmt::print(out, "{:<15} {:<18} {:>9}  (see below)\n", case_col, x.e.label(), "FAILED");
        failures.push_back(fmt::format("{} {}: {}", c.label(), x.e.label(), x.error));
        continue;
      }
      std::string vs_fio, cpu_vs_fio, vs_sync;
      if (x.e.tool == "pageio" || x.e.tool == "pageio-reg") {
        if (const cell* ref = fio_reference(r, x)) {
          vs_fio = times(iops_ratio(&x, ref));
          cpu_vs_fio = times(cpu_ratio(&x, ref));
        }
        vs_sync = times(iops_ratio(&x, r.find(c, "pageio", "sync")));
      }
      const auto& m = x.median;
      std::string line = fmt::format("{:<15} {:<18} {:>9} {:>8} {:>9} {:>9} {:>10} {:>12} {:>11} {:>13}", case_col,
                                     x.e.label(), group_thousands(m.iops), fixed(m.mib_s, 1), fixed(m.lat_p50_us, 1),
                                     fixed(m.lat_p99_us, 1), fixed(m.cpu_us_per_io, 2), vs_fio, cpu_vs_fio, vs_sync);
      line.erase(line.find_last_not_of(' ') + 1);
      fmt::print(out, "{}\n", line);
    }
    fmt::print(out, "{}\n", rule);
  }
  for (const auto& f : failures) fmt::print(out, "FAILED {}\n", f);

  if (!r.fio_version.empty()) {
    fmt::print(out, "\npageio / fio ({}, libaio/io_uring submit batch {}): IOPS ratio (above 1: pageio faster){}, "
                    "CPU-per-I/O ratio (below 1: pageio cheaper)\n",
               r.fio_version, o.fio_batch == 0 ? std::string("= QD") : std::to_string(o.fio_batch),
               o.rounds > 1 ? " of the medians, then the median of the per-round ratios (paired)" : "");
    for (const auto& c : r.cases) {
      std::string line = fmt::format("  {:<15}", c.label());
      for (const char* b : {"sync", "aio", "uring"}) {
        const cell* mine = r.find(c, "pageio", b);
        const cell* ref = r.find(c, "fio", fio_counterpart(b));
        if (!mine || !ref) continue;
        line += fmt::format("  {}/{} {}", b, fio_counterpart(b), times(iops_ratio(mine, ref)));
        // Each round runs the two back to back: the ratio within a round
        // is free of the disk's drift from one minute to the next.
        if (o.rounds > 1) line += fmt::format(", paired {}", times(paired_iops_ratio(mine, ref)));
        line += fmt::format(" (CPU {})", times(cpu_ratio(mine, ref)));
      }
      if (const cell* mine = r.find(c, "pageio-reg", "uring")) {
        if (const cell* ref = r.find(c, "fio-reg", "io_uring")) {
          line += fmt::format("  registered {}", times(iops_ratio(mine, ref)));
          if (o.rounds > 1) line += fmt::format(", paired {}", times(paired_iops_ratio(mine, ref)));
          line += fmt::format(" (CPU {})", times(cpu_ratio(mine, ref)));
        }
      }
      fmt::print(out, "{}\n", line);
    }
  }

  for (const auto& c : r.cases) {
    const cell* file_ref = r.find(c, "asio-file", "io_uring");
    std::string line;
    for (const char* b : {"sync", "aio", "uring"}) {
      const cell* mine = r.find(c, "asio", b);
      if (!mine) continue;
      line += fmt::format("  {} {}", b, times(iops_ratio(mine, r.find(c, "pageio", b))));
    }
    if (line.empty()) continue;
    fmt::print(out, "\nAsio coroutines, {}: IOPS of pageio under asio_driver / the same backend raw:{}\n", c.label(),
               line);
    if (file_ref) {
      fmt::print(out, "  pageio uring under asio_driver / Boost.Asio random_access_file (io_uring): {}\n",
                 times(iops_ratio(r.find(c, "asio", "uring"), file_ref)));
    }
  }
}

nlohmann::json compare_json(const compare_results& r) {
  const auto& o = r.opts;
  nlohmann::json j;
  j["data_dir"] = std::filesystem::absolute(o.dir).string();
  j["file"] = std::filesystem::absolute(o.file).string();
  j["size_bytes"] = o.size_bytes;
  j["bs"] = o.bs;
  j["seconds"] = o.seconds;
  j["warmup_seconds"] = o.warmup_seconds;
  j["rounds"] = o.rounds;
  j["fio"] = r.fio_version.empty() ? nlohmann::json() : nlohmann::json(r.fio_version);
  j["fio_batch"] = o.fio_batch;            // 0: the queue depth
  j["pinned_cpu"] = o.cpu >= 0 ? nlohmann::json(o.cpu) : nlohmann::json();
  j["callback_batch"] = o.callback_batch;  // 0: the engine's default
  j["resubmit_gap_ns"] = o.resubmit_gap_ns;  // -1: the engine's default
  j["duration_seconds"] = r.duration_seconds;
  j["read_through_s"] = number_or_null(r.read_through_s);
  if (!r.read_through_error.empty()) j["read_through_error"] = r.read_through_error;
  j["backends"] = nlohmann::json::array();
  for (const auto& b : r.backends) {
    j["backends"].push_back({{"name", b.name}, {"available", b.available}, {"reason", b.reason}});
  }
  j["results"] = nlohmann::json::array();
  for (const auto& x : r.cells) {
    nlohmann::json e = has_numbers(&x) ? to_json(x.median) : nlohmann::json::object();
    e["case"] = x.c.label();
    e["rw"] = to_string(x.c.rw);
    e["qd"] = x.c.qd;
    e["tool"] = x.e.tool;
    e["engine"] = x.e.engine;
    e["backend"] = x.e.backend;  // for fio rows: the pageio backend it is held against
    nlohmann::json each = nlohmann::json::array();
    for (const auto& run : x.runs) each.push_back(run.iops);
    e["iops_each_round"] = each;
    e["error"] = x.error.empty() ? nlohmann::json() : nlohmann::json(x.error);
    j["results"].push_back(std::move(e));
  }
  if (r.wal) j["wal"] = wal_compare_json(*r.wal);
  if (r.cache) j["cache"] = cache_compare_json(*r.cache);
  if (r.kv) j["kv"] = kv_compare_json(*r.kv);
  j["ratios"] = nlohmann::json::array();
  for (const auto& c : r.cases) {
    nlohmann::json e = {{"case", c.label()}};
    const cell* sync = r.find(c, "pageio", "sync");
    for (const char* b : {"sync", "aio", "uring"}) {
      const cell* mine = r.find(c, "pageio", b);
      if (!mine) continue;
      const std::string f = fio_counterpart(b);
      if (const cell* ref = r.find(c, "fio", f)) {
        e[fmt::format("{}_vs_fio_{}_iops", b, f)] = number_or_null(iops_ratio(mine, ref));
        // The median of the per-round ratios, and the ratios themselves.
        e[fmt::format("{}_vs_fio_{}_iops_paired", b, f)] = number_or_null(paired_iops_ratio(mine, ref));
        e[fmt::format("{}_vs_fio_{}_iops_each_round", b, f)] = iops_ratio_each_round(mine, ref);
        e[fmt::format("{}_vs_fio_{}_cpu", b, f)] = number_or_null(cpu_ratio(mine, ref));
      }
      if (sync && std::string(b) != "sync") e[fmt::format("{}_vs_sync_iops", b)] = number_or_null(iops_ratio(mine, sync));
      if (const cell* asio = r.find(c, "asio", b)) {
        e[fmt::format("{}_asio_vs_raw_iops", b)] = number_or_null(iops_ratio(asio, mine));
      }
    }
    if (const cell* mine = r.find(c, "pageio-reg", "uring")) {
      // Registered buffers and file on both sides (pageio --uring-register,
      // fio --fixedbufs --registerfiles).
      if (const cell* ref = r.find(c, "fio-reg", "io_uring")) {
        e["uring_registered_vs_fio_io_uring_registered_iops"] = number_or_null(iops_ratio(mine, ref));
        e["uring_registered_vs_fio_io_uring_registered_iops_paired"] = number_or_null(paired_iops_ratio(mine, ref));
        e["uring_registered_vs_fio_io_uring_registered_iops_each_round"] = iops_ratio_each_round(mine, ref);
        e["uring_registered_vs_fio_io_uring_registered_cpu"] = number_or_null(cpu_ratio(mine, ref));
        e["uring_registered_vs_fio_io_uring_registered_cpu_each_round"] = cpu_ratio_each_round(mine, ref);
      }
      if (const cell* raw = r.find(c, "pageio", "uring")) {
        e["uring_registered_vs_raw_iops"] = number_or_null(iops_ratio(mine, raw));
      }
    }
    if (const cell* file_ref = r.find(c, "asio-file", "io_uring")) {
      e["uring_asio_vs_asio_file_iops"] = number_or_null(iops_ratio(r.find(c, "asio", "uring"), file_ref));
    }
    j["ratios"].push_back(std::move(e));
  }
  return j;
}

}  // namespace pageio::bench
