#include "cache_bench.hpp"
#include "numbers.hpp"

#include "errors.hpp"
#include "histogram.hpp"
#include "meter.hpp"
#include "report.hpp"
#include "result.hpp"
#include "rng.hpp"
#include "size_parse.hpp"
#include "pool_file.hpp"
#include "test_file.hpp"

#include <pageio/engine/asio.hpp>
#include <pageio/engine/backend.hpp>
#include <pageio/engine/detail/splitmix64.hpp>
#include <pageio/engine/file.hpp>
#include <pageio/pagecache/asio.hpp>
#include <pageio/pagecache/buffer_pool.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_set>
#include <vector>

namespace pageio::bench {

namespace asio = boost::asio;
namespace pc = pageio::pagecache;

namespace {

// A bijection of [0, n): a 4-round Feistel network over the smallest even
// number of bits that holds n, walking the cycle until the result is below n
// (at most ~4 steps on average). Zipf ranks go through it, so the hot pages
// are scattered over the file instead of being its first pages.
class page_permutation {
 public:
  page_permutation(std::uint64_t n, std::uint64_t seed) : n_(n) {
    unsigned bits = 2;
    while (bits < 62 && (std::uint64_t{1} << bits) < n) ++bits;
    if (bits % 2 != 0) ++bits;
    half_ = bits / 2;
    mask_ = (std::uint64_t{1} << half_) - 1;
    for (auto& k : keys_) k = pageio::detail::splitmix64(seed);
  }

  std::uint64_t operator()(std::uint64_t x) const noexcept {
    do {
      x = encrypt(x);
    } while (x >= n_);
    return x;
  }

 private:
  std::uint64_t encrypt(std::uint64_t x) const noexcept {
    std::uint64_t l = x >> half_, r = x & mask_;
    for (const std::uint64_t k : keys_) {
      const std::uint64_t t = l ^ (pageio::detail::splitmix64_mix(r ^ k) & mask_);
      l = r;
      r = t;
    }
    return (l << half_) | r;
  }

  std::uint64_t n_;
  unsigned half_ = 1;
  std::uint64_t mask_ = 1;
  std::uint64_t keys_[4] = {};
};

// sum_{i=1..n} i^-theta: exactly up to 10^7 terms, the rest by Euler-Maclaurin.
double zeta(std::uint64_t n, double theta) {
  const std::uint64_t exact = std::min<std::uint64_t>(n, 10'000'000);
  double s = 0;
  for (std::uint64_t i = exact; i >= 1; --i) s += std::pow(static_cast<double>(i), -theta);  // small terms first
  if (n > exact) {
    const double a = static_cast<double>(exact), b = static_cast<double>(n);
    s += (std::pow(b, 1 - theta) - std::pow(a, 1 - theta)) / (1 - theta) + (std::pow(b, -theta) - std::pow(a, -theta)) / 2;
  }
  return s;
}

// Which page each lookup asks for: uniform over [0, n), or zipfian by rank
// (Gray et al.'s generator, as YCSB uses) with the ranks scattered by
// page_permutation. Read-only once built: threads share it.
class page_dist {
 public:
  page_dist(std::uint64_t n, bool zipf, double theta, std::uint64_t seed) : n_(n), zipf_(zipf), perm_(n, seed) {
    if (!zipf_) return;
    alpha_ = 1 / (1 - theta);
    zetan_ = zeta(n, theta);
    const double zeta2 = zeta(std::min<std::uint64_t>(n, 2), theta);
    eta_ = (1 - std::pow(2.0 / static_cast<double>(n), 1 - theta)) / (1 - zeta2 / zetan_);
    half_pow_theta_ = 1 + std::pow(0.5, theta);
  }

