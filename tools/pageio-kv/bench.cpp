#include "data_dir.hpp"
#include "run_info.hpp"
#include "usage.hpp"
#include "bench.hpp"

#include <pageio/kv/store.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace pageio::kv::tool {

namespace {

using clock_type = std::chrono::steady_clock;

bool parse_bool(const std::string& v, const char* flag) {
  if (v == "1" || v == "true") return true;
  if (v == "0" || v == "false") return false;
  throw std::invalid_argument(std::string("--") + flag + "=" + v + ": give 0/1 or false/true");
}

// Latencies in microseconds, in buckets 5% apart (enough for percentiles).
class histogram {
 public:
  histogram() : counts_(bucket_count, 0) {}
  void add(double us) {
    ++counts_[bucket_of(us)];
    ++n_;
    sum_ += us;
  }
  void merge(const histogram& o) {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    n_ += o.n_;
    sum_ += o.sum_;
  }
  double percentile(double p) const {
    if (n_ == 0) return 0;
    const double want = p / 100 * static_cast<double>(n_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      if (counts_[i] == 0) continue;
      if (static_cast<double>(seen + counts_[i]) >= want) {
        const double lo = i == 0 ? 0 : upper(i - 1), hi = upper(i);
        const double frac = (want - static_cast<double>(seen)) / static_cast<double>(counts_[i]);
        return lo + (hi - lo) * std::clamp(frac, 0.0, 1.0);
      }
      seen += counts_[i];
    }
    return upper(counts_.size() - 1);
  }
  double mean() const { return n_ ? sum_ / static_cast<double>(n_) : 0; }

 private:
  static constexpr std::size_t bucket_count = 400;
  static double upper(std::size_t i) { return 0.5 * std::pow(1.05, static_cast<double>(i)); }
  static std::size_t bucket_of(double us) {
    if (us <= 0.5) return 0;
    const auto i = static_cast<std::size_t>(std::ceil(std::log(us / 0.5) / std::log(1.05)));
    return std::min(i, bucket_count - 1);
  }
  std::vector<std::uint64_t> counts_;
  std::uint64_t n_ = 0;
  double sum_ = 0;
};

std::string make_key(std::uint64_t n, unsigned size) {
  std::array<char, 8> be{};
  for (int i = 7; i >= 0; --i) {
    be[static_cast<std::size_t>(i)] = static_cast<char>(n & 0xff);
    n >>= 8;
  }
  std::string k;
  if (size >= 8) {
    k.assign(be.data(), 8);
    k.resize(size, '0');
  } else {
    k.assign(be.data() + (8 - size), size);
  }
  return k;
}

// Random bytes to cut values from (as db_bench's RandomGenerator does).
class value_source {
 public:
  explicit value_source(std::uint64_t seed, unsigned value_size) : rng_(seed) {
    data_.resize(std::max<std::size_t>(64 << 10, 2 * value_size));
    for (auto& c : data_) c = static_cast<char>(rng_());
  }
  std::string_view next(unsigned len) {
    if (pos_ + len > data_.size()) pos_ = 0;
    const std::string_view v(data_.data() + pos_, len);
    pos_ += len;
    return v;
  }

 private:
  std::mt19937_64 rng_;
  std::string data_;
  std::size_t pos_ = 0;
};

struct thread_result {
  histogram lat;
  std::uint64_t ops = 0, found = 0, bytes = 0;
};

struct bench_result {
  std::string name;
  double seconds = 0;
  std::uint64_t ops = 0, found = 0, bytes = 0;
  bool reads = false;
  std::uint64_t log_commits = 0, log_records = 0, log_pages = 0;  // during the benchmark
  std::uint64_t cache_hits = 0, cache_misses = 0;  // the same
  std::uint64_t buffered_puts = 0, merged_pairs = 0;  // the same
  std::uint64_t buffered_bytes = 0;  // at the end
  std::uint64_t pages_written = 0, data_syncs = 0;  // during the benchmark
  histogram lat;
};

std::uint64_t max_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return 0;
}

class runner {
 public:
  explicit runner(const bench_flags& f) : f_(f) {}

  std::filesystem::path db_path() const {
    if (!f_.db.empty()) return f_.db;
    const char* d = std::getenv("PAGEIO_DATA_DIR");
    return std::filesystem::path(d && *d ? d : "pageio-data") / "kv-bench";
  }

