#include "cli_options.hpp"

#include "backend_option.hpp"
#include "fio_names.hpp"
#include "command_line.hpp"
#include "validators.hpp"

#include <fmt/format.h>
#include <sched.h>

namespace pageio::bench {

namespace {

using tools::as_choice;
using tools::as_count;
using tools::as_number;
using tools::as_seconds;
using tools::as_size;
using tools::seconds_from;

const char* const json_help = "print one JSON object on stdout instead of the table";
const char* const json_out_help = "also write the JSON object to FILE (its directory must exist)";

std::string backend_help(const char* what) {
  return fmt::format("{}: {} (the best that starts here)", what, tools::backend_list(true));
}

void add_uring_any_thread(CLI::App& cmd, bool& value) {
  cmd.add_flag("--uring-any-thread", value,
               "build uring backends without backend_options::uring_single_thread (no SINGLE_ISSUER | "
               "DEFER_TASKRUN), as a program that hands a backend between threads must");
}

void add_callback_batch(CLI::App& cmd, unsigned& value) {
  as_count(cmd.add_option("--callback-batch", value,
                          "backend_options::callback_batch: resubmissions from raw completion callbacks go to the "
                          "kernel in groups of this many (0 = the engine's default; an asio_driver sends what the "
                          "handlers of one wake-up start as one submission whatever this is)"),
           0, 65536)
      ->capture_default_str();
}

void add_resubmit_gap(CLI::App& cmd, long long& value) {
  as_count(cmd.add_option("--resubmit-gap", value,
                          "backend_options::resubmit_gap in nanoseconds: the least time between two kernel "
                          "submissions of requests resubmitted from completion callbacks (-1 = the engine's "
                          "default, 0 = none)"),
           -1, 1'000'000'000)
      ->capture_default_str();
}

void add_fio_batch(CLI::App& cmd, unsigned& value) {
  as_count(cmd.add_option("--fio-batch", value,
                          "fio --iodepth_batch_submit/--iodepth_batch_complete_max for libaio and io_uring: 0 = the "
                          "queue depth, 1 (default) = fio's own default (one submit call per I/O)"),
           0, 65536)
      ->capture_default_str();
}

void add_cpu(CLI::App& cmd, int& value, const char* who) {
  as_count(cmd.add_option("--cpu", value,
                          fmt::format("pin {} to this CPU (fio: --cpus_allowed); makes runs on a machine whose disk "
                                      "interrupts land on one CPU comparable (default: not pinned)",
                                      who)),
           0, CPU_SETSIZE - 1);
}

void add_json(CLI::App& cmd, bool& json, std::string& json_out) {
  cmd.add_flag("--json", json, json_help);
  cmd.add_option("--json-out", json_out, json_out_help)->type_name("FILE");
}

const char* const file_help =
    "test file, created or extended by writing it; default: <dir>/pageio-bench.dat";

// -f FILE, or -d DIR for the default file's directory, as every subcommand
// has them (-d: the data directory; compare and wal take only -d).
void add_file_and_dir(CLI::App& cmd, std::string& file, std::string& dir, const char* help) {
  auto* f = cmd.add_option("--file,-f", file, help)->type_name("FILE");
  cmd.add_option("--dir,-d", dir, "data directory for the default file (default: $PAGEIO_DATA_DIR or ./pageio-data)")
      ->type_name("DIR")
      ->excludes(f);
}

}  // namespace

void add_io_options(CLI::App& cmd, io_cli& o, bool for_fio) {
  if (for_fio) {
    as_fio_engine(cmd.add_option("--backend,-b", o.backend,
                                 fmt::format("pageio backend whose fio engine to run: {}; sync runs psync, aio "
                                             "libaio, uring io_uring, and fio's engine names work too",
                                             tools::backend_list(true))),
                  true)
        ->capture_default_str();
  } else {
    tools::as_backend(cmd.add_option("--backend,-b", o.backend, backend_help("I/O backend")), true)
        ->capture_default_str();
  }
  as_choice(cmd.add_option("--rw", o.rw, "randread, randwrite, read or write"),
            {"randread", "randwrite", "read", "write"})
      ->capture_default_str();
  as_size(cmd.add_option("--bs", o.bs, "block size in bytes, suffixes allowed (4k, 64k, 1m)"), 1)
      ->capture_default_str();
  as_count(cmd.add_option("--qd", o.qd, "requests kept in flight"), 1, 65536)->capture_default_str();
  as_seconds(cmd.add_option("--seconds,-t", o.seconds, "measured duration (fio's units work: 10s, 2m)"),
             seconds_from::above_zero)
      ->capture_default_str();
  as_seconds(cmd.add_option("--warmup", o.warmup_seconds, "time run first and not counted (500ms, 2s)"),
             seconds_from::zero)
      ->capture_default_str();
  add_file_and_dir(cmd, o.file, o.dir, file_help);
  as_size(cmd.add_option("--size,-s", o.size, "bytes of the file to use (suffixes allowed: 512m, 1g)"), 1)
      ->capture_default_str();
  add_json(cmd, o.json, o.json_out);
  add_cpu(cmd, o.cpu, for_fio ? "fio's job" : "every thread that drives I/O");
  if (for_fio) {
    add_fio_batch(cmd, o.fio_batch);
    cmd.add_flag("--uring-register", o.uring_register,
                 "io_uring: register the buffers and the file (fio --fixedbufs --registerfiles), as pageio's "
                 "--uring-register does");
  } else {
    as_count(cmd.add_option("--numjobs,-j", o.numjobs,
                            "threads, each with its own backend and its own 1/N of --size (fio: --numjobs with "
                            "--size and --offset_increment of size/N); IOPS and MiB/s are summed and the latency "
                            "percentiles merged (--api raw only)"),
             1, 1024)
        ->capture_default_str();
    cmd.add_flag("--uring-register", o.uring_register,
                 "register the file and the buffers with the backend (uring: fixed files and buffers)");
    add_callback_batch(cmd, o.callback_batch);
    add_resubmit_gap(cmd, o.resubmit_gap_ns);
    add_uring_any_thread(cmd, o.uring_any_thread);
    as_choice(cmd.add_option("--api", o.api,
                             "who drives the I/O: raw (completion callbacks on the backend), asio (a C++20 "
                             "coroutine per request through pageio::asio_driver), asio-file (the same coroutines on "
                             "Boost.Asio's own random_access_file, io_uring inside Asio; --backend is ignored)"),
              {"raw", "asio", "asio-file"})
        ->capture_default_str();
    as_count(cmd.add_option("--seed", o.seed, "seed of the offset generator (job j uses seed + j)"), 0)
        ->capture_default_str();
  }
  add_fio_aliases(cmd, {.qd = &o.qd,
                        .seconds = &o.seconds,
                        .warmup_seconds = &o.warmup_seconds,
                        .file = &o.file,
                        .backend = &o.backend});
}

void add_wal_options(CLI::App& cmd, wal_cli& o) {
  tools::as_backend(cmd.add_option("--backend,-b", o.backend, backend_help("the log's I/O backend")), true)
      ->capture_default_str();
  cmd.add_option("--dir,-d", o.dir,
                 "directory for the log (a fresh subdirectory, removed afterwards); default: the data directory, "
                 "$PAGEIO_DATA_DIR or ./pageio-data")
      ->type_name("DIR");
  as_count(cmd.add_option("--writers,-w", o.writers, "committing threads"), 1, 4096)->capture_default_str();
  as_size(cmd.add_option("--record-size", o.record_size, "bytes per record (suffixes allowed: 64k)"), 1)
      ->capture_default_str();
  as_seconds(cmd.add_option("--seconds,-t", o.seconds, "measured duration (10s, 2m)"), seconds_from::above_zero)
      ->capture_default_str();
  as_seconds(cmd.add_option("--warmup", o.warmup_seconds, "time run first and not counted (500ms, 2s)"),
             seconds_from::zero)
      ->capture_default_str();
  as_choice(cmd.add_option("--mode", o.mode,
                           "auto (RWF_DSYNC for group commits up to 64 KiB of a lone committer, else write then fdatasync), dsync "
                           "(RWF_DSYNC writes) or fdatasync (write, then fdatasync)"),
            {"auto", "dsync", "fdatasync"})
      ->capture_default_str();
  as_number(cmd.add_option("--checkpoint-ms", o.checkpoint_ms,
                           "a checkpoint (truncate_before the durable LSN, recycling old segments) this many "
                           "milliseconds apart; 0: never, so every segment is a new zero-filled file"),
            0, tools::max_seconds * 1000)
      ->capture_default_str();
  as_size(cmd.add_option("--segment-size", o.segment_size,
                         "size of each log segment file, a multiple of 4 KiB, at least 8 KiB (64m, 1g)"),
          8192)
      ->capture_default_str();
  add_json(cmd, o.json, o.json_out);
}

void add_cache_options(CLI::App& cmd, cache_cli& o) {
  tools::as_backend(cmd.add_option("--backend,-b", o.backend,
                                   backend_help("the pool's own reads (--inflight 1) and each thread's asio_driver")),
                    true)
      ->capture_default_str();
  add_file_and_dir(cmd, o.file, o.dir,
                   "file the pages come from, created or extended by writing it; default: <dir>/pageio-bench.dat");
  as_size(cmd.add_option("--size,-s", o.size,
                         "bytes of the file the pages are picked from (suffixes allowed: 512m, 1g)"),
          4096)
      ->capture_default_str();
  as_count(cmd.add_option("--cache-mb", o.cache_mb, "size of the buffer pool in MiB (256 frames of 4 KiB per MiB)"), 1,
           std::uint64_t{1} << 20)
      ->capture_default_str();
  as_count(cmd.add_option("--threads", o.threads, "threads fetching pages"), 1, 1024)->capture_default_str();
  as_count(cmd.add_option("--inflight", o.inflight,
                          "fetches each thread keeps in flight: 1 = blocking buffer_pool::fetch(); more = that many "
                          "coroutines calling async_fetch on the thread's own io_context and asio_driver"),
           1, 4096)
      ->capture_default_str();
  as_choice(cmd.add_option("--dist", o.dist,
                           "which pages: uniform, or zipf (skew --zipf-theta, the hot pages scattered over the file)"),
            {"uniform", "zipf"})
      ->capture_default_str();
  as_number(cmd.add_option("--zipf-theta", o.zipf_theta, "skew of --dist zipf"), 0.01, 0.999)->capture_default_str();
  as_seconds(cmd.add_option("--seconds,-t", o.seconds, "measured duration (10s, 2m)"), seconds_from::above_zero)
      ->capture_default_str();
  as_seconds(cmd.add_option("--warmup", o.warmup_seconds, "time run first and not counted (the pool fills meanwhile)"),
             seconds_from::zero)
      ->capture_default_str();
  as_choice(cmd.add_option("--policy", o.policy, "eviction: s3fifo or clock"), {"s3fifo", "clock"})
      ->capture_default_str();
  as_count(cmd.add_option("--readahead", o.readahead,
                          "options::readahead_pages: pages read ahead when a miss continues a sequential run (0: off)"),
           0, 1024)
      ->capture_default_str();
  as_number(cmd.add_option("--write-fraction", o.write_fraction,
                           "fraction of lookups that change their page (exclusive latch, mark_dirty): write-back "
                           "runs, and its MiB/s is reported; with --inflight 1 only"),
            0, 1)
      ->capture_default_str();
  cmd.add_flag("--no-doublewrite", o.no_doublewrite,
               "options::doublewrite off: pages are written in place only (what the torn-write protection costs)");
  as_count(cmd.add_option("--seed", o.seed, "seed of the page generator"), 0)->capture_default_str();
  cmd.add_flag("--no-hit-cost", o.no_hit_cost,
               "skip the measurement after the run of a hit's cost against a buffered pread of an OS-cached page");
  add_json(cmd, o.json, o.json_out);
  add_fio_aliases(cmd, {.seconds = &o.seconds,
                        .warmup_seconds = &o.warmup_seconds,
                        .file = &o.file,
                        .backend = &o.backend});
}

void add_compare_options(CLI::App& cmd, compare_cli& o) {
  cmd.add_option("--dir,-d", o.dir, "data directory (default: $PAGEIO_DATA_DIR or ./pageio-data)")->type_name("DIR");
  as_size(cmd.add_option("--size,-s", o.size, "test file size (suffixes allowed)"), 4096)->capture_default_str();
  as_seconds(cmd.add_option("--seconds,-t", o.seconds, "measured time per run (10s, 2m)"), seconds_from::above_zero)
      ->capture_default_str();
  as_seconds(cmd.add_option("--warmup", o.warmup_seconds, "time run first and not counted, per run"),
             seconds_from::zero)
      ->capture_default_str();
  as_count(cmd.add_option("--rounds,-r", o.rounds,
                          "runs per engine and case, alternating pageio and fio; the median is reported"),
           1, 100)
      ->capture_default_str();
  cmd.add_flag("--no-fio", o.no_fio, "skip the fio reference runs");
  cmd.add_flag("--no-wal", o.no_wal,
               "skip the write-ahead log workloads (1 and 64 committers x 100 B against db_bench fillrandom "
               "--sync=1; 8 x 64 KiB against fio's durable equivalent, 64 KiB writes at QD8 with --fdatasync=8, and "
               "fio's unsynced 1 MiB writes at QD8)");
  as_seconds(cmd.add_option("--wal-seconds", o.wal_seconds, "measured time per write-ahead log run"),
             seconds_from::above_zero)
      ->capture_default_str();
  as_count(cmd.add_option("--wal-rounds", o.wal_rounds,
                          "rounds of each write-ahead log shape and its references (db_bench; fio durable and "
                          "unsynced writes), alternating which runs first; the median ratio is reported with the "
                          "spread"),
           1, 99)
      ->capture_default_str();
  cmd.add_flag("--no-cache", o.no_cache,
               "skip the buffer pool workloads (hit cost against a buffered pread of an OS-cached page; random reads "
               "through a 16 MiB pool over a file of pool pages the size of the test file, against the raw backend "
               "at QD32 and QD1 reading the same pool file)");
  as_seconds(cmd.add_option("--cache-seconds", o.cache_seconds, "measured time per buffer pool run"),
             seconds_from::above_zero)
      ->capture_default_str();
  cmd.add_flag("--no-kv", o.no_kv,
               "skip the key-value store workloads (pageio-kv bench against db_bench with the same flags: "
               "fillrandom --sync=1 at 1 and 64 threads, fillseq, readrandom with a 16 MiB cache at 1 and 4 "
               "threads and with everything cached; the data file's growth under overwrites)");
  as_seconds(cmd.add_option("--kv-seconds", o.kv_seconds, "time per timed key-value run (db_bench's --duration)"),
             seconds_from::above_zero)
      ->capture_default_str();
  as_count(cmd.add_option("--kv-rounds", o.kv_rounds,
                          "rounds of each timed key-value case, pageio and db_bench alternating; the median ratio is "
                          "reported with the spread"),
           1, 99)
      ->capture_default_str();
  cmd.add_flag("--no-asio", o.no_asio,
               "skip the randread QD32 runs through Asio coroutines (pageio's asio_driver and Boost.Asio's own "
               "random_access_file)");
  add_callback_batch(cmd, o.callback_batch);
  add_resubmit_gap(cmd, o.resubmit_gap_ns);
  add_uring_any_thread(cmd, o.uring_any_thread);
  add_fio_batch(cmd, o.fio_batch);
  add_cpu(cmd, o.cpu, "every run, pageio's and fio's,");
  cmd.add_option("--json-out", o.json_out,
                 "also write the results as JSON to FILE (default: <dir>/compare.json; its directory must exist)")
      ->type_name("FILE");
  cmd.add_option("--chart", o.chart, "where to write an SVG bar chart with gnuplot (default: <dir>/compare.svg)")
      ->type_name("FILE");
  const std::string backends_name = "--backends";
  cmd.add_option(backends_name, o.backends,
                 fmt::format("comma-separated backends to run, of {} (default: every one that starts here)",
                             tools::backend_list(false)))
      ->type_name("NAMES")
      ->check(CLI::Validator(
          [backends_name](std::string& text) -> std::string {
            for (std::size_t start = 0; start <= text.size();) {
              std::size_t end = text.find(',', start);
              if (end == std::string::npos) end = text.size();
              const std::string one = text.substr(start, end - start);
              if (!one.empty()) {
                if (std::string m = tools::check_backend(backends_name, one, false); !m.empty()) {
                  throw tools::bad_value(m);
                }
              }
              start = end + 1;
            }
            return {};
          },
          ""));
  add_fio_aliases(cmd, {.seconds = &o.seconds, .warmup_seconds = &o.warmup_seconds});
  // --quick sets its own durations and rounds, and picks what runs.
  CLI::Option* quick = cmd.add_flag(
      "--quick", o.quick,
      "a regression check under a minute: randread QD32 on uring (raw and registered) against fio, and the log's "
      "three shapes against db_bench and fio, 3 rounds of 1 s runs (0.8 s for the log), no Asio, pool or "
      "key-value runs; every ratio is printed with its range over the rounds (README: \"Reading compare "
      "--quick\"). Sets its own --seconds, --warmup, --rounds and --wal-*: giving them too is an error");
  for (const char* name : {"--seconds", "--warmup", "--rounds", "--wal-seconds", "--wal-rounds", "--cache-seconds",
                           "--kv-seconds", "--kv-rounds", "--runtime", "--ramp_time"}) {
    if (CLI::Option* other = cmd.get_option_no_throw(name)) quick->excludes(other);
  }
}

}  // namespace pageio::bench
