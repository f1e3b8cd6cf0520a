// Differential test: the same seeded random workload on every backend, each on
// its own copy of the files, in lockstep with the sync backend (the reference).
// Every request's result, every byte read and the final files must be
// identical to sync's; sync itself is checked against an in-memory model.
//
// Requests in flight together have no defined order, so a batch never holds
// two requests on overlapping ranges of one file where either writes, nor a
// read past the batch-start end of file together with a write that extends
// that file. Ranges overlap freely across batches.
//
//   PAGEIO_SEED=<n>      replay a run (the seed is printed at the start)
//   PAGEIO_DIFF_OPS=<n>  operations per backend (default 20000)
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <pageio/engine/fault_backend.hpp>

#include "backend_fixture.hpp"

namespace pageio::test {
namespace {

constexpr unsigned file_count = 3;
constexpr std::uint64_t initial_sizes[file_count] = {256 << 10, 0, 640 << 10};
constexpr std::uint64_t max_write_offset = 1 << 20;
constexpr std::size_t max_batch = 24;
// Drawn from the seed; mostly below max_batch, so batches also exercise backpressure.
constexpr unsigned queue_depths[] = {1, 4, 8, 8, 16, 64};

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 0);
}

struct op_spec {
  op_code op = op_code::read;
  unsigned file = 0;
  std::uint64_t offset = 0;
  std::vector<std::uint32_t> segs;  // transfer segments (one for read/write)
  io_flags flags = io_flags::none;
  std::uint32_t tag = 0;  // pattern of the bytes a write writes

  bool is_read() const { return op == op_code::read || op == op_code::readv; }
  bool is_write() const { return op == op_code::write || op == op_code::writev; }
  bool is_flush() const { return op == op_code::fdatasync || op == op_code::fsync; }
  std::uint64_t total() const {
    std::uint64_t n = 0;
    for (auto s : segs) n += s;
    return n;
  }
  std::uint64_t end() const { return offset + total(); }
};

std::ostream& operator<<(std::ostream& os, const op_spec& o) {
  os << to_string(o.op) << " file " << o.file;
  if (!o.is_flush()) {
    os << " [" << o.offset << ", " << o.end() << ") in " << o.segs.size() << " segment(s)";
  }
  if (has(o.flags, io_flags::dsync)) os << " dsync";
  return os;
}

struct batch_spec {
  std::vector<op_spec> ops;
  unsigned submit_mode = 0;  // how the batch is handed over and reaped: varies the paths taken
};

// The expected state of the files: sizes and bytes.
struct file_model {
  std::array<std::vector<std::uint8_t>, file_count> data;

  std::int64_t expected_read(const op_spec& o, std::vector<std::uint8_t>* bytes) const {
    const auto& d = data[o.file];
    if (o.offset >= d.size()) {
      bytes->clear();
      return 0;
    }
    const std::uint64_t n = std::min<std::uint64_t>(o.total(), d.size() - o.offset);
    bytes->assign(d.begin() + static_cast<std::ptrdiff_t>(o.offset),
                  d.begin() + static_cast<std::ptrdiff_t>(o.offset + n));
    return static_cast<std::int64_t>(n);
  }

  void apply_write(const op_spec& o) {
    auto& d = data[o.file];
    if (d.size() < o.end()) d.resize(o.end(), 0);  // a hole reads as zeros
    fill_pattern(d.data() + o.offset, o.total(), o.offset, o.tag);
  }
};

// Draws batches that obey the ordering rules above.
class workload {
 public:
  workload(std::uint64_t seed, std::uint32_t unit) : rng_(seed), unit_(unit) {}

  batch_spec next(const file_model& m) {
    batch_spec b;
    b.submit_mode = static_cast<unsigned>(pick(4));
    const std::size_t want = 1 + pick(max_batch);
    for (std::size_t i = 0; i < want; ++i) {
      for (int attempt = 0; attempt < 8; ++attempt) {
        op_spec o = draw(m);
        if (fits(b, o, m)) {
          b.ops.push_back(std::move(o));
          break;
        }
      }
    }
    return b;
  }

 private:
  std::uint64_t pick(std::uint64_t n) { return rng_() % n; }

  std::uint32_t draw_units() {
    const auto r = pick(100);
    if (r < 70) return static_cast<std::uint32_t>(1 + pick(16));    // up to 8 KiB
    if (r < 93) return static_cast<std::uint32_t>(17 + pick(112));  // up to 64 KiB
    return static_cast<std::uint32_t>(129 + pick(384));             // up to 256 KiB
  }