  options store_options() const {
    options o;
    o.dir = db_path();
    o.cache_bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(f_.cache_size, 64 * 4096));
    if (f_.write_buffer_size >= 0) o.write_buffer_bytes = static_cast<std::uint64_t>(f_.write_buffer_size);
    o.sync = parse_bool(f_.sync, "sync");
    o.backend = f_.backend;
    return o;
  }

  // db_bench destroys the database for a fresh fill: here only a directory
  // that is a pageio-kv store (or empty) is removed, never anything else.
  void destroy_store() {
    const auto p = db_path();
    std::error_code ec;
    if (!std::filesystem::exists(p, ec)) return;
    const bool is_store = std::filesystem::exists(p / "data") && std::filesystem::is_directory(p / "wal");
    if (!is_store && !std::filesystem::is_empty(p, ec)) {
      throw std::runtime_error("--db " + p.string() + " exists and is not a pageio-kv store: refusing to delete it "
                               "for a fresh fill; give another --db");
    }
    std::filesystem::remove_all(p);
  }

  // The store makes its own directory; the one holding it must exist, but
  // for the default ./pageio-data, made here (one level: never a mkdir -p
  // of a mistyped --db).
  // The tools' data-directory rules (tools/common/data_dir.hpp): only the
  // default ./pageio-data is created, and a file system in RAM is refused.
  void ensure_parent() const {
    const std::filesystem::path parent = db_path().parent_path().empty() ? "." : db_path().parent_path();
    tools::ensure_data_dir(parent, "--db (or PAGEIO_DATA_DIR)", !f_.db.empty());
    tools::refuse_memory_file_system(parent, "--db (or PAGEIO_DATA_DIR)");
  }

  void open_store(bool fresh) {
    db_.reset();
    if (fresh) destroy_store();
    ensure_parent();
    db_ = std::make_unique<store>(store_options());
  }

  bench_result run_one(const std::string& name, std::uint64_t seed) {
    const bool fresh = name == "fillseq" || name == "fillrandom";
    if (fresh && parse_bool(f_.use_existing_db, "use_existing_db")) {
      throw std::invalid_argument(name + " needs a fresh store: drop --use_existing_db=1");
    }
    if (fresh || !db_) open_store(fresh);
    bench_result r;
    r.name = name;
    const std::uint64_t num = static_cast<std::uint64_t>(f_.num);
    const std::uint64_t writes = f_.writes < 0 ? num : static_cast<std::uint64_t>(f_.writes);
    const std::uint64_t reads = f_.reads < 0 ? num : static_cast<std::uint64_t>(f_.reads);
    r.reads = name == "readrandom" || name == "readseq" || name == "seekrandom" || name == "readwhilewriting";
    const unsigned nthreads = std::max(1u, f_.threads);
    std::vector<thread_result> per(nthreads);
    std::atomic<bool> stop_writer{false};
    const auto started = clock_type::now();
    const auto deadline = f_.duration > 0 ? started + std::chrono::duration_cast<clock_type::duration>(
                                                          std::chrono::duration<double>(f_.duration))
                                          : clock_type::time_point::max();
    auto timed = [&](thread_result& t, auto&& op) {
      const auto a = clock_type::now();
      op();
      const auto b = clock_type::now();
      t.lat.add(std::chrono::duration<double, std::micro>(b - a).count());
      ++t.ops;
      return b;
    };
    auto body = [&](unsigned tid) {
      thread_result& t = per[tid];
      std::mt19937_64 rng(seed + 1000003ull * (tid + 1));
      value_source values(seed ^ (tid + 77), f_.value_size);
      auto rand_key = [&] { return make_key(num ? rng() % num : 0, f_.key_size); };
      if (name == "fillseq") {
        for (std::uint64_t i = 0; i < writes; ++i) {
          const std::string k = make_key(i, f_.key_size);
          const auto now = timed(t, [&] { db_->put(k, values.next(f_.value_size)); });
          t.bytes += k.size() + f_.value_size;
          if (now >= deadline) break;
        }
      } else if (name == "fillrandom" || name == "overwrite") {
        for (std::uint64_t i = 0; i < writes; ++i) {
          const std::string k = rand_key();
          const auto now = timed(t, [&] { db_->put(k, values.next(f_.value_size)); });
          t.bytes += k.size() + f_.value_size;
          if (now >= deadline) break;
        }
      } else if (name == "deleterandom") {
        for (std::uint64_t i = 0; i < writes; ++i) {
          const std::string k = rand_key();
          if (timed(t, [&] { db_->del(k); }) >= deadline) break;
        }
      } else if (name == "readrandom" || name == "readwhilewriting") {
        for (std::uint64_t i = 0; i < reads; ++i) {
          const std::string k = rand_key();
          const auto now = timed(t, [&] {
            if (auto v = db_->get(k)) {
              ++t.found;
              t.bytes += k.size() + v->size();
            }
          });
          if (now >= deadline) break;
        }
      } else if (name == "seekrandom") {
        for (std::uint64_t i = 0; i < reads; ++i) {
          const std::string k = rand_key();
          const auto now = timed(t, [&] {
            auto it = db_->scan(std::string_view(k), std::nullopt, 1);
            if (it.valid()) {
              ++t.found;
              t.bytes += it.key().size() + it.value().size();
            }
          });
          if (now >= deadline) break;
        }
      } else if (name == "readseq") {
        auto a = clock_type::now();
        for (auto it = db_->scan(); it.valid(); it.next()) {
          const auto b = clock_type::now();
          t.lat.add(std::chrono::duration<double, std::micro>(b - a).count());
          a = b;
          ++t.ops;
          ++t.found;
          t.bytes += it.key().size() + it.value().size();
          if (t.ops >= reads || b >= deadline) break;
        }
      } else {
        throw std::invalid_argument("unknown benchmark \"" + name +
                                    "\": fillseq, fillrandom, overwrite, readrandom, readseq, seekrandom, "
                                    "readwhilewriting, deleterandom");
      }
    };
    std::thread writer;
    if (name == "readwhilewriting") {
      writer = std::thread([&] {
        std::mt19937_64 rng(seed ^ 0xabcdef);
        value_source values(seed ^ 0x1234, f_.value_size);
        while (!stop_writer.load()) db_->put(make_key(num ? rng() % num : 0, f_.key_size), values.next(f_.value_size));
      });
    }
    const statistics before = db_->stats();
    std::vector<std::thread> ts;
    std::exception_ptr err;
    std::mutex err_mu;
    for (unsigned i = 0; i < nthreads; ++i) {
      ts.emplace_back([&, i] {
        try {
          body(i);
        } catch (...) {
          std::lock_guard lk(err_mu);
          if (!err) err = std::current_exception();
        }
      });
    }
    for (auto& th : ts) th.join();
    r.seconds = std::chrono::duration<double>(clock_type::now() - started).count();
    stop_writer = true;
    if (writer.joinable()) writer.join();
    if (err) std::rethrow_exception(err);
    const statistics after = db_->stats();
    r.log_commits = after.log_commits - before.log_commits;
    r.log_records = after.log_records - before.log_records;
    r.log_pages = after.log_pages - before.log_pages;
    r.cache_hits = after.cache_hits - before.cache_hits;
    r.cache_misses = after.cache_misses - before.cache_misses;
    r.buffered_puts = after.buffered_puts - before.buffered_puts;
    r.merged_pairs = after.merged_pairs - before.merged_pairs;
    r.buffered_bytes = after.buffered_bytes;
    r.pages_written = after.pages_written - before.pages_written;
    r.data_syncs = after.data_syncs - before.data_syncs;
    for (const auto& t : per) {
      r.ops += t.ops;
      r.found += t.found;
      r.bytes += t.bytes;
      r.lat.merge(t.lat);
    }
    return r;
  }

  void close() { db_.reset(); }

 private:
  const bench_flags& f_;
  std::unique_ptr<store> db_;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

