#include "kv_compare.hpp"
#include "numbers.hpp"

#include "process.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <regex>

namespace pageio::bench {

namespace {


// pageio-kv beside this program (build tree: ../pageio-kv/; installed: the
// same directory), else on $PATH.
std::optional<std::string> find_pageio_kv() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const auto& p : {self.parent_path().parent_path() / "pageio-kv" / "pageio-kv", self.parent_path() / "pageio-kv"}) {
      if (::access(p.c_str(), X_OK) == 0) return p.string();
    }
  }
  return find_on_path("pageio-kv");
}

struct one_run {
  std::optional<double> ops_s;
  double p99_us = 0;
  std::uint64_t max_rss = 0;
};

// The flags both tools take, as db_bench spells them.
std::vector<std::string> common_flags(const std::string& benchmarks, const std::filesystem::path& db, unsigned threads,
                                      std::uint64_t num, const std::string& extra_sync) {
  std::vector<std::string> f = {"--benchmarks=" + benchmarks,
                                "--db=" + db.string(),
                                fmt::format("--threads={}", threads),
                                fmt::format("--num={}", num),
                                "--key_size=16",
                                "--value_size=100"};
  if (!extra_sync.empty()) f.push_back(extra_sync);
  return f;
}

one_run run_pageio(const std::string& tool, std::vector<std::string> flags, const std::string& report,
                   std::string* command, std::vector<std::string>* notes) {
  std::vector<std::string> argv = {tool, "bench"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back("--json");
  *command = shell_quote(argv);
  one_run r;
  try {
    const process_output out = run_process(argv);
    if (out.exit_code != 0) {
      notes->push_back(fmt::format("pageio-kv bench failed (exit {}): {}", out.exit_code, out.err.substr(0, 300)));
      return r;
    }
    const auto j = nlohmann::json::parse(out.out.substr(out.out.find('{')));
    for (const auto& b : j.at("benchmarks")) {
      if (b.at("name") == report) {
        r.ops_s = b.at("ops_per_sec").get<double>();
        r.p99_us = b.at("p99_us").get<double>();
      }
    }
    r.max_rss = j.at("max_rss_bytes").get<std::uint64_t>();
  } catch (const std::exception& e) {
    notes->push_back(fmt::format("pageio-kv bench: {}", e.what()));
  }
  return r;
}

std::optional<double> run_rocksdb(std::vector<std::string> flags, const std::string& report, std::string* command,
                                  std::vector<std::string>* notes) {
  std::vector<std::string> argv = {"db_bench"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back("--compression_type=none");
  *command = shell_quote(argv);
  try {
    const process_output out = run_process(argv);
    std::smatch m;
    const std::regex line(report + R"(\s*:\s*[0-9.]+ micros/op\s+([0-9.]+) ops/sec)");
    if (out.exit_code != 0 || !std::regex_search(out.out, m, line)) {
      notes->push_back(fmt::format("db_bench {} failed (exit {}): {}", report, out.exit_code, out.err.substr(0, 300)));
      return std::nullopt;
    }
    return std::stod(m[1].str());
  } catch (const std::exception& e) {
    notes->push_back(fmt::format("db_bench did not start: {}", e.what()));
    return std::nullopt;
  }
}

std::optional<std::uint64_t> size_of(const std::filesystem::path& p) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(p, ec);
  if (ec) return std::nullopt;
  return n;
}

}  // namespace