  op_spec draw(const file_model& m) {
    op_spec o;
    o.file = static_cast<unsigned>(pick(file_count));
    o.tag = next_tag_++;
    const auto r = pick(100);
    if (r < 34) o.op = op_code::read;
    else if (r < 62) o.op = op_code::write;
    else if (r < 78) o.op = op_code::readv;
    else if (r < 95) o.op = op_code::writev;
    else if (r < 99) o.op = op_code::fdatasync;
    else o.op = op_code::fsync;
    if (o.is_flush()) return o;

    const std::uint64_t size = m.data[o.file].size();
    const std::uint32_t units = draw_units();
    std::uint64_t span_units;
    if (o.is_read()) {
      span_units = (size + (128 << 10)) / unit_;  // some reads cross or lie past end of file
    } else {
      span_units = std::min<std::uint64_t>(size + (64 << 10), max_write_offset) / unit_;  // some extend, some leave holes
      if (pick(10) == 0) o.flags = io_flags::dsync;
    }
    o.offset = pick(span_units) * unit_;
    std::uint32_t nseg = 1;
    if (o.op == op_code::readv || o.op == op_code::writev) {
      nseg = static_cast<std::uint32_t>(std::min<std::uint64_t>(1 + pick(8), units));
    }
    // Split `units` into `nseg` non-empty segments.
    std::vector<std::uint32_t> cuts;
    for (std::uint32_t i = 1; i < nseg; ++i) cuts.push_back(static_cast<std::uint32_t>(1 + pick(units - 1)));
    cuts.push_back(0);
    cuts.push_back(units);
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    for (std::size_t i = 1; i < cuts.size(); ++i) o.segs.push_back((cuts[i] - cuts[i - 1]) * unit_);
    return o;
  }

  static bool fits(const batch_spec& b, const op_spec& c, const file_model& m) {
    if (c.is_flush()) return true;
    const std::uint64_t size0 = m.data[c.file].size();
    for (const op_spec& e : b.ops) {
      if (e.file != c.file || e.is_flush()) continue;
      const bool overlap = c.offset < e.end() && e.offset < c.end();
      if (overlap && (c.is_write() || e.is_write())) return false;
      // A read past end of file and a write that moves end of file.
      if (c.is_write() && c.end() > size0 && e.is_read() && e.end() > size0) return false;
      if (c.is_read() && c.end() > size0 && e.is_write() && e.end() > size0) return false;
    }
    return true;
  }

  std::mt19937_64 rng_;
  std::uint32_t unit_;
  std::uint32_t next_tag_ = 100;
};

// Memory for one op: its segments with a gap between them, so that a backend
// confusing segment boundaries shows.
struct op_memory {
  aligned_buffer buf;
  std::vector<iovec> iov;

  op_memory(const op_spec& o, std::uint32_t gap) {
    std::size_t size = 0;
    for (auto s : o.segs) size += s + gap;
    buf = aligned_buffer(std::max<std::size_t>(size, gap), 4096);
    std::size_t at = 0;
    for (auto s : o.segs) {
      iov.push_back({buf.data() + at, s});
      at += s + gap;
    }
  }
  // The first `n` transferred bytes, in file order.
  std::vector<std::uint8_t> gather(std::uint64_t n) const {
    std::vector<std::uint8_t> out;
    for (const iovec& v : iov) {
      if (n == 0) break;
      const std::size_t take = std::min<std::uint64_t>(n, v.iov_len);
      const auto* p = static_cast<const std::uint8_t*>(v.iov_base);
      out.insert(out.end(), p, p + take);
      n -= take;
    }
    return out;
  }
};

struct backend_under_test {
  std::string name;
  std::unique_ptr<io_backend> be;
  std::filesystem::path dir;
  std::array<file, file_count> files;
  std::chrono::steady_clock::duration busy{};
};

struct batch_outcome {
  std::vector<std::int64_t> results;
  std::vector<std::vector<std::uint8_t>> reads;  // bytes read, up to the result
  std::vector<int> completions;
};