  std::uint64_t pick(xoshiro256& rng) const noexcept {
    if (!zipf_) return rng.below(n_);
    const double u = static_cast<double>(rng.next() >> 11) * 0x1p-53;
    const double uz = u * zetan_;
    std::uint64_t rank;
    if (uz < 1) {
      rank = 0;
    } else if (uz < half_pow_theta_) {
      rank = 1;
    } else {
      rank = static_cast<std::uint64_t>(static_cast<double>(n_) * std::pow(eta_ * u - eta_ + 1, alpha_));
    }
    return perm_(std::min(rank, n_ - 1));
  }

 private:
  std::uint64_t n_;
  bool zipf_;
  page_permutation perm_;
  double alpha_ = 0, zetan_ = 0, eta_ = 0, half_pow_theta_ = 0;
};

// One thread's figures, on its own cache lines.
struct alignas(64) worker_state {
  latency_histogram hist;
  std::uint64_t lookups = 0;
  std::uint64_t sink = 0;  // the bytes read, so the reads are not optimised away
  std::uint64_t changes = 0;
  std::string error;
};

constexpr unsigned sample_mask = 31;  // latency of 1 lookup in 32

// The byte each lookup reads (varies with the page so it is not always the
// same cache line offset), within the caller's part of the page.
std::size_t byte_of(std::uint64_t page) noexcept { return static_cast<std::size_t>((page * 67) & 2047); }
static_assert(2048 <= pc::usable_size);

// After the run, on this thread: finds resident pages, checks them against a
// buffered pread, then times fetch()+release of them and a buffered pread of
// the same pages from the OS page cache.
void measure_hit_cost(pc::buffer_pool& pool, pc::file_id fid, const cache_params& p, std::uint64_t npages,
                      cache_result& r) {
  const std::size_t want = std::min<std::uint64_t>({256, pool.frames() / 2, npages});
  std::vector<std::uint64_t> pages;
  std::unordered_set<std::uint64_t> seen;
  // Pages the run left in the pool: try_fetch never reads.
  xoshiro256 rng(p.seed ^ 0x4a11);
  for (std::uint64_t tries = 0; tries < 400'000 && pages.size() < want; ++tries) {
    const std::uint64_t pg = rng.below(npages);
    if (seen.count(pg) != 0) continue;
    if (pool.try_fetch({fid, pg})) {
      seen.insert(pg);
      pages.push_back(pg);
    }
  }
  // Topped up, if the run left too few, by fetching pages spread over the file.
  for (std::uint64_t i = 0; pages.size() < want && i < want * 4; ++i) {
    const std::uint64_t pg = (i * (npages / want + 1) + 7) % npages;
    if (!seen.insert(pg).second) continue;
    pool.fetch({fid, pg});
    pages.push_back(pg);
  }
  r.hit_pages = pages.size();

  // The same file through the OS page cache.
  const std::string file = pool.file_path(fid);
  pageio::file buffered;
  try {
    buffered = pageio::file::open(file, {.direct = false, .writable = false});
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "opening " + file + " without O_DIRECT");
  }
  alignas(4096) static thread_local std::byte buf[pc::page_size];
  auto pread_page = [&](std::uint64_t pg) {
    const ssize_t n = ::pread(buffered.fd(), buf, pc::page_size, static_cast<off_t>(pg * pc::page_size));
    if (n != static_cast<ssize_t>(pc::page_size)) {
      throw std::system_error(n < 0 ? errno : EIO, std::system_category(),
                              fmt::format("buffered pread of page {} of {}", pg, file));
    }
  };
  // Every page the pool holds must be what the file holds (warms the OS cache too).
  for (const std::uint64_t pg : pages) {
    pread_page(pg);
    pc::page_ref ref = pool.fetch({fid, pg});
    std::shared_lock latch(ref.latch());
    const std::byte* want = buf + pc::format::header_size;  // the caller's part of the page
    if (std::memcmp(ref.data(), want, pc::usable_size) != 0) {
      std::size_t at = 0;
      while (at < pc::usable_size && ref.data()[at] == want[at]) ++at;
      throw std::runtime_error(fmt::format(
          "pagecache returned wrong data: page {} of {} differs from a buffered pread at byte {} (pool {:#04x}, "
          "file {:#04x})",
          pg, file, pc::format::header_size + at, std::to_integer<unsigned>(ref.data()[at]),
          std::to_integer<unsigned>(want[at])));
    }
  }
  r.verified_pages = pages.size();
  // Which reference pages the OS cache really holds now: RWF_NOWAIT fails with
  // EAGAIN for a page that would need the disk.
  for (const std::uint64_t pg : pages) {
    iovec v{buf, pc::page_size};
    const ssize_t n = ::preadv2(buffered.fd(), &v, 1, static_cast<off_t>(pg * pc::page_size), RWF_NOWAIT);
    if (n != static_cast<ssize_t>(pc::page_size)) {
      ++r.pread_not_cached;
      pread_page(pg);
    }
  }