kv_compare_results run_kv_compare(const kv_compare_options& o, bool* failed) {
  kv_compare_results r;
  const auto tool = find_pageio_kv();
  if (!tool) {
    r.notes.push_back("pageio-kv was not found beside pageio-bench nor on $PATH: no key-value section");
    *failed = true;
    return r;
  }
  const auto mine = o.dir / fmt::format("kv-compare-pageio-{}", ::getpid());
  const auto theirs = o.dir / fmt::format("kv-compare-rocksdb-{}", ::getpid());
  const std::string secs = fmt::format("--duration={}", std::max(1L, std::lround(o.seconds)));
  constexpr std::uint64_t log_buffer = 8u << 20, slack = 64u << 20;

  // One case: `rounds` runs of each tool, alternating, so that a slow
  // stretch of the machine falls on both; the ratio reported is the median
  // of the rounds' ratios. The order turns each round (pageio first, then
  // db_bench first, ...): a disturbance that fades over the case (the
  // host still writing back what the section before wrote) would otherwise
  // always fall on the tool that runs first.
  auto run_case = [&](kv_case_result c, const std::string& benchmarks, const std::string& report, unsigned threads,
                      std::vector<std::string> extra_both, std::vector<std::string> extra_rocksdb,
                      std::uint64_t cache, unsigned rounds) {
    auto flags = common_flags(benchmarks, mine, threads, o.keys, "");
    flags.insert(flags.end(), extra_both.begin(), extra_both.end());
    flags.push_back(fmt::format("--cache_size={}", cache));
    auto rf = common_flags(benchmarks, theirs, threads, o.keys, "");
    rf.insert(rf.end(), extra_both.begin(), extra_both.end());
    rf.insert(rf.end(), extra_rocksdb.begin(), extra_rocksdb.end());
    rf.push_back(fmt::format("--cache_size={}", cache));
    c.rss_budget = cache + log_buffer + slack;
    std::vector<double> p99s;
    for (unsigned round = 0; round < rounds; ++round) {
      std::optional<double> theirs_ops;
      // Each run starts with nothing of the run before left to write back:
      // db_bench writes through the page cache, and its files' write-back
      // went on into the next run (pageio's, when it followed), which fell
      // from about 3,400 to 2,600 synced puts/s in those rounds here.
      auto settle = [] { ::sync(); };
      auto run_theirs = [&] {
        if (!o.use_db_bench) return;
        settle();
        theirs_ops = run_rocksdb(rf, report, &c.db_bench_command, &r.notes);
      };
      if (round % 2 == 1) run_theirs();
      settle();
      const one_run p = run_pageio(*tool, flags, report, &c.pageio_command, &r.notes);
      if (!p.ops_s) {
        *failed = true;
        break;
      }
      if (round % 2 == 0) run_theirs();
      c.pageio_runs.push_back(*p.ops_s);
      p99s.push_back(p.p99_us);
      c.pageio_max_rss = std::max(c.pageio_max_rss, p.max_rss);
      if (theirs_ops) {
        c.db_bench_runs.push_back(*theirs_ops);
        c.ratios.push_back(*p.ops_s / *theirs_ops);
      }
      fmt::print("[kv] {:<46} {} pageio {:>10.0f}  db_bench {:>10}  {}\n", c.label,
                 rounds > 1 ? fmt::format("round {}/{}:", round + 1, rounds) : std::string(), *p.ops_s,
                 theirs_ops ? fmt::format("{:.0f}", *theirs_ops) : "-",
                 theirs_ops ? times(*p.ops_s / *theirs_ops) : "");
      std::fflush(stdout);
    }
    auto median = [](std::vector<double> v) -> std::optional<double> {
      const double m = median_of(std::move(v));
      return std::isfinite(m) ? std::optional<double>(m) : std::nullopt;
    };
    c.pageio_ops_s = median(c.pageio_runs);
    c.db_bench_ops_s = median(c.db_bench_runs);
    c.ratio = median(c.ratios);
    c.pageio_p99_us = median(p99s).value_or(0);
    r.cases.push_back(std::move(c));
  };
  const std::uint64_t small_cache = 16u << 20, big_cache = 1u << 30;

  const unsigned rounds = std::max(1u, o.rounds);
  auto kv_case = [](std::string label, std::string target, double min_ratio) {
    kv_case_result c;
    c.label = std::move(label);
    c.target = std::move(target);
    c.min_ratio = min_ratio;
    return c;
  };
  run_case(kv_case("fillrandom --sync=1, 1 thread", ">= 1.2x", 1.2), "fillrandom", "fillrandom", 1, {"--sync=1", secs}, {},
           small_cache, rounds);
  run_case(kv_case("fillrandom --sync=1, 64 threads", ">= 2.0x", 2.0), "fillrandom", "fillrandom", 64, {"--sync=1", secs},
           {}, small_cache, rounds);
  // The bulk load runs once: the reads below read what it wrote.
  run_case(kv_case(fmt::format("fillseq --sync=0, {} keys", o.keys), "report (aim 0.5x)", 0), "fillseq", "fillseq", 1,
           {"--sync=0"}, {}, small_cache, 1);
  run_case(kv_case("readrandom, 16 MiB cache, direct reads, 1 thread", ">= 1.0x", 1.0), "readrandom", "readrandom", 1,
           {"--use_existing_db=1", secs}, {"--use_direct_reads=true"}, small_cache, rounds);
  run_case(kv_case("readrandom, 16 MiB cache, direct reads, 4 threads", ">= 1.0x", 1.0), "readrandom", "readrandom", 4,
           {"--use_existing_db=1", secs}, {"--use_direct_reads=true"}, small_cache, rounds);
  run_case(kv_case("readrandom, everything cached (after a readseq)", ">= 1.5x", 1.5), "readseq,readrandom", "readrandom", 1,
           {"--use_existing_db=1", secs}, {}, big_cache, rounds);

  // Space: 100,000 keys loaded, then 1,000,000 overwrites of them.
  {
    const std::uint64_t keys = std::min<std::uint64_t>(o.keys, 100'000);
    std::string cmd;
    auto load = common_flags("fillseq", mine, 1, keys, "--sync=0");
    run_pageio(*tool, load, "fillseq", &cmd, &r.notes);
    r.loaded_bytes = size_of(mine / "data");
    auto over = common_flags("overwrite", mine, 1, keys, "--sync=0");
    over.push_back("--use_existing_db=1");
    over.push_back(fmt::format("--writes={}", keys * 10));
    run_pageio(*tool, over, "overwrite", &cmd, &r.notes);
    r.overwritten_bytes = size_of(mine / "data");
    if (r.loaded_bytes && r.overwritten_bytes) {
      fmt::print("[kv] data file after loading {} keys {:.1f} MiB, after {} overwrites {:.1f} MiB\n", keys,
                 static_cast<double>(*r.loaded_bytes) / 1048576.0, keys * 10,
                 static_cast<double>(*r.overwritten_bytes) / 1048576.0);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(mine, ec);
  std::filesystem::remove_all(theirs, ec);
  return r;
}

void print_kv_compare(std::FILE* out, const kv_compare_results& r) {
  fmt::print(out,
             "\nkey-value store: pageio-kv bench against db_bench, same flags (key 16 B, value 100 B; db_bench "
             "--compression_type=none)\n");
  fmt::print(out, "(medians of the rounds; ratio: the median of the rounds' ratios, and their range)\n");
  fmt::print(out, "{:<50} {:>12} {:>12} {:>7} {:>13}  {:<18} {:>10} {:>12}\n", "workload", "pageio ops/s", "db_bench",
             "ratio", "rounds", "target", "p99 µs", "peak RSS MiB");
  for (const auto& c : r.cases) {
    const double ratio = c.ratio.value_or(NAN);
    std::string verdict = c.target;
    if (c.min_ratio > 0 && std::isfinite(ratio)) verdict += ratio >= c.min_ratio ? " met" : " NOT met";
    std::string spread = fmt::format("{}", c.pageio_runs.size());
    if (c.ratios.size() > 1) {
      spread = fmt::format("{}: {:.2f}-{:.2f}", c.ratios.size(), *std::min_element(c.ratios.begin(), c.ratios.end()),
                           *std::max_element(c.ratios.begin(), c.ratios.end()));
    }
    fmt::print(out, "{:<50} {:>12} {:>12} {:>7} {:>13}  {:<18} {:>10.1f} {:>7.1f} ({})\n", c.label,
               c.pageio_ops_s ? fmt::format("{:.0f}", *c.pageio_ops_s) : "-",
               c.db_bench_ops_s ? fmt::format("{:.0f}", *c.db_bench_ops_s) : "-", times(ratio), spread, verdict,
               c.pageio_p99_us, static_cast<double>(c.pageio_max_rss) / 1048576.0,
               c.pageio_max_rss <= c.rss_budget ? "within budget" : "OVER budget");
  }
  if (r.loaded_bytes && r.overwritten_bytes) {
    const double grow = static_cast<double>(*r.overwritten_bytes) / static_cast<double>(*r.loaded_bytes);
    fmt::print(out, "space: data file {:.1f} MiB after loading, {:.1f} MiB after 10 overwrites a key: {:.2f}x "
                    "(target at most 2x: {})\n",
               static_cast<double>(*r.loaded_bytes) / 1048576.0,
               static_cast<double>(*r.overwritten_bytes) / 1048576.0, grow, grow <= 2 ? "met" : "NOT met");
  }
  for (const auto& n : r.notes) fmt::print(out, "  note: {}\n", n);
}

nlohmann::json kv_compare_json(const kv_compare_results& r) {
  nlohmann::json j;
  j["cases"] = nlohmann::json::array();
  auto opt = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  for (const auto& c : r.cases) {
    j["cases"].push_back({{"workload", c.label},
                          {"target", c.target},
                          {"pageio_ops_s", opt(c.pageio_ops_s)},
                          {"db_bench_ops_s", opt(c.db_bench_ops_s)},
                          {"ratio", opt(c.ratio)},
                          {"pageio_ops_s_rounds", c.pageio_runs},
                          {"db_bench_ops_s_rounds", c.db_bench_runs},
                          {"ratio_rounds", c.ratios},
                          {"pageio_p99_us", c.pageio_p99_us},
                          {"pageio_max_rss_bytes", c.pageio_max_rss},
                          {"rss_budget_bytes", c.rss_budget},
                          {"pageio_command", c.pageio_command},
                          {"db_bench_command", c.db_bench_command}});
  }
  j["data_file_after_load_bytes"] = r.loaded_bytes ? nlohmann::json(*r.loaded_bytes) : nlohmann::json();
  j["data_file_after_overwrites_bytes"] = r.overwritten_bytes ? nlohmann::json(*r.overwritten_bytes) : nlohmann::json();
  j["notes"] = r.notes;
  return j;
}

}  // namespace pageio::bench
