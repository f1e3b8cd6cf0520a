#include "cache_compare.hpp"
#include "numbers.hpp"

#include "errors.hpp"
#include "pool_file.hpp"
#include "report.hpp"
#include "size_parse.hpp"
#include "test_file.hpp"
#include "workload.hpp"

#include <fmt/format.h>

#include <cmath>

namespace pageio::bench {

namespace {


std::string shape_label(const cache_result& c) {
  std::string dist = c.dist == "zipf" ? fmt::format("zipf {:g}", c.zipf_theta) : c.dist;
  return fmt::format("{} {}x{}{}", dist, c.threads, c.inflight, c.inflight == 1 ? " blocking" : " async");
}

double iops_of(const std::optional<run_result>& r) { return r ? r->iops : not_measured; }

}  // namespace

const cache_result* cache_compare_results::find(unsigned inflight, const std::string& dist) const {
  for (const auto& c : runs) {
    if (c.inflight == inflight && c.dist == dist) return &c;
  }
  return nullptr;
}

cache_compare_results run_cache_compare(const cache_compare_options& o, bool* failed) {
  cache_compare_results r;
  r.backend = o.backend;
  r.cache_mb = o.cache_mb;
  r.callback_batch = o.callback_batch;
  r.size_bytes = o.size_bytes;
  r.file = o.file;
  r.table_randread_qd32_iops = o.table_randread_qd32_iops;
  r.table_randread_qd1_iops = o.table_randread_qd1_iops;

  auto cache_run = [&](unsigned inflight, const std::string& dist, bool hit_cost) {
    cache_params p;
    p.backend = o.backend;
    p.file = o.file;
    p.size_bytes = o.size_bytes;
    p.cache_mb = o.cache_mb;
    p.threads = 1;
    p.inflight = inflight;
    p.dist = dist;
    p.seconds = o.seconds;
    p.warmup_seconds = o.warmup_seconds;
    p.measure_hit_cost = hit_cost;
    const std::string label = fmt::format("{} 1x{}", dist, inflight);
    try {
      const cache_result c = run_cache_bench(p);
      fmt::print("[cache] pageio {} {:<14} {:>10} lookups/s  hit ratio {:>5.1f}%  {:>9} miss IOPS  p50 {:>7.1f} µs\n",
                 c.backend, label, group_thousands(c.lookups_per_s), 100 * c.hit_ratio, group_thousands(c.miss_iops),
                 c.lat_p50_us);
      if (std::isfinite(c.ns_per_hit)) {
        fmt::print("[cache] hit (fetch + release) {:.1f} ns, with shared latch + 1-byte read {:.1f} ns; buffered "
                   "pread of an OS-cached 4 KiB page {:.1f} ns: 1/{:.1f}\n",
                   c.ns_per_hit, c.ns_per_hit_latched, c.pread_hit_ns, 1 / c.hit_vs_pread);
      }
      r.runs.push_back(c);
    } catch (const usage_error&) {
      throw;
    } catch (const std::exception& e) {
      *failed = true;
      r.notes.push_back(fmt::format("{} FAILED: {}", label, e.what()));
      fmt::print("[cache] {} FAILED: {}\n", label, e.what());
    }
    std::fflush(stdout);
  };

  // The raw references read the pool's own file (<test file>.pool), not the
  // test file: on a virtual disk the host caches the image, and two files
  // written at different times can differ tenfold in read speed (measured:
  // randread QD32 ~12k IOPS on a pool file written two hours earlier, ~100k
  // on the test file just written). Written first, so that the raw run before
  // the pool's has it.
  const std::filesystem::path pool_file = pool_file_for(o.file);
  try {
    prepare_pool_file(pool_file, o.size_bytes);
  } catch (const std::exception& e) {
    *failed = true;
    r.notes.push_back(fmt::format("writing the pool file FAILED: {}", e.what()));
    fmt::print("[cache] writing the pool file FAILED: {}\n", e.what());
    return r;
  }

  // The host's cache of the pool file, whatever it was, is made the same for
  // every run: in one full compare the raw reference read it at 8-10k IOPS
  // while the pool's run, warming it as it went, missed at 47k.
  std::string why;
  r.read_through_s = read_through_before_runs(pool_file, "[cache] ", "pool file", &why);
  if (!why.empty()) r.notes.push_back(fmt::format("reading the pool file through FAILED (the runs go on): {}", why));

  // The raw backend at the same queue depth on the same file.
  auto raw_run = [&](unsigned qd, std::optional<run_result>& into) {
    workload_params w;
    w.rw = rw_mode::randread;
    w.bs = 4096;
    w.qd = qd;
    w.seconds = o.seconds;
    w.warmup_seconds = o.warmup_seconds;
    w.file = pool_file;
    w.size_bytes = o.size_bytes;
    w.backend = o.backend;
    w.callback_batch = o.callback_batch;
    w.api = "raw";
    try {
      into = run_workload(w);
      fmt::print("[cache] raw {} randread QD{:<2} (reference) {:>10} IOPS  p50 {:>7.1f} µs\n", o.backend, qd,
                 group_thousands(into->iops), into->lat_p50_us);
    } catch (const usage_error&) {
      throw;
    } catch (const std::exception& e) {
      *failed = true;
      r.notes.push_back(fmt::format("raw randread QD{} FAILED: {}", qd, e.what()));
      fmt::print("[cache] raw randread QD{} FAILED: {}\n", qd, e.what());
    }
    std::fflush(stdout);
  };

  // (a) and (b): the pool at QD32 over a file far larger than it, with the
  // hit cost measured after it; then the raw backend at QD32.
  // The raw run goes both before and after it, and (b) is held against
  // their mean: this disk drifts by tens of percent from one run to the next.
  raw_run(32, r.raw_qd32_before);
  cache_run(32, "uniform", true);
  raw_run(32, r.raw_qd32);
  // One blocking fetch at a time against raw QD1 right after it (a skewed
  // load is `pageio-bench cache --dist zipf`; left out to keep compare within
  // two minutes).
  cache_run(1, "uniform", false);
  raw_run(1, r.raw_qd1);
  return r;
}

void print_cache_compare(std::FILE* out, const cache_compare_results& r) {
  fmt::print(out,
             "\nbuffer pool (pageio::pagecache) on {}: {} MiB pool ({} frames) over {} of pool pages "
             "(<test file>.pool, which the raw references read too), 1 thread, each lookup = fetch + 1-byte read under the "
             "shared latch + release{}\n",
             r.backend, r.cache_mb, r.cache_mb * 256, format_size(r.size_bytes),
             r.callback_batch == 0
                 ? std::string()
                 : fmt::format("; callback batch {} for the raw runs", r.callback_batch));
  if (std::isfinite(r.read_through_s)) {
    fmt::print(out, "the pool file was read through once first ({:.1f} s), so that the host caches it alike for every run\n",
               r.read_through_s);
  }
  if (const cache_result* u = r.find(32, "uniform"); u && std::isfinite(u->ns_per_hit)) {
    fmt::print(out,
               "(a) hit cost (fetch + release, one thread, {} resident pages in turn, median of {} loops): {} ns vs "
               "buffered pread() of an OS-cached 4 KiB page {} ns: 1/{:.1f}, target at most 1/20: {}\n"
               "    with the shared latch and a 1-byte read, as each lookup below: {} ns, 1/{:.1f}\n",
               u->hit_pages, u->hit_repetitions, fixed(u->ns_per_hit, 1), fixed(u->pread_hit_ns, 1),
               1 / u->hit_vs_pread, u->hit_vs_pread <= 0.05 ? "met" : "NOT met", fixed(u->ns_per_hit_latched, 1),
               1 / u->hit_latched_vs_pread);
  }
  fmt::print(out, "{:<22} {:>11} {:>9} {:>10} {:>8} {:>8}  {}\n", "workload", "lookups/s", "hit %", "miss IOPS",
             "p50 µs", "p99 µs", "reference (miss IOPS / raw IOPS)");
  for (const auto& c : r.runs) {
    std::string ref;
    if (c.dist == "uniform" && (c.inflight == 32 || c.inflight == 1)) {
      const bool qd32 = c.inflight == 32;
      const double table = qd32 ? r.table_randread_qd32_iops : r.table_randread_qd1_iops;
      if (qd32) {
        const double raw = r.raw_qd32_mean_iops();
        ref = fmt::format("(b) {} raw {} randread QD32 ({} IOPS, mean of runs right before and after: {} and {})",
                          times(c.miss_iops / raw), r.backend, group_thousands(raw),
                          group_thousands(iops_of(r.raw_qd32_before)), group_thousands(iops_of(r.raw_qd32)));
        if (std::isfinite(table)) ref += fmt::format("; {} the table's ({})", times(c.miss_iops / table), group_thousands(table));
      } else if (r.raw_qd1) {
        ref = fmt::format("(c) {} raw {} randread QD1 right after ({} IOPS)", times(c.miss_iops / r.raw_qd1->iops),
                          r.backend, group_thousands(r.raw_qd1->iops));
        if (std::isfinite(table)) ref += fmt::format("; {} the table's ({})", times(c.miss_iops / table), group_thousands(table));
      } else if (std::isfinite(table)) {
        ref = fmt::format("{} the table's raw {} randread QD1 ({} IOPS)", times(c.miss_iops / table), r.backend,
                          group_thousands(table));
      }
    }
    fmt::print(out, "{:<22} {:>11} {:>9} {:>10} {:>8} {:>8}  {}\n", shape_label(c), group_thousands(c.lookups_per_s),
               fixed(100 * c.hit_ratio, 1), group_thousands(c.miss_iops), fixed(c.lat_p50_us, 1),
               fixed(c.lat_p99_us, 1), ref);
  }
  for (const auto& n : r.notes) fmt::print(out, "  note: {}\n", n);
}

nlohmann::json cache_compare_json(const cache_compare_results& r) {
  nlohmann::json j;
  j["backend"] = r.backend;
  j["cache_mb"] = r.cache_mb;
  j["callback_batch"] = r.callback_batch;
  j["size"] = r.size_bytes;
  j["runs"] = nlohmann::json::array();
  for (const auto& c : r.runs) j["runs"].push_back(to_json(c));
  j["raw_randread_qd32_before"] = r.raw_qd32_before ? to_json(*r.raw_qd32_before) : nlohmann::json();
  j["raw_randread_qd32"] = r.raw_qd32 ? to_json(*r.raw_qd32) : nlohmann::json();
  j["raw_randread_qd1"] = r.raw_qd1 ? to_json(*r.raw_qd1) : nlohmann::json();
  j["raw_file"] = pool_file_for(r.file).string();
  j["read_through_s"] = number_or_null(r.read_through_s);
  j["table_randread_qd32_iops"] = number_or_null(r.table_randread_qd32_iops);
  j["table_randread_qd1_iops"] = number_or_null(r.table_randread_qd1_iops);
  const cache_result* u = r.find(32, "uniform");
  j["hit_vs_pread"] = u ? number_or_null(u->hit_vs_pread) : nlohmann::json();
  j["ns_per_hit"] = u ? number_or_null(u->ns_per_hit) : nlohmann::json();
  j["ns_per_hit_latched"] = u ? number_or_null(u->ns_per_hit_latched) : nlohmann::json();
  j["pread_hit_ns"] = u ? number_or_null(u->pread_hit_ns) : nlohmann::json();
  j["cache_qd32_miss_iops_vs_raw_qd32"] = u ? number_or_null(u->miss_iops / r.raw_qd32_mean_iops()) : nlohmann::json();
  j["cache_qd32_miss_iops_vs_table_qd32"] =
      u ? number_or_null(u->miss_iops / r.table_randread_qd32_iops) : nlohmann::json();
  const cache_result* b = r.find(1, "uniform");
  j["cache_qd1_miss_iops_vs_table_qd1"] = b ? number_or_null(b->miss_iops / r.table_randread_qd1_iops) : nlohmann::json();
  j["cache_qd1_miss_iops_vs_raw_qd1"] =
      b && r.raw_qd1 ? number_or_null(b->miss_iops / r.raw_qd1->iops) : nlohmann::json();
  j["notes"] = r.notes;
  return j;
}

}  // namespace pageio::bench