batch_outcome execute(backend_under_test& b, const batch_spec& spec,
                      const std::vector<op_memory>& write_mem, std::uint32_t gap) {
  const std::size_t n = spec.ops.size();
  batch_outcome out;
  out.completions.assign(n, 0);
  std::vector<op_memory> read_mem;
  read_mem.reserve(n);
  std::vector<io_request> reqs(n);
  std::vector<completion_counter> counters(n);
  for (std::size_t i = 0; i < n; ++i) {
    const op_spec& o = spec.ops[i];
    read_mem.emplace_back(o.is_read() ? o : op_spec{}, gap);
    io_request& r = reqs[i];
    const int fd = b.files[o.file].fd();
    const op_memory& mem = o.is_read() ? read_mem.back() : write_mem[i];
    switch (o.op) {
      case op_code::read: r.prep_read(fd, mem.iov[0].iov_base, mem.iov[0].iov_len, o.offset); break;
      case op_code::write: r.prep_write(fd, mem.iov[0].iov_base, mem.iov[0].iov_len, o.offset); break;
      case op_code::readv: r.prep_readv(fd, mem.iov.data(), static_cast<std::uint32_t>(mem.iov.size()), o.offset); break;
      case op_code::writev: r.prep_writev(fd, mem.iov.data(), static_cast<std::uint32_t>(mem.iov.size()), o.offset); break;
      case op_code::fdatasync: r.prep_fdatasync(fd); break;
      case op_code::fsync: r.prep_fsync(fd); break;
    }
    r.flags = o.flags;
    r.user_data = &counters[i];
    r.on_complete = count_completion;
  }

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<io_request*> ptrs;
  for (auto& r : reqs) ptrs.push_back(&r);
  switch (spec.submit_mode) {
    case 0:  // one batch
      b.be->submit(ptrs);
      break;
    case 1:  // one by one
      for (auto* r : ptrs) b.be->submit(*r);
      break;
    default: {  // half, collect what is ready, then the rest as a list
      const std::size_t half = n / 2;
      b.be->submit(std::span<io_request* const>(ptrs.data(), half));
      b.be->poll();
      request_list rest;
      for (std::size_t i = half; i < n; ++i) rest.push_back(reqs[i]);
      b.be->submit(rest);
      break;
    }
  }
  if (spec.submit_mode % 2 == 0) {
    b.be->drain();
  } else {
    for (int guard = 0; b.be->outstanding() > 0 && guard < 100000; ++guard) b.be->reap(1, std::chrono::seconds(10));
  }
  b.busy += std::chrono::steady_clock::now() - t0;

  for (std::size_t i = 0; i < n; ++i) {
    out.results.push_back(reqs[i].result);
    out.completions[i] = counters[i].count;
    if (spec.ops[i].is_read() && reqs[i].result > 0) {
      out.reads.push_back(read_mem[i].gather(static_cast<std::uint64_t>(reqs[i].result)));
    } else {
      out.reads.emplace_back();
    }
  }
  return out;
}

