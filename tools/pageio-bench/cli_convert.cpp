#include "cli_convert.hpp"

#include "errors.hpp"
#include "json_out.hpp"
#include "size_parse.hpp"
#include "test_file.hpp"

#include <pageio/engine/backend.hpp>

#include <fmt/format.h>

#include <cstdlib>

namespace pageio::bench {

namespace {

const char* test_file_name = "pageio-bench.dat";

rw_mode rw_from(const std::string& s) {
  if (auto m = parse_rw(s)) return *m;
  throw usage_error(fmt::format("--rw {}: choose one of randread, randwrite, read, write", s));
}

std::filesystem::path file_from(const std::string& file, const std::string& dir) {
  if (!file.empty()) return file;
  return (dir.empty() ? default_data_dir() : std::filesystem::path(dir)) / test_file_name;
}

void check_json_out(const std::string& file) {
  if (!file.empty()) tools::check_output_file("--json-out", file);
}

}  // namespace

cache_params to_cache(const cache_cli& o) {
  check_json_out(o.json_out);
  cache_params p;
  p.backend = o.backend;
  p.file = file_from(o.file, o.dir);
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
  check_json_out(o.json_out);
  workload_params p;
  p.backend = o.backend;
  p.rw = rw_from(o.rw);
  p.bs = parse_size(o.bs, "--bs");
  p.qd = o.qd;
  p.numjobs = o.numjobs;
  p.seconds = o.seconds;
  p.warmup_seconds = o.warmup_seconds;
  p.file = file_from(o.file, o.dir);
  p.size_bytes = parse_size(o.size, "--size");
  p.uring_register = o.uring_register;
  p.callback_batch = o.callback_batch;
  p.resubmit_gap_ns = o.resubmit_gap_ns;
  p.uring_single_thread = !o.uring_any_thread;
  p.seed = o.seed;
  p.cpu = o.cpu;
  p.api = o.api;
  if (p.bs == 0) throw usage_error("--bs 0: must be at least 1 byte (e.g. 4k)");
  if (p.size_bytes < p.bs) {
    throw usage_error(fmt::format("--size {}: smaller than --bs ({}), so not one block fits; give a larger --size",
                                  format_size(p.size_bytes), format_size(p.bs)));
  }
  if (p.numjobs > 1 && p.api != "raw") {
    throw usage_error(fmt::format("--numjobs {}: works with --api raw only; drop --api {} or --numjobs", p.numjobs,
                                  p.api));
  }
  if (p.size_bytes / p.bs < p.numjobs) {
    throw usage_error(fmt::format("--numjobs {}: the file holds only {} block(s) of --bs {}, fewer than one per job; "
                                  "give a larger --size or fewer jobs",
                                  p.numjobs, p.size_bytes / p.bs, format_size(p.bs)));
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
  p.registered = o.uring_register;
  if (p.registered && p.engine != "io_uring") {
    throw usage_error(fmt::format("--uring-register: fio registers buffers and files (--fixedbufs --registerfiles) "
                                  "with io_uring only, not {}; use --backend uring",
                                  p.engine));
  }
  if (p.engine == "psync" && p.qd > 1) {
    throw usage_error(fmt::format("--qd {}: fio's psync engine does one I/O at a time; use --qd 1 with --backend sync",
                                  p.qd));
  }
  return p;
}

wal_params to_wal(const wal_cli& o) {
  check_json_out(o.json_out);
  wal_params p;
  p.backend = o.backend;
  p.dir = o.dir.empty() ? default_data_dir() : std::filesystem::path(o.dir);
  p.writers = o.writers;
  p.record_size = parse_size(o.record_size, "--record-size");
  p.seconds = o.seconds;
  p.warmup_seconds = o.warmup_seconds;
  p.mode = o.mode;
  p.checkpoint_ms = o.checkpoint_ms;
  p.segment_bytes = parse_size(o.segment_size, "--segment-size");
  if (p.segment_bytes % 4096 != 0 || p.segment_bytes < 8192) {
    throw usage_error(fmt::format("--segment-size {}: must be a multiple of 4 KiB and at least 8 KiB (e.g. 64m, 1g)",
                                  o.segment_size));
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
    throw usage_error(fmt::format("--size {}: smaller than the {} block size; give a larger --size",
                                  format_size(c.size_bytes), format_size(c.bs)));
  }
  c.seconds = o.seconds;
  c.warmup_seconds = o.warmup_seconds;
  c.rounds = o.rounds;
  c.use_fio = !o.no_fio;
  c.with_asio = !o.no_asio;
  c.with_wal = !o.no_wal;
  c.wal_seconds = o.wal_seconds;
  c.wal_rounds = o.wal_rounds;
  c.with_cache = !o.no_cache;
  c.cache_seconds = o.cache_seconds;
  c.with_kv = !o.no_kv;
  c.kv_seconds = o.kv_seconds;
  c.kv_rounds = o.kv_rounds;
  if (o.quick) {
    // Under a minute here: 3 rounds of the uring pair and the registered
    // pair at randread QD32 (~18 s), 3 rounds of the log's shapes against
    // db_bench and fio (~30 s).
    c.quick = true;
    c.rounds = 3;
    c.seconds = 1;
    c.warmup_seconds = 0.25;
    c.wal_seconds = 0.8;
    c.wal_warmup_seconds = 0.2;
    c.wal_rounds = 3;
    c.with_asio = false;
    c.with_cache = false;
    c.with_kv = false;
  }
  c.fio_batch = o.fio_batch;
  c.cpu = o.cpu;
  c.callback_batch = o.callback_batch;
  c.resubmit_gap_ns = o.resubmit_gap_ns;
  c.uring_single_thread = !o.uring_any_thread;
  // An explicit file must go to a directory that exists; the defaults go to
  // the data directory, which compare checks (and may create) itself.
  if (!o.json_out.empty()) tools::check_output_file("--json-out", o.json_out);
  if (!o.chart.empty()) tools::check_output_file("--chart", o.chart);
  c.json_out = o.json_out.empty() ? c.dir / "compare.json" : std::filesystem::path(o.json_out);
  c.chart = o.chart.empty() ? c.dir / "compare.svg" : std::filesystem::path(o.chart);
  // The names were checked against the registry while parsing (cli_options.cpp).
  for (std::size_t start = 0; start < o.backends.size();) {
    std::size_t end = o.backends.find(',', start);
    if (end == std::string::npos) end = o.backends.size();
    if (end > start) c.only_backends.push_back(o.backends.substr(start, end - start));
    start = end + 1;
  }
  return c;
}

}  // namespace pageio::bench
