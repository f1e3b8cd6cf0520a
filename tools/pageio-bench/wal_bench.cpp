#include "wal_bench.hpp"

#include "test_file.hpp"

#include "errors.hpp"
#include "histogram.hpp"
#include "meter.hpp"
#include "report.hpp"

#include <pageio/wal/log.hpp>

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

namespace pageio::bench {

namespace {

// Removes the benchmark's log directory however the run ends.
struct dir_remover {
  std::filesystem::path dir;
  ~dir_remover() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

}  // namespace

wal_result run_wal_bench(const wal_params& p) {
  if (p.writers == 0) throw usage_error("--writers must be at least 1");
  if (!(p.seconds > 0)) throw usage_error("--seconds must be positive");
  if (p.mode != "auto" && p.mode != "dsync" && p.mode != "fdatasync") {
    throw usage_error("--mode " + p.mode +
                      ": choose auto (the log's default), dsync (RWF_DSYNC writes) or fdatasync (write, then fdatasync)");
  }
  if (!(p.checkpoint_ms >= 0)) throw usage_error("--checkpoint-ms must be 0 (never) or positive");
  check_data_dir(p.dir);
  std::error_code ec;
  dir_remover cleanup{p.dir / fmt::format("pageio-bench-wal-{}", ::getpid())};
  std::filesystem::remove_all(cleanup.dir, ec);

  wal::options o;
  o.dir = cleanup.dir;
  o.backend = p.backend;
  o.segment_bytes = p.segment_bytes;
  o.mode = p.mode == "dsync"       ? wal::durability::dsync_writes
           : p.mode == "fdatasync" ? wal::durability::write_then_fdatasync
                                   : wal::durability::automatic;
  o.buffer_bytes = std::max<std::size_t>(o.buffer_bytes, 4 * (p.record_size + 4096) * p.writers);
  o.max_batch_bytes = std::max<std::size_t>(o.max_batch_bytes, 2 * (p.record_size + 4096));
  wal::log w(o);

  std::vector<std::byte> record(p.record_size);
  for (std::size_t i = 0; i < record.size(); ++i) record[i] = static_cast<std::byte>(i * 131 + 7);

  std::atomic<bool> measuring{false}, stop{false};
  std::vector<latency_histogram> hists(p.writers);
  std::vector<std::uint64_t> counts(p.writers, 0);
  std::vector<std::string> errors(p.writers);
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < p.writers; ++t) {
    ts.emplace_back([&, t] {
      try {
        while (!stop.load(std::memory_order_relaxed)) {
          const std::uint64_t began = now_ns();
          w.commit(record);
          if (measuring.load(std::memory_order_relaxed)) {
            hists[t].record(now_ns() - began);
            ++counts[t];
          }
        }
      } catch (const std::exception& e) {
        errors[t] = e.what();
        stop = true;
      }
    });
  }
  // The checkpointer: everything durable is no longer needed.
  std::atomic<std::uint64_t> recycled{0};
  std::thread checkpointer;
  if (p.checkpoint_ms > 0) {
    checkpointer = std::thread([&] {
      try {
        while (!stop.load(std::memory_order_relaxed)) {
          std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(p.checkpoint_ms));
          const std::size_t n = w.truncate_before(w.durable_lsn());
          if (measuring.load(std::memory_order_relaxed)) recycled += n;
        }
      } catch (const std::exception& e) {
        errors[0] = std::string("checkpoint: ") + e.what();
        stop = true;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(p.warmup_seconds));
  const auto stats0 = w.stats();
  const double cpu0 = cpu_seconds();
  const std::uint64_t t0 = now_ns();
  measuring = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(p.seconds));
  measuring = false;
  const std::uint64_t t1 = now_ns();
  const double cpu1 = cpu_seconds();
  const auto stats1 = w.stats();
  stop = true;
  for (auto& t : ts) t.join();
  if (checkpointer.joinable()) checkpointer.join();
  for (const auto& e : errors) {
    if (!e.empty()) throw std::runtime_error(e);
  }

  latency_histogram all;
  std::uint64_t commits = 0;
  for (unsigned t = 0; t < p.writers; ++t) {
    all.merge(hists[t]);
    commits += counts[t];
  }
  wal_result r;
  r.backend = w.backend_name();
  r.writers = p.writers;
  r.record_size = p.record_size;
  r.mode = p.mode;
  r.seconds = static_cast<double>(t1 - t0) / 1e9;
  r.commits = commits;
  r.commits_per_s = static_cast<double>(commits) / r.seconds;
  r.mib_s = r.commits_per_s * static_cast<double>(p.record_size) / (1024.0 * 1024.0);
  r.lat_p50_us = all.percentile_ns(50) / 1e3;
  r.lat_p99_us = all.percentile_ns(99) / 1e3;
  r.lat_p999_us = all.percentile_ns(99.9) / 1e3;
  r.lat_mean_us = all.mean_ns() / 1e3;
  r.flushes = stats1.batches - stats0.batches;
  r.records_per_flush = r.flushes ? static_cast<double>(stats1.records - stats0.records) / static_cast<double>(r.flushes) : 0;
  if (r.flushes > 0) {
    const double n = static_cast<double>(r.flushes);
    r.dsync_share = static_cast<double>(stats1.dsync_batches - stats0.dsync_batches) / n;
    r.write_us = static_cast<double>(stats1.write_ns - stats0.write_ns) / n / 1e3;
    r.flush_us = static_cast<double>(stats1.flush_ns - stats0.flush_ns) / n / 1e3;
  }
  r.checkpoint_ms = p.checkpoint_ms;
  r.segments_created = stats1.segments_created - stats0.segments_created;
  r.segments_recycled = recycled.load();
  if (commits > 0) {
    const double n = static_cast<double>(commits);
    r.cpu_us_per_commit = (cpu1 - cpu0) * 1e6 / n;
    r.waits_per_commit = static_cast<double>(stats1.committer_waits - stats0.committer_waits) / n;
    r.wakeups_per_commit = static_cast<double>(stats1.committer_wakeups - stats0.committer_wakeups) / n;
  }
  return r;
}

nlohmann::json to_json(const wal_result& r) {
  return {{"tool", "pageio"},          {"workload", "wal"},          {"backend", r.backend},
          {"writers", r.writers},      {"record_size", r.record_size}, {"mode", r.mode},
          {"seconds", r.seconds},      {"commits", r.commits},       {"commits_per_s", r.commits_per_s},
          {"mib_s", r.mib_s},          {"lat_p50_us", r.lat_p50_us}, {"lat_p99_us", r.lat_p99_us},
          {"lat_p999_us", r.lat_p999_us}, {"lat_mean_us", r.lat_mean_us},
          {"records_per_flush", r.records_per_flush}, {"flushes", r.flushes},
          {"cpu_us_per_commit", r.cpu_us_per_commit}, {"waits_per_commit", r.waits_per_commit},
          {"wakeups_per_commit", r.wakeups_per_commit}, {"dsync_share", r.dsync_share},
          {"write_us", r.write_us}, {"flush_us", r.flush_us}, {"checkpoint_ms", r.checkpoint_ms},
          {"segments_created", r.segments_created}, {"segments_recycled", r.segments_recycled}};
}

void print_wal_result(std::FILE* out, const wal_result& r) {
  fmt::print(out, "pageio wal on {}: {} writer(s) x {}-byte records, {} mode, {:.2f} s measured\n", r.backend,
             r.writers, r.record_size, r.mode, r.seconds);
  fmt::print(out, "  commits/s     {:>12}\n", group_thousands(r.commits_per_s));
  fmt::print(out, "  MiB/s         {:>12}\n", fixed(r.mib_s, 1));
  fmt::print(out, "  commit latency (µs)  p50 {}  p99 {}  p99.9 {}  mean {}\n", fixed(r.lat_p50_us, 1),
             fixed(r.lat_p99_us, 1), fixed(r.lat_p999_us, 1), fixed(r.lat_mean_us, 1));
  fmt::print(out, "  records/flush {:>12}  ({} group commits)\n", fixed(r.records_per_flush, 1),
             group_thousands(static_cast<double>(r.flushes)));
  fmt::print(out, "  CPU µs/commit {:>12}\n", fixed(r.cpu_us_per_commit, 2));
  fmt::print(out, "  per commit: {} waits, {} wake-up calls (committers of a group commit are woken by one)\n",
             fixed(r.waits_per_commit, 2), fixed(r.wakeups_per_commit, 3));
  fmt::print(out, "  per group commit (µs): write {}, then fdatasync {}; {}% were RWF_DSYNC writes\n",
             fixed(r.write_us, 1), fixed(r.flush_us, 1), fixed(100 * r.dsync_share, 0));
  if (r.checkpoint_ms > 0) {
    fmt::print(out, "  segments: {} recycled by a checkpoint every {} ms, {} created (zero-filled)\n", r.segments_recycled,
               r.checkpoint_ms, r.segments_created);
  } else {
    fmt::print(out, "  segments: {} created (zero-filled), no checkpoints\n", r.segments_created);
  }
}

}  // namespace pageio::bench