std::vector<std::uint8_t> slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Differential, EveryBackendMatchesSync) {
  const std::uint64_t seed = env_u64("PAGEIO_SEED", static_cast<std::uint64_t>(
      std::chrono::system_clock::now().time_since_epoch().count()));
  const std::uint64_t total_ops = env_u64("PAGEIO_DIFF_OPS", 20000);
  std::cout << "[differential] seed " << seed << ", " << total_ops
            << " operations per backend; rerun with PAGEIO_SEED=" << seed
            << " ctest -R Differential --output-on-failure" << std::endl;
  RecordProperty("seed", std::to_string(seed));
  SCOPED_TRACE("PAGEIO_SEED=" + std::to_string(seed));

  std::string why;
  auto dir = test_dir::create(&why);
  if (!dir) GTEST_SKIP() << why;

  backend_options opts;
  opts.queue_depth = queue_depths[seed % std::size(queue_depths)];
  std::cout << "[differential] queue depth " << opts.queue_depth << std::endl;
  std::vector<backend_under_test> backends;
  // "aio-ring": the aio backend reaping every ready completion from the
  // shared ring (aio_paced_reap off), the path poll() and event loops take.
  // "uring-single": uring with backend_options::uring_single_thread
  // (SINGLE_ISSUER | DEFER_TASKRUN rings).
  // "fault-aio": aio under the fault-injecting wrapper with no faults but
  // added latency and completions out of order, which the results must not
  // show.
  struct variant {
    const char* label;
    const char* backend;
    bool paced;
    bool single_thread;
    bool wrapped = false;
  };
  for (const variant& v : {variant{"sync", "sync", true, false}, variant{"aio", "aio", true, false},
                           variant{"aio-ring", "aio", false, false}, variant{"uring", "uring", true, false},
                           variant{"uring-single", "uring", true, true},
                           variant{"fault-aio", "aio", true, false, true}}) {
    backend_under_test b;
    b.name = v.label;
    const char* name = v.label;
    try {
      backend_options vo = opts;
      vo.aio_paced_reap = v.paced;
      vo.uring_single_thread = v.single_thread;
      b.be = make_backend(v.backend, vo);
      if (v.wrapped) {
        fault_options fo;
        fo.seed = seed;
        fo.reorder = true;
        fo.max_added_latency = std::chrono::microseconds(40);
        fo.submit_eagain = 0.02;
        b.be = std::make_unique<fault_backend>(std::move(b.be), fo);
      }
    } catch (const backend_unavailable& e) {
      ASSERT_NE(b.name, "sync") << e.what();
      std::cout << "[differential] " << name << " skipped: " << e.what() << std::endl;
      continue;
    }
    backends.push_back(std::move(b));
  }
  if (backends.size() < 2) GTEST_SKIP() << "neither aio nor uring starts here: nothing to compare";

  // Identical initial files for every backend.
  file_model model;
  for (unsigned f = 0; f < file_count; ++f) {
    model.data[f].resize(initial_sizes[f]);
    fill_pattern(model.data[f].data(), model.data[f].size(), 0, f + 1);
  }
  for (auto& b : backends) {
    b.dir = dir->path() / b.name;
    std::filesystem::create_directory(b.dir);
    for (unsigned f = 0; f < file_count; ++f) {
      const auto p = b.dir / ("file" + std::to_string(f));
      {
        std::ofstream out(p, std::ios::binary);
        out.write(reinterpret_cast<const char*>(model.data[f].data()),
                  static_cast<std::streamsize>(model.data[f].size()));
        ASSERT_TRUE(out.good()) << p;
      }
      b.files[f] = file::open(p);
    }
  }
  const dio_alignment align = backends[0].files[0].alignment();
  const std::uint32_t unit = std::max<std::uint32_t>(512, align.offset);
  const std::uint32_t gap = std::max<std::uint32_t>(unit, align.memory);

  workload gen(seed, unit);
  std::uint64_t done_ops = 0;
  std::uint64_t batches = 0;
  std::uint64_t short_reads = 0;
  std::vector<std::uint8_t> expected;
  while (done_ops < total_ops) {
    const batch_spec spec = gen.next(model);
    if (spec.ops.empty()) continue;
    const std::size_t n = spec.ops.size();
    std::vector<op_memory> write_mem;
    write_mem.reserve(n);
    for (const op_spec& o : spec.ops) {
      write_mem.emplace_back(o.is_write() ? o : op_spec{}, gap);
      if (o.is_write()) {
        std::uint64_t pos = o.offset;
        for (const iovec& v : write_mem.back().iov) {
          fill_pattern(v.iov_base, v.iov_len, pos, o.tag);
          pos += v.iov_len;
        }
      }
    }

    std::vector<batch_outcome> outcomes;
    for (auto& b : backends) outcomes.push_back(execute(b, spec, write_mem, gap));

    for (std::size_t i = 0; i < n; ++i) {
      const op_spec& o = spec.ops[i];
      std::ostringstream where;
      where << "batch " << batches << " (submit mode " << spec.submit_mode << "), op " << i << ": " << o;
      // The reference against the model.
      std::int64_t want = o.is_flush() ? 0 : static_cast<std::int64_t>(o.total());
      if (o.is_read()) {
        want = model.expected_read(o, &expected);
        if (static_cast<std::uint64_t>(want) < o.total()) ++short_reads;
      }
      ASSERT_EQ(outcomes[0].results[i], want) << where.str() << ": sync disagrees with the model";
      if (o.is_read()) {
        ASSERT_TRUE(outcomes[0].reads[i] == expected) << where.str() << ": sync read other bytes than the model has";
      }
      for (std::size_t k = 0; k < backends.size(); ++k) {
        ASSERT_EQ(outcomes[k].completions[i], 1) << where.str() << " on " << backends[k].name;
        if (k == 0) continue;
        ASSERT_EQ(outcomes[k].results[i], outcomes[0].results[i])
            << where.str() << ": " << backends[k].name << " differs from sync";
        ASSERT_TRUE(outcomes[k].reads[i] == outcomes[0].reads[i])
            << where.str() << ": " << backends[k].name << " read other bytes than sync";
      }
    }
    for (const op_spec& o : spec.ops) {
      if (o.is_write()) model.apply_write(o);
    }
    done_ops += n;
    ++batches;
  }

  for (auto& b : backends) {
    EXPECT_EQ(b.be->outstanding(), 0u) << b.name;
    for (unsigned f = 0; f < file_count; ++f) {
      EXPECT_EQ(b.files[f].size(), model.data[f].size()) << b.name << " file " << f;
      b.be->forget_fd(b.files[f].fd());
      b.files[f].close();
      EXPECT_TRUE(slurp(b.dir / ("file" + std::to_string(f))) == model.data[f])
          << b.name << ": final content of file " << f << " differs";
    }
  }
  std::cout << "[differential] " << done_ops << " operations in " << batches << " batches ("
            << short_reads << " short reads at end of file)";
  for (auto& b : backends) {
    std::cout << "; " << b.name << " "
              << std::chrono::duration_cast<std::chrono::milliseconds>(b.busy).count() << " ms";
  }
  std::cout << std::endl;
}

}  // namespace
}  // namespace pageio::test