  const std::size_t k = pages.size();
  std::vector<pc::page_id> ids;
  for (const std::uint64_t pg : pages) ids.push_back({fid, pg});
  const std::uint64_t hit_iters = 200'000, pread_iters = 40'000;
  const unsigned reps = 7;
  std::vector<double> bare, full, pr;
  std::uint64_t sink = 0;
  const auto s0 = pool.stats();
  for (unsigned rep = 0; rep < reps; ++rep) {
    {
      std::size_t j = 0;
      const std::uint64_t t0 = now_ns();
      for (std::uint64_t i = 0; i < hit_iters; ++i) {
        pc::page_ref ref = pool.fetch(ids[j]);
        if (++j == k) j = 0;
      }
      bare.push_back(static_cast<double>(now_ns() - t0) / static_cast<double>(hit_iters));
    }
    {
      std::size_t j = 0;
      const std::uint64_t t0 = now_ns();
      for (std::uint64_t i = 0; i < hit_iters; ++i) {
        pc::page_ref ref = pool.fetch(ids[j]);
        {
          std::shared_lock latch(ref.latch());
          sink += std::to_integer<std::uint8_t>(ref.data()[byte_of(ids[j].page)]);
        }
        ref.reset();
        if (++j == k) j = 0;
      }
      full.push_back(static_cast<double>(now_ns() - t0) / static_cast<double>(hit_iters));
    }
    {
      std::size_t j = 0;
      const std::uint64_t t0 = now_ns();
      for (std::uint64_t i = 0; i < pread_iters; ++i) {
        pread_page(pages[j]);
        sink += std::to_integer<std::uint8_t>(buf[byte_of(pages[j])]);
        if (++j == k) j = 0;
      }
      pr.push_back(static_cast<double>(now_ns() - t0) / static_cast<double>(pread_iters));
    }
  }
  const auto s1 = pool.stats();
  r.hit_loop_misses = s1.misses - s0.misses;
  r.hit_iterations = hit_iters;
  r.hit_repetitions = reps;
  r.ns_per_hit = median_of(bare);
  r.ns_per_hit_latched = median_of(full);
  r.pread_hit_ns = median_of(pr);
  r.hit_vs_pread = r.ns_per_hit / r.pread_hit_ns;
  r.hit_latched_vs_pread = r.ns_per_hit_latched / r.pread_hit_ns;
  [[maybe_unused]] volatile std::uint64_t keep = sink;  // the bytes read are used
}

}  // namespace