int run_bench(const bench_flags& f) {
  if (f.num < 0) throw std::invalid_argument("--num must be 0 or more");
  if (f.key_size == 0 || f.key_size > max_key_bytes) throw std::invalid_argument("--key_size must be 1 to 1024");
  if (f.value_size > max_value_bytes) throw std::invalid_argument("--value_size is at most 64 MiB");
  if (f.threads == 0) throw std::invalid_argument("--threads must be at least 1");
  parse_bool(f.sync, "sync");
  parse_bool(f.use_existing_db, "use_existing_db");
  const auto names = split_list(f.benchmarks);
  if (names.empty()) throw std::invalid_argument("--benchmarks is empty");
  for (const auto& n : names) {
    static const char* known[] = {"fillseq",  "fillrandom", "overwrite",        "readrandom",
                                  "readseq",  "seekrandom", "readwhilewriting", "deleterandom"};
    if (std::find_if(std::begin(known), std::end(known), [&](const char* k) { return n == k; }) == std::end(known)) {
      throw std::invalid_argument("unknown benchmark \"" + n +
                                  "\": fillseq, fillrandom, overwrite, readrandom, readseq, seekrandom, "
                                  "readwhilewriting, deleterandom");
    }
  }
  const std::uint64_t seed =
      f.seed != 0 ? f.seed : static_cast<std::uint64_t>(clock_type::now().time_since_epoch().count());
  runner run(f);
  run.ensure_parent();  // before anything is printed
  if (!f.json) {
    fmt::print("pageio-kv bench\n");
    fmt::print("Keys:       {} bytes each\n", f.key_size);
    fmt::print("Values:     {} bytes each\n", f.value_size);
    fmt::print("Entries:    {}\n", f.num);
    fmt::print("Threads:    {}\n", f.threads);
    fmt::print("Sync:       {}\n", parse_bool(f.sync, "sync") ? "every write durable when it returns" : "off");
    fmt::print("Cache:      {} bytes\n", f.cache_size);
    fmt::print("Backend:    {}\n", f.backend);
    fmt::print("DB path:    [{}]\n", run.db_path().string());
    fmt::print("------------------------------------------------\n");
    std::fflush(stdout);
  }
  nlohmann::json out;
  out["benchmarks"] = nlohmann::json::array();
  for (std::size_t i = 0; i < names.size(); ++i) {
    const bench_result r = run.run_one(names[i], seed + i);
    const double micros = r.ops ? r.seconds * 1e6 * std::max(1u, f.threads) / static_cast<double>(r.ops) : 0;
    const double ops_s = r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0;
    const double mb_s = r.seconds > 0 ? static_cast<double>(r.bytes) / 1048576.0 / r.seconds : 0;
    if (f.json) {
      out["benchmarks"].push_back({{"name", r.name},
                                   {"micros_per_op", micros},
                                   {"ops_per_sec", ops_s},
                                   {"seconds", r.seconds},
                                   {"operations", r.ops},
                                   {"mb_per_sec", mb_s},
                                   {"found", r.found},
                                   {"p50_us", r.lat.percentile(50)},
                                   {"p75_us", r.lat.percentile(75)},
                                   {"p99_us", r.lat.percentile(99)},
                                   {"p99_9_us", r.lat.percentile(99.9)},
                                   {"p99_99_us", r.lat.percentile(99.99)},
                                   {"log_commits", r.log_commits},
                                   {"log_records", r.log_records},
                                   {"log_pages", r.log_pages},
                                   {"cache_hits", r.cache_hits},
                                   {"cache_misses", r.cache_misses},
                                   {"pages_written", r.pages_written},
                                   {"data_syncs", r.data_syncs},
                                   {"buffered_puts", r.buffered_puts},
                                   {"merged_pairs", r.merged_pairs},
                                   {"buffered_bytes", r.buffered_bytes},
                                   {"max_rss_bytes", max_rss_bytes()}});
    } else {
      std::string extra;
      if (r.reads && r.name != "readseq") extra = fmt::format(" ({} of {} found)", r.found, r.ops);
      fmt::print("{:<12} : {:11.3f} micros/op {} ops/sec {:.3f} seconds {} operations; {:6.1f} MB/s{}\n", r.name,
                 micros, static_cast<std::uint64_t>(ops_s), r.seconds, r.ops, mb_s, extra);
      fmt::print("Percentiles: P50: {:.2f} P75: {:.2f} P99: {:.2f} P99.9: {:.2f} P99.99: {:.2f}\n",
                 r.lat.percentile(50), r.lat.percentile(75), r.lat.percentile(99), r.lat.percentile(99.9),
                 r.lat.percentile(99.99));
      if (r.log_commits != 0) {
        fmt::print("Log:        {} group commits of {:.1f} records, {:.1f} operations, {:.1f} pages each\n",
                   r.log_commits, static_cast<double>(r.log_records) / static_cast<double>(r.log_commits),
                   static_cast<double>(r.ops) / static_cast<double>(r.log_commits),
                   static_cast<double>(r.log_pages) / static_cast<double>(r.log_commits));
      }
      if (r.cache_hits + r.cache_misses != 0) {
        fmt::print("Cache:      {} page fetches, {} misses ({:.1f}%); {} pages written, {} data-file syncs\n",
                   r.cache_hits + r.cache_misses, r.cache_misses,
                   100.0 * static_cast<double>(r.cache_misses) / static_cast<double>(r.cache_hits + r.cache_misses),
                   r.pages_written, r.data_syncs);
      }
      if (r.buffered_puts + r.merged_pairs != 0) {
        fmt::print("Buffer:     {} puts into the write buffer, {} pairs merged into leaves, {:.1f} MiB buffered at the end\n",
                   r.buffered_puts, r.merged_pairs, static_cast<double>(r.buffered_bytes) / (1 << 20));
      }
      std::fflush(stdout);
    }
  }
  run.close();
  if (f.json) {
    out["key_size"] = f.key_size;
    out["value_size"] = f.value_size;
    out["num"] = f.num;
    out["threads"] = f.threads;
    out["sync"] = parse_bool(f.sync, "sync");
    out["cache_size"] = f.cache_size;
    out["backend"] = f.backend;
    out["db"] = run.db_path().string();
    out["max_rss_bytes"] = max_rss_bytes();
    pageio::tools::stamp(out, "pageio-kv", run.db_path());
    fmt::print("{}\n", out.dump());
  } else {
    fmt::print("max resident size: {:.1f} MiB\n", static_cast<double>(max_rss_bytes()) / 1048576.0);
  }
  return 0;
}

}  // namespace pageio::kv::tool
