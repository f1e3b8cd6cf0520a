#include "wal_compare.hpp"
#include "numbers.hpp"

#include "process.hpp"
#include "report.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <regex>

namespace pageio::bench {

namespace {


// db_bench fillrandom with every write synced; ops/s from its report line.
std::optional<double> run_db_bench(const wal_compare_options& o, unsigned threads, std::string* command,
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
  if (command) *command = shell_quote(argv);
  process_output out;
  try {
    out = run_process(argv);
  } catch (const std::exception& e) {
    notes->push_back(fmt::format("db_bench did not start: {}", e.what()));
    return std::nullopt;
  }
  std::error_code ec;
  std::filesystem::remove_all(db, ec);
  std::smatch m;
  static const std::regex line(R"(fillrandom\s*:\s*[0-9.]+ micros/op\s+([0-9.]+) ops/sec)");
  if (out.exit_code != 0 || !std::regex_search(out.out, m, line)) {
    notes->push_back(fmt::format("db_bench failed (exit {}): {}", out.exit_code, out.err.substr(0, 300)));
    return std::nullopt;
  }
  return std::stod(m[1].str());
}

std::optional<double> run_fio_seq(const wal_compare_options& o, std::string* command, std::vector<std::string>* notes) {
  std::vector<std::string> argv = {"fio",
                                   "--name=pageio-seq-write",
                                   "--filename=" + o.fio_file.string(),
                                   fmt::format("--size={}", o.fio_size),
                                   "--direct=1",
                                   "--rw=write",
                                   "--bs=1m",
                                   "--ioengine=libaio",
                                   "--iodepth=8",
                                   fmt::format("--runtime={}ms", std::lround(o.seconds * 1000)),
                                   "--time_based",
                                   "--ramp_time=500ms",
                                   "--output-format=json"};
  if (o.cpu >= 0) argv.push_back(fmt::format("--cpus_allowed={}", o.cpu));
  *command = shell_quote(argv);
  try {
    const process_output out = run_process(argv);
    const auto brace = out.out.find('{');
    if (out.exit_code != 0 || brace == std::string::npos) {
      notes->push_back(fmt::format("fio failed (exit {}): {}", out.exit_code, out.err.substr(0, 300)));
      return std::nullopt;
    }
    const auto j = nlohmann::json::parse(out.out.substr(brace));
    return j.at("jobs").at(0).at("write").at("bw_bytes").get<double>() / (1024.0 * 1024.0);
  } catch (const std::exception& e) {
    notes->push_back(fmt::format("fio sequential write: {}", e.what()));
    return std::nullopt;
  }
}

}  // namespace

wal_compare_results run_wal_compare(const wal_compare_options& o) {
  wal_compare_results r;
  struct shape {
    unsigned writers;
    std::size_t record;
  };
  for (const shape s : {shape{1, 100}, shape{64, 100}, shape{8, 64 * 1024}}) {
    wal_params p;
    p.backend = o.backend;
    p.dir = o.dir;
    p.writers = s.writers;
    p.record_size = s.record;
    p.seconds = o.seconds;
    const wal_result w = run_wal_bench(p);
    fmt::print("[wal] pageio {} {:>2} writer(s) x {:>5} B  {:>9} commits/s  {:>7.1f} MiB/s  p50 {:>7.1f} µs  "
               "{:.1f} records/flush\n",
               w.backend, w.writers, w.record_size, fmt::format("{:.0f}", w.commits_per_s), w.mib_s, w.lat_p50_us,
               w.records_per_flush);
    std::fflush(stdout);
    r.runs.push_back(w);
  }
  if (o.use_db_bench) {
    std::string ignored;
    r.db_bench_1 = run_db_bench(o, 1, &ignored, &r.notes);
    if (r.db_bench_1) fmt::print("[wal] db_bench fillrandom --sync=1, 1 thread: {:.0f} ops/s\n", *r.db_bench_1);
    r.db_bench_64 = run_db_bench(o, 64, &r.db_bench_command_64, &r.notes);
    if (r.db_bench_64) fmt::print("[wal] db_bench fillrandom --sync=1, 64 threads: {:.0f} ops/s\n", *r.db_bench_64);
  } else {
    r.notes.push_back("db_bench is not on $PATH (Debian: rocksdb-tools): no RocksDB reference");
  }
  if (o.use_fio) {
    r.fio_seq_mib_s = run_fio_seq(o, &r.fio_command, &r.notes);
    if (r.fio_seq_mib_s) fmt::print("[wal] fio 1 MiB sequential direct writes, QD8: {:.0f} MiB/s\n", *r.fio_seq_mib_s);
  }
  std::fflush(stdout);
  return r;
}

void print_wal_compare(std::FILE* out, const wal_compare_results& r) {
  if (r.runs.empty()) return;
  fmt::print(out, "\nwrite-ahead log on {} ({} durability, a checkpoint recycling segments every {} ms): every commit waits until durable\n",
             r.runs[0].backend, r.runs[0].mode, r.runs[0].checkpoint_ms);
  fmt::print(out, "{:<26} {:>11} {:>9} {:>9} {:>9} {:>13}  {}\n", "workload", "commits/s", "MiB/s", "p50 µs", "p99 µs",
             "records/flush", "reference");
  for (const auto& w : r.runs) {
    std::string ref;
    if (w.record_size == 100 && w.writers == 1 && r.db_bench_1) {
      ref = fmt::format("{} db_bench 1 thread ({:.0f} ops/s)", times(w.commits_per_s / *r.db_bench_1), *r.db_bench_1);
    } else if (w.record_size == 100 && w.writers == 64 && r.db_bench_64) {
      ref = fmt::format("{} db_bench 64 threads ({:.0f} ops/s)", times(w.commits_per_s / *r.db_bench_64),
                        *r.db_bench_64);
    } else if (w.record_size > 100 && r.fio_seq_mib_s) {
      ref = fmt::format("{} fio seq write 1 MiB QD8 ({:.0f} MiB/s)", times(w.mib_s / *r.fio_seq_mib_s),
                        *r.fio_seq_mib_s);
    }
    fmt::print(out, "{:<26} {:>11} {:>9} {:>9} {:>9} {:>13}  {}\n",
               fmt::format("{} x {} B", w.writers, w.record_size), group_thousands(w.commits_per_s),
               fixed(w.mib_s, 1), fixed(w.lat_p50_us, 1), fixed(w.lat_p99_us, 1), fixed(w.records_per_flush, 1), ref);
  }
  for (const auto& n : r.notes) fmt::print(out, "  note: {}\n", n);
}

nlohmann::json wal_compare_json(const wal_compare_results& r) {
  nlohmann::json j;
  j["runs"] = nlohmann::json::array();
  for (const auto& w : r.runs) j["runs"].push_back(to_json(w));
  auto opt = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  j["db_bench_1_thread_ops_s"] = opt(r.db_bench_1);
  j["db_bench_64_threads_ops_s"] = opt(r.db_bench_64);
  j["db_bench_command"] = r.db_bench_command_64;
  j["fio_seq_write_mib_s"] = opt(r.fio_seq_mib_s);
  j["fio_command"] = r.fio_command;
  j["notes"] = r.notes;
  return j;
}

}  // namespace pageio::bench