cache_result run_cache_bench(const cache_params& p) {
  if (p.threads == 0) throw usage_error("--threads must be at least 1");
  if (p.inflight == 0) throw usage_error("--inflight must be at least 1");
  if (!(p.seconds > 0)) throw usage_error("--seconds must be positive");
  if (!(p.warmup_seconds >= 0)) throw usage_error("--warmup must be 0 or more seconds");
  if (p.dist != "uniform" && p.dist != "zipf") throw usage_error("--dist " + p.dist + ": choose uniform or zipf");
  if (p.policy != "s3fifo" && p.policy != "clock") throw usage_error("--policy " + p.policy + ": choose s3fifo or clock");
  if (p.dist == "zipf" && !(p.zipf_theta > 0 && p.zipf_theta < 1)) {
    throw usage_error(fmt::format("--zipf-theta {}: must be between 0 and 1 (exclusive)", p.zipf_theta));
  }
  if (p.size_bytes < pc::page_size) throw usage_error("--size must be at least one 4 KiB page");
  if (p.cache_mb == 0) throw usage_error("--cache-mb must be at least 1");
  const std::uint64_t frames = p.cache_mb * 256;
  if (static_cast<std::uint64_t>(p.threads) * p.inflight * 2 > frames) {
    throw usage_error(fmt::format("{} thread(s) x {} in flight pin up to {} frames at once: give --cache-mb at least {}",
                                  p.threads, p.inflight, p.threads * p.inflight,
                                  (static_cast<std::uint64_t>(p.threads) * p.inflight * 2 + 255) / 256));
  }
  const std::uint64_t npages = p.size_bytes / pc::page_size;

  // Built and dropped: a bad name is reported before the file is written, and
  // "default" is resolved for the report.
  backend_options bo;
  bo.queue_depth = std::max(p.inflight, 1u);
  bo.uring_single_thread = true;
  std::string backend_name;
  try {
    backend_name = make_backend(p.backend, bo)->name();
  } catch (const backend_unavailable& e) {
    if (e.code() == std::errc::invalid_argument) throw usage_error(e.what());
    throw;
  }
  const std::filesystem::path pool_file = pool_file_for(p.file);
  prepare_pool_file(pool_file, p.size_bytes);

  pc::options o;
  o.frames = frames;
  o.backend = p.backend;
  o.policy = p.policy == "clock" ? pc::eviction_policy::clock : pc::eviction_policy::s3fifo;
  o.readahead_pages = p.readahead_pages;
  o.queue_depth = 64;
  o.doublewrite = p.doublewrite;
  if (p.write_fraction > 0 && p.inflight != 1) throw usage_error("--write-fraction needs --inflight 1");
  pc::buffer_pool pool(o);
  const pc::file_id fid = pool.add_file(pool_file, false);
  const page_dist dist(npages, p.dist == "zipf", p.zipf_theta, p.seed);

  std::atomic<bool> measuring{false}, stop{false};
  std::vector<worker_state> states(p.threads);

  auto blocking_worker = [&](unsigned t) {
    worker_state& st = states[t];
    xoshiro256 rng(p.seed + 0x9e37 * (t + 1));
    std::uint64_t n = 0;
    const auto write_below = static_cast<std::uint64_t>(p.write_fraction * 18446744073709551615.0);
    try {
      while (!stop.load(std::memory_order_relaxed)) {
        const pc::page_id id{fid, dist.pick(rng)};
        const bool sample = (++n & sample_mask) == 0;
        const bool meas = measuring.load(std::memory_order_relaxed);
        const bool change = write_below > 0 && rng.next() < write_below;
        const std::uint64_t began = sample ? now_ns() : 0;
        pc::page_ref ref = pool.fetch(id);
        if (change) {
          std::unique_lock latch(ref.latch());
          ref.data()[byte_of(id.page)] ^= std::byte{1};
          ref.mark_dirty(0);
          if (meas) ++st.changes;
        } else {
          std::shared_lock latch(ref.latch());
          st.sink += std::to_integer<std::uint8_t>(ref.data()[byte_of(id.page)]);
        }
        ref.reset();
        if (meas) {
          ++st.lookups;
          if (sample) st.hist.record(now_ns() - began);
        }
      }
    } catch (const std::exception& e) {
      st.error = e.what();
      stop = true;
    }
  };

  auto async_worker = [&](unsigned t) {
    worker_state& st = states[t];
    try {
      asio::io_context ctx(1);  // run by this thread only
      asio_driver drv(ctx, p.backend, bo);
      xoshiro256 rng(p.seed + 0x9e37 * (t + 1));
      std::uint64_t n = 0;
      auto fetcher = [&]() -> asio::awaitable<void> {
        while (!stop.load(std::memory_order_relaxed)) {
          const pc::page_id id{fid, dist.pick(rng)};
          const bool sample = (++n & sample_mask) == 0;
          const bool meas = measuring.load(std::memory_order_relaxed);
          const std::uint64_t began = sample ? now_ns() : 0;
          auto [ec, ref] = co_await pc::async_fetch(pool, drv, id, asio::as_tuple(asio::use_awaitable));
          if (ec) {
            if (st.error.empty()) {
              st.error = fmt::format("async_fetch of page {} of {}: {}", id.page, pool.file_path(fid), ec.message());
            }
            stop = true;
            break;
          }
          {
            std::shared_lock latch(ref.latch());
            st.sink += std::to_integer<std::uint8_t>(ref.data()[byte_of(id.page)]);
          }
          ref.reset();
          if (meas) {
            ++st.lookups;
            if (sample) st.hist.record(now_ns() - began);
          }
        }
      };
      for (unsigned i = 0; i < p.inflight; ++i) {
        asio::co_spawn(ctx, fetcher(), [&](std::exception_ptr e) {
          if (!e) return;
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            if (st.error.empty()) st.error = x.what();
          }
          stop = true;
        });
      }
      ctx.run();
    } catch (const std::exception& e) {
      if (st.error.empty()) st.error = e.what();
      stop = true;
    }
  };

  std::vector<std::thread> ts;
  for (unsigned t = 0; t < p.threads; ++t) {
    if (p.inflight == 1) {
      ts.emplace_back(blocking_worker, t);
    } else {
      ts.emplace_back(async_worker, t);
    }
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(p.warmup_seconds));
  const pc::pool_stats s0 = pool.stats();
  const double cpu0 = cpu_seconds();
  const std::uint64_t t0 = now_ns();
  measuring = true;
  // Sleeps in slices so a failing worker ends the run early.
  const std::uint64_t end = t0 + static_cast<std::uint64_t>(p.seconds * 1e9);
  while (!stop.load() && now_ns() < end) {
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<std::uint64_t>(end - now_ns(), 20'000'000)));
  }
  measuring = false;
  const std::uint64_t t1 = now_ns();
  const double cpu1 = cpu_seconds();
  const pc::pool_stats s1 = pool.stats();
  stop = true;
  for (auto& t : ts) t.join();
  for (const auto& st : states) {
    if (!st.error.empty()) throw std::runtime_error(st.error);
  }

  cache_result r;
  r.backend = backend_name;
  r.threads = p.threads;
  r.inflight = p.inflight;
  r.dist = p.dist;
  r.zipf_theta = p.dist == "zipf" ? p.zipf_theta : 0;
  r.policy = p.policy;
  r.cache_mb = p.cache_mb;
  r.frames = pool.frames();
  r.size_bytes = npages * pc::page_size;
  r.readahead = p.readahead_pages;
  r.file = pool_file.string();
  r.seconds = static_cast<double>(t1 - t0) / 1e9;
  latency_histogram all;
  for (const auto& st : states) {
    r.lookups += st.lookups;
    r.changes += st.changes;
    all.merge(st.hist);
  }
  r.write_fraction = p.write_fraction;
  r.doublewrite = p.doublewrite;
  r.pages_written = s1.pages_written - s0.pages_written;
  r.doublewrite_pages = s1.doublewrite_pages - s0.doublewrite_pages;
  r.syncs = s1.syncs - s0.syncs;
  r.writeback_mib_per_s = static_cast<double>(r.pages_written) * pc::page_size / (1 << 20) / r.seconds;
  r.lookups_per_s = static_cast<double>(r.lookups) / r.seconds;
  r.hits = s1.hits - s0.hits;
  r.misses = s1.misses - s0.misses;
  r.waits = s1.waits - s0.waits;
  r.reads = s1.reads - s0.reads;
  r.pages_read = s1.pages_read - s0.pages_read;
  r.readahead_pages = s1.readahead_pages - s0.readahead_pages;
  r.evictions = s1.evictions - s0.evictions;
  r.hit_ratio = r.hits + r.misses > 0 ? static_cast<double>(r.hits) / static_cast<double>(r.hits + r.misses) : 0;
  r.miss_iops = static_cast<double>(r.reads) / r.seconds;
  r.pages_read_per_s = static_cast<double>(r.pages_read) / r.seconds;
  r.lat_p50_us = all.percentile_ns(50) / 1e3;
  r.lat_p99_us = all.percentile_ns(99) / 1e3;
  r.lat_p999_us = all.percentile_ns(99.9) / 1e3;
  r.lat_mean_us = all.mean_ns() / 1e3;
  if (r.lookups > 0) r.cpu_us_per_lookup = (cpu1 - cpu0) * 1e6 / static_cast<double>(r.lookups);

  r.ns_per_hit = r.ns_per_hit_latched = r.pread_hit_ns = r.hit_vs_pread = r.hit_latched_vs_pread = not_measured;
  if (p.measure_hit_cost) measure_hit_cost(pool, fid, p, npages, r);
  return r;
}

