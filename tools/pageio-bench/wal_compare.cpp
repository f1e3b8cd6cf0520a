#include "wal_compare.hpp"
#include "numbers.hpp"

#include "process.hpp"
#include "report.hpp"
#include "size_parse.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <regex>

namespace pageio::bench {

namespace {

constexpr double missing = std::numeric_limits<double>::quiet_NaN();

// db_bench fillrandom with every write synced; ops/s from its report line.
double run_db_bench(const wal_compare_options& o, unsigned threads, std::string* command,
                    std::vector<std::string>* notes) {
  const auto db = o.dir / fmt::format("db_bench-{}-{}", ::getpid(), threads);
  std::vector<std::string> argv = {"db_bench",
                                   "--benchmarks=fillrandom",
                                   "--sync=1",
                                   fmt::format("--threads={}", threads),
                                   "--value_size=100",
                                   "--key_size=16",
                                   "--compression_type=none",
                                   "--db=" + db.string(),
                                   fmt::format("--duration={}", std::max(1L, std::lround(o.seconds))),
                                   "--num=100000000"};
  *command = shell_quote(argv);
  process_output out;
  try {
    out = run_process(argv);
  } catch (const std::exception& e) {
    notes->push_back(fmt::format("db_bench did not start: {}", e.what()));
    return missing;
  }
  std::error_code ec;
  std::filesystem::remove_all(db, ec);
  std::smatch m;
  static const std::regex line(R"(fillrandom\s*:\s*[0-9.]+ micros/op\s+([0-9.]+) ops/sec)");
  if (out.exit_code != 0 || !std::regex_search(out.out, m, line)) {
    notes->push_back(fmt::format("db_bench failed (exit {}): {}", out.exit_code, out.err.substr(0, 300)));
    return missing;
  }
  return std::stod(m[1].str());
}

// Sequential O_DIRECT writes of `bs` bytes with `qd` in flight on libaio,
// and an fdatasync after every `sync_every` writes (0: none), or each write
// durable by itself (O_DSYNC) with `dsync`; MiB/s and writes/s.
struct fio_seq_result {
  double mib_s = missing, iops = missing;
};

fio_seq_result run_fio_seq(const wal_compare_options& o, std::uint64_t bs, unsigned qd, unsigned sync_every,
                           bool dsync, std::string* command, std::vector<std::string>* notes) {
  std::vector<std::string> argv = {"fio",
                                   sync_every || dsync ? "--name=pageio-durable-write" : "--name=pageio-seq-write",
                                   "--filename=" + o.fio_file.string(),
                                   fmt::format("--size={}", o.fio_size),
                                   "--direct=1",
                                   "--rw=write",
                                   fmt::format("--bs={}", bs),
                                   "--ioengine=libaio",
                                   fmt::format("--iodepth={}", qd),
                                   fmt::format("--runtime={}ms", std::lround(o.seconds * 1000)),
                                   "--time_based",
                                   "--ramp_time=500ms",
                                   "--output-format=json"};
  if (sync_every > 0) argv.push_back(fmt::format("--fdatasync={}", sync_every));
  if (dsync) argv.push_back("--sync=dsync");
  if (o.cpu >= 0) argv.push_back(fmt::format("--cpus_allowed={}", o.cpu));
  *command = shell_quote(argv);
  try {
    const process_output out = run_process(argv);
    const auto brace = out.out.find('{');
    if (out.exit_code != 0 || brace == std::string::npos) {
      notes->push_back(fmt::format("fio failed (exit {}): {}", out.exit_code, out.err.substr(0, 300)));
      return {};
    }
    const auto j = nlohmann::json::parse(out.out.substr(brace));
    const auto& w = j.at("jobs").at(0).at("write");
    return {w.at("bw_bytes").get<double>() / (1024.0 * 1024.0), w.at("iops").get<double>()};
  } catch (const std::exception& e) {
    notes->push_back(fmt::format("fio sequential write: {}", e.what()));
    return {};
  }
}

struct planned_shape {
  unsigned writers;
  std::size_t record;
};

const char* const unsynced_what = "fio 1 MiB seq writes, QD8, no sync";

std::vector<double> finite(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  return v;
}

std::string range_of(const std::vector<double>& v) {
  if (v.empty()) return "";
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return fmt::format("{:.2f}-{:.2f}x", *lo, *hi);
}

}  // namespace

std::optional<double> wal_reference::median() const {
  auto v = finite(each_round);
  if (v.empty()) return std::nullopt;
  return median_of(std::move(v));
}

std::vector<double> wal_shape::ratio_each_round(const wal_reference& ref) const {
  std::vector<double> out;
  for (std::size_t i = 0; i < each_round.size() && i < ref.each_round.size(); ++i) {
    const double mine = ref.unit == "MiB/s" ? each_round[i].mib_s : each_round[i].commits_per_s;
    if (std::isfinite(ref.each_round[i]) && ref.each_round[i] > 0) out.push_back(mine / ref.each_round[i]);
  }
  return out;
}

namespace {

bool is_unsynced(const wal_reference& ref) { return ref.what == unsynced_what; }

// A reference's run in round `round` (NaN: it failed), kept and shown.
void record_round(wal_reference& ref, double v, unsigned round, unsigned rounds) {
  ref.each_round.push_back(v);
  fmt::print("[wal {}/{}] {}: {}\n", round + 1, rounds, ref.what,
             std::isfinite(v) ? fmt::format("{:.0f} {}", v, ref.unit) : "failed");
  std::fflush(stdout);
}

// Drains the disk's write cache and says how long it took (disk_drain.hpp).
void drain(const wal_compare_options& o, const std::string& when, wal_compare_results& r) {
  try {
    const drain_result d = drain_disk_cache(o.dir);
    fmt::print("[wal] disk write cache drained {}: the first flush took {:.1f} ms, then a 4 KiB write + fdatasync "
               "{:.0f} µs (median of 9)\n",
               when, d.drain_ms, d.flush_us);
    std::fflush(stdout);
    r.drains.emplace_back(when, d);
  } catch (const std::system_error& e) {
    r.notes.push_back(fmt::format("draining the disk's write cache {}: {}", when, e.what()));
  }
}

}  // namespace

wal_compare_results run_wal_compare(const wal_compare_options& o) {
  wal_compare_results r;
  r.rounds = std::max(1u, o.rounds);
  std::vector<planned_shape> plan;
  if (o.one_writer) plan.push_back({1, 100});
  plan.push_back({64, 100});
  if (o.large_records) plan.push_back({8, 64 * 1024});
  r.shapes.resize(plan.size());
  for (std::size_t s = 0; s < plan.size(); ++s) {
    auto& refs = r.shapes[s].references;
    const auto& p = plan[s];
    if (p.record == 100 && o.use_db_bench) {
      refs.push_back({fmt::format("db_bench fillrandom --sync=1, {} thread{}", p.writers, p.writers > 1 ? "s" : ""),
                      "ops/s", "", {}});
    }
    if (p.writers == 1 && o.use_fio) {
      // The device's own ceiling for one committer: each commit is at least
      // one durable write.
      refs.push_back({"fio durable: 4 KiB seq writes, QD1, O_DSYNC", "writes/s", "", {}});
    }
    if (p.record > 100 && o.use_fio) {
      refs.push_back({fmt::format("fio durable: {} KiB seq writes, QD{}, fdatasync every {}", p.record / 1024,
                                  p.writers, p.writers),
                      "MiB/s", "", {}});
      refs.push_back({unsynced_what, "MiB/s", "", {}});
    }
  }
  if (!o.use_db_bench) r.notes.push_back("db_bench is not on $PATH (Debian: rocksdb-tools): no RocksDB reference");

  drain(o, "before the first run", r);
  for (unsigned round = 0; round < r.rounds; ++round) {
    for (std::size_t s = 0; s < plan.size(); ++s) {
      wal_shape& shape = r.shapes[s];
      const planned_shape& p = plan[s];
      // Each run starts with the disk's caches written back: fio's unsynced
      // writes leave gigabytes for the host to write, and the next run's
      // flushes would pay for them (so would the sections after this one).
      auto run_pageio = [&] {
        ::sync();
        wal_params w;
        w.backend = o.backend;
        w.dir = o.dir;
        w.writers = p.writers;
        w.record_size = p.record;
        w.seconds = o.seconds;
        w.warmup_seconds = o.warmup_seconds;
        const wal_result x = run_wal_bench(w);
        fmt::print("[wal {}/{}] pageio {} {:>2} writer(s) x {:>5} B  {:>9} commits/s  {:>7.1f} MiB/s  p50 {:>7.1f} µs  "
                   "{:.1f} records/flush  CPU {:.1f} µs/commit\n",
                   round + 1, r.rounds, x.backend, x.writers, x.record_size, fmt::format("{:.0f}", x.commits_per_s),
                   x.mib_s, x.lat_p50_us, x.records_per_flush, x.cpu_us_per_commit);
        std::fflush(stdout);
        shape.each_round.push_back(x);
      };
      auto run_refs = [&] {
        for (std::size_t i = 0; i < shape.references.size(); ++i) {
          wal_reference& ref = shape.references[i];
          if (is_unsynced(ref)) continue;  // after every round (below)
          ::sync();
          double v = missing;
          if (ref.unit == "ops/s") {
            v = run_db_bench(o, p.writers, &ref.command, &r.notes);
          } else if (ref.unit == "writes/s") {
            v = run_fio_seq(o, 4096, 1, 0, true, &ref.command, &r.notes).iops;
          } else {
            v = run_fio_seq(o, p.record, p.writers, p.writers, false, &ref.command, &r.notes).mib_s;
          }
          record_round(ref, v, round, r.rounds);
        }
      };
      // The reference first in odd rounds: a slow minute falls on both.
      if (round % 2 == 0) {
        run_pageio();
        run_refs();
      } else {
        run_refs();
        run_pageio();
      }
    }
  }
  // The unsynced ceiling last, its rounds back to back: the host writes its
  // gigabytes back for a long while after, and every flush meanwhile pays
  // (run between the others, it took a fifth off the next runs).
  bool unsynced_ran = false;
  for (unsigned round = 0; round < r.rounds; ++round) {
    for (auto& shape : r.shapes) {
      for (auto& ref : shape.references) {
        if (!is_unsynced(ref)) continue;
        const double v = run_fio_seq(o, 1 << 20, 8, 0, false, &ref.command, &r.notes).mib_s;
        unsynced_ran = true;
        record_round(ref, v, round, r.rounds);
      }
    }
  }
  if (unsynced_ran) drain(o, "after the unsynced reference", r);
  ::sync();
  for (auto& shape : r.shapes) {
    std::vector<wal_result> sorted = shape.each_round;
    std::sort(sorted.begin(), sorted.end(),
              [](const wal_result& a, const wal_result& b) { return a.commits_per_s < b.commits_per_s; });
    shape.median = sorted[(sorted.size() - 1) / 2];
  }
  return r;
}

void print_wal_compare(std::FILE* out, const wal_compare_results& r) {
  if (r.shapes.empty() || r.shapes[0].each_round.empty()) return;
  const wal_result& first = r.shapes[0].median;
  fmt::print(out,
             "\nwrite-ahead log on {} ({} durability, a checkpoint recycling segments every {} ms): every commit waits "
             "until durable{}\n",
             first.backend, first.mode, first.checkpoint_ms,
             r.rounds > 1 ? fmt::format("; medians of {} rounds, pageio and the reference alternating", r.rounds) : "");
  fmt::print(out, "{:<14} {:>11} {:>9} {:>9} {:>9} {:>8} {:>9}  {}\n", "workload", "commits/s", "MiB/s", "p50 µs",
             "p99 µs", "rec/sync", "CPU µs/c", "pageio / reference (paired: median, range of the rounds' ratios)");
  for (const auto& shape : r.shapes) {
    const wal_result& w = shape.median;
    std::vector<std::string> refs;
    for (const auto& ref : shape.references) {
      const auto m = ref.median();
      if (!m) {
        refs.push_back(ref.what + ": failed");
        continue;
      }
      const auto each = shape.ratio_each_round(ref);
      std::string s = fmt::format("{} {} ({:.0f} {})", times(each.empty() ? missing : median_of(each)), ref.what, *m,
                                  ref.unit);
      if (each.size() > 1) s += fmt::format(" [{}]", range_of(each));
      refs.push_back(std::move(s));
    }
    const std::string head = fmt::format("{:<14} {:>11} {:>9} {:>9} {:>9} {:>8} {:>9}",
                                         fmt::format("{} x {}", w.writers, format_size(w.record_size)),
                                         group_thousands(w.commits_per_s), fixed(w.mib_s, 1), fixed(w.lat_p50_us, 1),
                                         fixed(w.lat_p99_us, 1), fixed(w.records_per_flush, 1),
                                         fixed(w.cpu_us_per_commit, 1));
    if (refs.empty()) refs.push_back("");
    for (std::size_t i = 0; i < refs.size(); ++i) {
      std::string line = fmt::format("{}  {}", i == 0 ? head : std::string(head.size(), ' '), refs[i]);
      line.erase(line.find_last_not_of(' ') + 1);
      fmt::print(out, "{}\n", line);
    }
  }
  for (const auto& [when, d] : r.drains) {
    fmt::print(out, "  disk write cache drained {}: first flush {:.1f} ms, then 4 KiB write + fdatasync {:.0f} µs\n",
               when, d.drain_ms, d.flush_us);
  }
  for (const auto& n : r.notes) fmt::print(out, "  note: {}\n", n);
}

nlohmann::json wal_compare_json(const wal_compare_results& r) {
  nlohmann::json j;
  auto opt = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  j["rounds"] = r.rounds;
  j["drains"] = nlohmann::json::array();
  for (const auto& [when, d] : r.drains) {
    j["drains"].push_back({{"when", when}, {"drain_ms", d.drain_ms}, {"flush_us", d.flush_us}});
  }
  j["runs"] = nlohmann::json::array();
  j["shapes"] = nlohmann::json::array();
  for (const auto& shape : r.shapes) {
    if (shape.each_round.empty()) continue;
    j["runs"].push_back(to_json(shape.median));
    nlohmann::json s;
    s["writers"] = shape.median.writers;
    s["record_size"] = shape.median.record_size;
    s["median"] = to_json(shape.median);
    s["commits_per_s_each_round"] = nlohmann::json::array();
    s["mib_s_each_round"] = nlohmann::json::array();
    for (const auto& w : shape.each_round) {
      s["commits_per_s_each_round"].push_back(w.commits_per_s);
      s["mib_s_each_round"].push_back(w.mib_s);
    }
    s["references"] = nlohmann::json::array();
    for (const auto& ref : shape.references) {
      const auto each = shape.ratio_each_round(ref);
      nlohmann::json e;
      e["what"] = ref.what;
      e["unit"] = ref.unit;
      e["command"] = ref.command;
      e["median"] = opt(ref.median());
      e["each_round"] = nlohmann::json::array();
      for (double v : ref.each_round) e["each_round"].push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json());
      e["ratio_each_round"] = each;
      e["ratio_paired"] = each.empty() ? nlohmann::json() : nlohmann::json(median_of(each));
      s["references"].push_back(std::move(e));
    }
    j["shapes"].push_back(std::move(s));
  }
  // The medians under their earlier names, and the new references beside them.
  auto ref_of = [&](unsigned writers, std::size_t record, std::size_t i) -> const wal_reference* {
    for (const auto& shape : r.shapes) {
      if (!shape.each_round.empty() && shape.median.writers == writers && shape.median.record_size == record &&
          i < shape.references.size()) {
        return &shape.references[i];
      }
    }
    return nullptr;
  };
  const auto* db1 = ref_of(1, 100, 0);
  const auto* db64 = ref_of(64, 100, 0);
  const auto* durable = ref_of(8, 64 * 1024, 0);
  const auto* seq = ref_of(8, 64 * 1024, 1);
  j["db_bench_1_thread_ops_s"] = db1 ? opt(db1->median()) : nlohmann::json();
  j["db_bench_64_threads_ops_s"] = db64 ? opt(db64->median()) : nlohmann::json();
  j["db_bench_command"] = db64 ? db64->command : "";
  j["fio_durable_write_mib_s"] = durable ? opt(durable->median()) : nlohmann::json();
  j["fio_durable_command"] = durable ? durable->command : "";
  j["fio_seq_write_mib_s"] = seq ? opt(seq->median()) : nlohmann::json();
  j["fio_command"] = seq ? seq->command : "";
  j["notes"] = r.notes;
  return j;
}

}  // namespace pageio::bench
