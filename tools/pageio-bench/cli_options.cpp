#include "cli_options.hpp"

#include "errors.hpp"
#include "size_parse.hpp"
#include "test_file.hpp"

#include <pageio/engine/backend.hpp>

#include <fmt/format.h>

namespace pageio::bench {

namespace {

const char* test_file_name = "pageio-bench.dat";

// CLI::PositiveNumber prints the whole range of double when it fails.
const CLI::Validator positive_seconds(
    [](std::string& text) -> std::string {
      double v = 0;
      if (!CLI::detail::lexical_cast(text, v) || !(v > 0)) return "must be a positive number of seconds, not " + text;
      return {};
    },
    "SECONDS>0");
const CLI::Validator nonnegative_seconds(
    [](std::string& text) -> std::string {
      double v = 0;
      if (!CLI::detail::lexical_cast(text, v) || !(v >= 0)) return "must be 0 or more seconds, not " + text;
      return {};
    },
    "SECONDS>=0");

void add_uring_any_thread(CLI::App& cmd, bool& value) {
  cmd.add_flag("--uring-any-thread", value,
               "build uring backends without backend_options::uring_single_thread (no SINGLE_ISSUER | "
               "DEFER_TASKRUN), as a program that hands a backend between threads must");
}

void add_callback_batch(CLI::App& cmd, unsigned& value) {
  cmd.add_option("--callback-batch", value,
                 "backend_options::callback_batch: resubmissions from raw completion callbacks go to the kernel in "
                 "groups of this many (0 = the engine's default; an asio_driver sends what the handlers of one "
                 "wake-up start as one submission whatever this is)")
      ->check(CLI::Range(0u, 65536u))
      ->capture_default_str();
}

void add_resubmit_gap(CLI::App& cmd, long long& value) {
  cmd.add_option("--resubmit-gap", value,
                 "backend_options::resubmit_gap in nanoseconds: the least time between two kernel submissions of "
                 "requests resubmitted from completion callbacks (-1 = the engine's default, 0 = none)")
      ->check(CLI::Range(-1LL, 1'000'000'000LL))
      ->capture_default_str();
}

void add_cpu(CLI::App& cmd, int& value, const char* who) {
  cmd.add_option("--cpu", value,
                 fmt::format("pin {} to this CPU (fio: --cpus_allowed); makes runs on a machine whose disk "
                             "interrupts land on one CPU comparable (default: not pinned)",
                             who))
      ->check(CLI::Range(0, CPU_SETSIZE - 1));
}

rw_mode rw_from(const std::string& s) {
  if (auto m = parse_rw(s)) return *m;
  throw usage_error(fmt::format("--rw {}: choose one of randread, randwrite, read, write", s));
}

std::filesystem::path file_from(const std::string& s) {
  return s.empty() ? default_data_dir() / test_file_name : std::filesystem::path(s);
}

}  // namespace

void add_io_options(CLI::App& cmd, io_cli& o, bool for_fio) {
  cmd.add_option("--backend,-b", o.backend,
                 for_fio ? "pageio backend whose fio engine to run: sync (psync), aio (libaio), uring (io_uring); "
                           "fio engine names work too; default: the best backend that starts here"
                         : "sync, aio, uring, or default (the best that starts here)")
      ->capture_default_str();
  cmd.add_option("--rw", o.rw, "randread, randwrite, read or write")
      ->check(CLI::IsMember({"randread", "randwrite", "read", "write"}))
      ->capture_default_str();
  cmd.add_option("--bs", o.bs, "block size in bytes, suffixes allowed (4k, 64k, 1m)")->capture_default_str();
  cmd.add_option("--qd", o.qd, "requests kept in flight")->check(CLI::Range(1u, 65536u))->capture_default_str();
  cmd.add_option("--seconds,-t", o.seconds, "measured duration")->check(positive_seconds)->capture_default_str();
  cmd.add_option("--warmup", o.warmup_seconds, "seconds run first and not counted")
      ->check(nonnegative_seconds)
      ->capture_default_str();
  cmd.add_option("--file,-f", o.file,
                 "test file, created or extended by writing it; default: <data dir>/pageio-bench.dat, "
                 "data dir = $PAGEIO_DATA_DIR or ./pageio-data");
  cmd.add_option("--size,-s", o.size, "bytes of the file to use (suffixes allowed: 512m, 1g)")->capture_default_str();
  cmd.add_flag("--json", o.json, "print one JSON object instead of the table");
  add_cpu(cmd, o.cpu, for_fio ? "fio's job" : "the thread that drives the I/O");
  if (for_fio) {
    cmd.add_option("--fio-batch", o.fio_batch,
                   "fio --iodepth_batch_submit/--iodepth_batch_complete_max for libaio and io_uring: 0 = the queue "
                   "depth, 1 (default) = fio's own default (one submit call per I/O)")
        ->capture_default_str();
  } else {
    cmd.add_flag("--uring-register", o.uring_register,
                 "register the file and the buffers with the backend (uring: fixed files and buffers)");
    add_callback_batch(cmd, o.callback_batch);
    add_resubmit_gap(cmd, o.resubmit_gap_ns);
    add_uring_any_thread(cmd, o.uring_any_thread);
    cmd.add_option("--api", o.api,
                   "who drives the I/O: raw (completion callbacks on the backend), asio (a C++20 coroutine per "
                   "request through pageio::asio_driver), asio-file (the same coroutines on Boost.Asio's own "
                   "random_access_file, io_uring inside Asio; --backend is ignored)")
        ->check(CLI::IsMember({"raw", "asio", "asio-file"}))
        ->capture_default_str();
    cmd.add_option("--seed", o.seed, "seed of the offset generator")->capture_default_str();
  }
}

void add_compare_options(CLI::App& cmd, compare_cli& o) {
  cmd.add_option("--dir,-d", o.dir, "data directory (default: $PAGEIO_DATA_DIR or ./pageio-data)");
  cmd.add_option("--size,-s", o.size, "test file size (suffixes allowed)")->capture_default_str();
  cmd.add_option("--seconds,-t", o.seconds, "measured seconds per run")->check(positive_seconds)->capture_default_str();
  cmd.add_option("--warmup", o.warmup_seconds, "seconds run first and not counted, per run")
      ->check(nonnegative_seconds)
      ->capture_default_str();
  cmd.add_option("--rounds,-r", o.rounds, "runs per engine and case, alternating pageio and fio; the median is reported")
      ->check(CLI::Range(1u, 100u))
      ->capture_default_str();
  cmd.add_flag("--no-fio", o.no_fio, "skip the fio reference runs");
  cmd.add_flag("--no-wal", o.no_wal,
               "skip the write-ahead log workloads (1 and 64 committers x 100 B, 8 x 64 KiB; db_bench and fio "
               "references)");
  cmd.add_option("--wal-seconds", o.wal_seconds, "measured seconds per write-ahead log run")
      ->check(positive_seconds)
      ->capture_default_str();
  cmd.add_flag("--no-cache", o.no_cache,
               "skip the buffer pool workloads (hit cost against a buffered pread of an OS-cached page; random reads "
               "through a 16 MiB pool over a file of pool pages the size of the test file, against the raw backend at QD32 and QD1 reading the same pool file)");
  cmd.add_option("--cache-seconds", o.cache_seconds, "measured seconds per buffer pool run")
      ->check(positive_seconds)
      ->capture_default_str();
  cmd.add_flag("--no-kv", o.no_kv,
               "skip the key-value store workloads (pageio-kv bench against db_bench with the same flags: "
               "fillrandom --sync=1 at 1 and 64 threads, fillseq, readrandom with a 16 MiB cache at 1 and 4 "
               "threads and with everything cached; the data file's growth under overwrites)");
  cmd.add_option("--kv-seconds", o.kv_seconds, "seconds per timed key-value run (db_bench's --duration)")
      ->check(positive_seconds)
      ->capture_default_str();
  cmd.add_option("--kv-rounds", o.kv_rounds,
                 "rounds of each timed key-value case, pageio and db_bench alternating; the median ratio is "
                 "reported with the spread")
      ->check(CLI::Range(1u, 99u))
      ->capture_default_str();
  cmd.add_flag("--no-asio", o.no_asio,
               "skip the randread QD32 runs through Asio coroutines (pageio's asio_driver and Boost.Asio's own "
               "random_access_file)");
  add_callback_batch(cmd, o.callback_batch);
  add_resubmit_gap(cmd, o.resubmit_gap_ns);
  add_uring_any_thread(cmd, o.uring_any_thread);
  cmd.add_option("--fio-batch", o.fio_batch,
                 "fio --iodepth_batch_submit/--iodepth_batch_complete_max for libaio and io_uring: 0 = the queue depth, "
                 "1 (default) = fio's own default (one submit call per I/O)")
      ->capture_default_str();
  add_cpu(cmd, o.cpu, "every run, pageio's and fio's,");
  cmd.add_option("--json-out", o.json_out, "where to write the results as JSON (default: <dir>/compare.json)");
  cmd.add_option("--chart", o.chart, "where to write an SVG bar chart with gnuplot (default: <dir>/compare.svg)");
  cmd.add_option("--backends", o.backends, "comma-separated backends to run (default: every available one)");
}

void add_cache_options(CLI::App& cmd, cache_cli& o) {
  cmd.add_option("--backend,-b", o.backend,
                 "sync, aio, uring, or default: the pool's own reads (--inflight 1) and each thread's asio_driver")
      ->capture_default_str();
  cmd.add_option("--file,-f", o.file,
                 "file the pages come from, created or extended by writing it; default: <data dir>/pageio-bench.dat, "
                 "data dir = $PAGEIO_DATA_DIR or ./pageio-data");
  cmd.add_option("--size,-s", o.size, "bytes of the file the pages are picked from (suffixes allowed: 512m, 1g)")
      ->capture_default_str();
  cmd.add_option("--cache-mb", o.cache_mb, "size of the buffer pool in MiB (256 frames of 4 KiB per MiB)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 20))
      ->capture_default_str();
  cmd.add_option("--threads", o.threads, "threads fetching pages")->check(CLI::Range(1u, 1024u))->capture_default_str();
  cmd.add_option("--inflight", o.inflight,
                 "fetches each thread keeps in flight: 1 = blocking buffer_pool::fetch(); more = that many "
                 "coroutines calling async_fetch on the thread's own io_context and asio_driver")
      ->check(CLI::Range(1u, 4096u))
      ->capture_default_str();
  cmd.add_option("--dist", o.dist,
                 "which pages: uniform, or zipf (skew --zipf-theta, the hot pages scattered over the file)")
      ->check(CLI::IsMember({"uniform", "zipf"}))
      ->capture_default_str();
  cmd.add_option("--zipf-theta", o.zipf_theta, "skew of --dist zipf, between 0 and 1")
      ->check(CLI::Range(0.01, 0.999))
      ->capture_default_str();
  cmd.add_option("--seconds,-t", o.seconds, "measured duration")->check(positive_seconds)->capture_default_str();
  cmd.add_option("--warmup", o.warmup_seconds, "seconds run first and not counted (the pool fills meanwhile)")
      ->check(nonnegative_seconds)
      ->capture_default_str();
  cmd.add_option("--policy", o.policy, "eviction: s3fifo or clock")
      ->check(CLI::IsMember({"s3fifo", "clock"}))
      ->capture_default_str();
  cmd.add_option("--readahead", o.readahead,
                 "options::readahead_pages: pages read ahead when a miss continues a sequential run (0: off)")
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1024}))
      ->capture_default_str();
  cmd.add_option("--write-fraction", o.write_fraction,
                 "fraction of lookups that change their page (exclusive latch, mark_dirty): write-back runs, and its "
                 "MiB/s is reported; with --inflight 1 only")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd.add_flag("--no-doublewrite", o.no_doublewrite,
               "options::doublewrite off: pages are written in place only (what the torn-write protection costs)");
  cmd.add_option("--seed", o.seed, "seed of the page generator")->capture_default_str();
  cmd.add_flag("--no-hit-cost", o.no_hit_cost,
               "skip the measurement after the run of a hit's cost against a buffered pread of an OS-cached page");
  cmd.add_flag("--json", o.json, "print one JSON object instead of the table");
}

cache_params to_cache(const cache_cli& o) {
  cache_params p;
  p.backend = o.backend;
  p.file = file_from(o.file);
  p.size_bytes = parse_size(o.size, "--size");
  p.cache_mb = o.cache_mb;
  p.threads = o.threads;
  p.inflight = o.inflight;
  p.dist = o.dist;
  p.zipf_theta = o.zipf_theta;
  p.seconds = o.seconds;
  p.warmup_seconds = o.warmup_seconds;
  p.policy = o.policy;
  p.readahead_pages = o.readahead;
  p.write_fraction = o.write_fraction;
  p.doublewrite = !o.no_doublewrite;
  p.seed = o.seed;
  p.measure_hit_cost = !o.no_hit_cost;
  return p;
}

workload_params to_workload(const io_cli& o) {
  workload_params p;
  p.backend = o.backend;
  p.rw = rw_from(o.rw);
  p.bs = parse_size(o.bs, "--bs");
  p.qd = o.qd;
  p.seconds = o.seconds;
  p.warmup_seconds = o.warmup_seconds;
  p.file = file_from(o.file);
  p.size_bytes = parse_size(o.size, "--size");
  p.uring_register = o.uring_register;
  p.callback_batch = o.callback_batch;
  p.resubmit_gap_ns = o.resubmit_gap_ns;
  p.uring_single_thread = !o.uring_any_thread;
  p.seed = o.seed;
  p.cpu = o.cpu;
  p.api = o.api;
  if (p.bs == 0) throw usage_error("--bs must be at least 1 byte");
  if (p.size_bytes < p.bs) {
    throw usage_error(fmt::format("--size ({}) is smaller than --bs ({}): not one block fits",
                                  format_size(p.size_bytes), format_size(p.bs)));
  }
  return p;
}

fio_params to_fio(const io_cli& o) {
  const workload_params w = to_workload(o);
  fio_params p;
  std::string name = o.backend;
  if (name == "default") {
    const auto avail = available_backends();
    if (avail.empty()) throw std::runtime_error("no pageio backend starts here, so no default fio engine");
    name = avail.front();
  }
  static_cast<workload_shape&>(p) = w;
  p.engine = fio_engine_for(name);
  p.batch = o.fio_batch;
  if (p.engine == "psync" && p.qd > 1) {
    throw usage_error("fio's psync engine does one I/O at a time: use --qd 1 with --backend sync");
  }
  return p;
}

compare_options to_compare(const compare_cli& o) {
  compare_options c;
  c.dir_from = o.dir.empty() ? (std::getenv("PAGEIO_DATA_DIR") && *std::getenv("PAGEIO_DATA_DIR")
                                    ? "$PAGEIO_DATA_DIR"
                                    : "default")
                             : "--dir";
  c.dir = o.dir.empty() ? default_data_dir() : std::filesystem::path(o.dir);
  c.file = c.dir / test_file_name;
  c.size_bytes = parse_size(o.size, "--size");
  if (c.size_bytes < c.bs) {
    throw usage_error(fmt::format("--size ({}) is smaller than the {} block size", format_size(c.size_bytes),
                                  format_size(c.bs)));
  }
  c.seconds = o.seconds;
  c.warmup_seconds = o.warmup_seconds;
  c.rounds = o.rounds;
  c.use_fio = !o.no_fio;
  c.with_asio = !o.no_asio;
  c.with_wal = !o.no_wal;
  c.wal_seconds = o.wal_seconds;
  c.with_cache = !o.no_cache;
  c.cache_seconds = o.cache_seconds;
  c.with_kv = !o.no_kv;
  c.kv_seconds = o.kv_seconds;
  c.kv_rounds = o.kv_rounds;
  c.fio_batch = o.fio_batch;
  c.cpu = o.cpu;
  c.callback_batch = o.callback_batch;
  c.resubmit_gap_ns = o.resubmit_gap_ns;
  c.uring_single_thread = !o.uring_any_thread;
  c.json_out = o.json_out.empty() ? c.dir / "compare.json" : std::filesystem::path(o.json_out);
  c.chart = o.chart.empty() ? c.dir / "compare.svg" : std::filesystem::path(o.chart);
  for (std::size_t start = 0; start < o.backends.size();) {
    std::size_t end = o.backends.find(',', start);
    if (end == std::string::npos) end = o.backends.size();
    if (end > start) c.only_backends.push_back(o.backends.substr(start, end - start));
    start = end + 1;
  }
  for (const auto& b : c.only_backends) {
    if (b != "sync" && b != "aio" && b != "uring") {
      throw usage_error(fmt::format("--backends: unknown backend '{}'; choose from sync, aio, uring", b));
    }
  }
  return c;
}

}  // namespace pageio::bench