nlohmann::json to_json(const cache_result& r) {
  const auto num = number_or_null;
  return {{"tool", "pageio"},
          {"workload", "cache"},
          {"backend", r.backend},
          {"threads", r.threads},
          {"inflight", r.inflight},
          {"dist", r.dist},
          {"zipf_theta", r.dist == "zipf" ? nlohmann::json(r.zipf_theta) : nlohmann::json()},
          {"policy", r.policy},
          {"cache_mb", r.cache_mb},
          {"frames", r.frames},
          {"size", r.size_bytes},
          {"readahead_pages_option", r.readahead},
          {"file", r.file},
          {"seconds", r.seconds},
          {"lookups", r.lookups},
          {"lookups_per_s", r.lookups_per_s},
          {"hit_ratio", r.hit_ratio},
          {"hits", r.hits},
          {"misses", r.misses},
          {"waits", r.waits},
          {"reads", r.reads},
          {"miss_iops", r.miss_iops},
          {"pages_read", r.pages_read},
          {"pages_read_per_s", r.pages_read_per_s},
          {"readahead_pages", r.readahead_pages},
          {"evictions", r.evictions},
          {"lat_p50_us", r.lat_p50_us},
          {"lat_p99_us", r.lat_p99_us},
          {"lat_p999_us", r.lat_p999_us},
          {"lat_mean_us", r.lat_mean_us},
          {"cpu_us_per_lookup", r.cpu_us_per_lookup},
          {"write_fraction", r.write_fraction},
          {"doublewrite", r.doublewrite},
          {"changes", r.changes},
          {"pages_written", r.pages_written},
          {"doublewrite_pages", r.doublewrite_pages},
          {"syncs", r.syncs},
          {"writeback_mib_per_s", r.writeback_mib_per_s},
          {"ns_per_hit", num(r.ns_per_hit)},
          {"ns_per_hit_latched", num(r.ns_per_hit_latched)},
          {"pread_hit_ns", num(r.pread_hit_ns)},
          {"hit_vs_pread", num(r.hit_vs_pread)},
          {"hit_latched_vs_pread", num(r.hit_latched_vs_pread)},
          {"hit_pages", r.hit_pages},
          {"hit_iterations", r.hit_iterations},
          {"hit_repetitions", r.hit_repetitions},
          {"hit_loop_misses", r.hit_loop_misses},
          {"pread_not_cached", r.pread_not_cached},
          {"verified_pages", r.verified_pages}};
}

