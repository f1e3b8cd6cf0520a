// `pageio-bench cache`: T threads fetching pages through a
// pageio::pagecache::buffer_pool over a file much larger (or smaller) than
// the pool, each keeping N fetches in flight; then, on one thread, what a hit
// costs next to a buffered pread() of a page the OS has cached.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace pageio::bench {

struct cache_params {
  std::string backend = "default";
  std::filesystem::path file;    // created or extended to size_bytes by writing it
  std::uint64_t size_bytes = 1ull << 30;  // pages are picked in [0, size_bytes / 4096)
  std::uint64_t cache_mb = 16;   // the pool: cache_mb * 256 frames of 4 KiB
  unsigned threads = 1;
  // 1: blocking buffer_pool::fetch() in a loop. More: each thread runs an
  // io_context with its own asio_driver and this many coroutines calling
  // async_fetch back to back.
  unsigned inflight = 1;
  std::string dist = "uniform";  // "uniform" or "zipf"
  double zipf_theta = 0.99;
  double seconds = 4;
  double warmup_seconds = 0.5;
  std::string policy = "s3fifo";  // "s3fifo" or "clock"
  std::uint64_t readahead_pages = 16;  // options::readahead_pages
  std::uint64_t seed = 0x5eed;
  // Fraction of lookups that change the page (blocking fetches only), and
  // whether write-back goes through the double-write area.
  double write_fraction = 0;
  bool doublewrite = true;
  // After the run: time fetch()+release of resident pages and a buffered
  // pread() of the same pages from the OS page cache, on one thread.
  bool measure_hit_cost = true;
};

struct cache_result {
  std::string backend;  // as the pool's driver/lanes reported it
  unsigned threads = 0, inflight = 0;
  std::string dist, policy;
  double zipf_theta = 0;
  std::uint64_t cache_mb = 0, frames = 0, size_bytes = 0, readahead = 0;
  std::string file;
  double seconds = 0;  // measured window
  std::uint64_t lookups = 0;
  double lookups_per_s = 0;
  // From the pool's counters over the measured window.
  std::uint64_t hits = 0, misses = 0, waits = 0, reads = 0, pages_read = 0, readahead_pages = 0, evictions = 0;
  double hit_ratio = 0;
  double miss_iops = 0;        // read requests sent per second
  double pages_read_per_s = 0;
  // Fetch latency (initiation to the page in hand), sampled 1 in 32 lookups.
  double lat_p50_us = 0, lat_p99_us = 0, lat_p999_us = 0, lat_mean_us = 0;
  double cpu_us_per_lookup = 0;
  // Write-back over the window (with write_fraction > 0).
  double write_fraction = 0;
  bool doublewrite = true;
  std::uint64_t changes = 0, pages_written = 0, doublewrite_pages = 0, syncs = 0;
  double writeback_mib_per_s = 0;  // pages written in place, MiB/s
  // The dedicated hit measurement (NaN when not measured).
  std::uint64_t hit_pages = 0;       // resident pages cycled through
  std::uint64_t hit_iterations = 0;  // per repetition
  unsigned hit_repetitions = 0;
  std::uint64_t hit_loop_misses = 0;  // misses the pool counted during the timed loops (0 expected)
  double ns_per_hit = 0;          // fetch() + release of a resident page
  double ns_per_hit_latched = 0;  // fetch() + shared latch + 1-byte read + release (what each lookup of the run does)
  double pread_hit_ns = 0;        // buffered pread() of 4 KiB already in the OS page cache
  double hit_vs_pread = 0;        // ns_per_hit / pread_hit_ns (the target: at most 1/20)
  double hit_latched_vs_pread = 0;  // ns_per_hit_latched / pread_hit_ns
  std::uint64_t pread_not_cached = 0;  // of the reference pages, not in the OS page cache after warming
  std::uint64_t verified_pages = 0;    // resident pool pages compared with pread: all equal, or the run throws
};

// Throws usage_error for impossible parameters, std::runtime_error (or
// pagecache::io_error) when the pool fails or hands out wrong data.
cache_result run_cache_bench(const cache_params& p);
nlohmann::json to_json(const cache_result& r);
void print_cache_result(std::FILE* out, const cache_result& r);

}  // namespace pageio::bench