void print_cache_result(std::FILE* out, const cache_result& r) {
  const std::string how = r.inflight == 1 ? "blocking fetch()" : "async_fetch coroutines on an asio_driver per thread";
  fmt::print(out, "pageio cache on {}: {} thread(s) x {} in flight ({}), {}{} over {} ({} pages), {} MiB pool ({} "
             "frames, {}, read-ahead {}), {:.2f} s measured\n",
             r.backend, r.threads, r.inflight, how, r.dist,
             r.dist == "zipf" ? fmt::format(" (theta {:g}, scattered)", r.zipf_theta) : std::string(),
             format_size(r.size_bytes), group_thousands(static_cast<double>(r.size_bytes / 4096)), r.cache_mb,
             r.frames, r.policy, r.readahead, r.seconds);
  fmt::print(out, "  lookups/s     {:>12}  (each: fetch, read 1 byte under the shared latch, release)\n",
             group_thousands(r.lookups_per_s));
  fmt::print(out, "  hit ratio     {:>11.2f}%  ({} hits, {} misses, {} of them joined a read already started)\n",
             100 * r.hit_ratio, group_thousands(static_cast<double>(r.hits)),
             group_thousands(static_cast<double>(r.misses)), group_thousands(static_cast<double>(r.waits)));
  fmt::print(out, "  miss IOPS     {:>12}  (read requests sent per second; {} pages/s read)\n",
             group_thousands(r.miss_iops), group_thousands(r.pages_read_per_s));
  fmt::print(out, "  fetch latency (µs, 1 lookup in 32)  p50 {}  p99 {}  p99.9 {}  mean {}\n", fixed(r.lat_p50_us, 2),
             fixed(r.lat_p99_us, 1), fixed(r.lat_p999_us, 1), fixed(r.lat_mean_us, 2));
  fmt::print(out, "  CPU µs/lookup {:>12}\n", fixed(r.cpu_us_per_lookup, 3));
  if (r.write_fraction > 0) {
    fmt::print(out, "  write-back    {:>12} MiB/s in place ({} pages, {} changes, {} through the double-write area, "
                    "{} syncs; double-write {})\n",
               fixed(r.writeback_mib_per_s, 1), r.pages_written, r.changes, r.doublewrite_pages, r.syncs,
               r.doublewrite ? "on" : "off");
  }
  fmt::print(out, "  pool: {} pages read ({} of them read ahead), {} evictions\n",
             group_thousands(static_cast<double>(r.pages_read)), group_thousands(static_cast<double>(r.readahead_pages)),
             group_thousands(static_cast<double>(r.evictions)));
  if (!std::isfinite(r.ns_per_hit)) return;
  fmt::print(out,
             "  hit cost, measured after the run on one thread: {} pages found resident (try_fetch) fetched in turn, "
             "median of {} loops of {}:\n",
             r.hit_pages, r.hit_repetitions, group_thousands(static_cast<double>(r.hit_iterations)));
  fmt::print(out, "    fetch + release                                   {:>8} ns\n", fixed(r.ns_per_hit, 1));
  fmt::print(out, "    fetch + shared latch + 1-byte read + release      {:>8} ns\n", fixed(r.ns_per_hit_latched, 1));
  fmt::print(out, "    buffered pread() of the same 4 KiB pages, in the OS page cache  {:>8} ns{}\n",
             fixed(r.pread_hit_ns, 1),
             r.pread_not_cached ? fmt::format(" ({} were not in the OS cache before the loops)", r.pread_not_cached)
                                : std::string());
  fmt::print(out, "    hit / pread {:.3f} (1/{:.1f}), target at most 1/20: {}; with latch and read {:.3f} (1/{:.1f})\n",
             r.hit_vs_pread, 1 / r.hit_vs_pread, r.hit_vs_pread <= 0.05 ? "met" : "NOT met", r.hit_latched_vs_pread,
             1 / r.hit_latched_vs_pread);
  if (r.hit_loop_misses > 0) {
    fmt::print(out, "    note: the pool counted {} misses during the hit loops\n", r.hit_loop_misses);
  }
  fmt::print(out, "  data: {} resident pages matched a buffered pread of the file\n", r.verified_pages);
}

}  // namespace pageio::bench
