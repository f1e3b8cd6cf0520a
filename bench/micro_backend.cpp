#include "micro_backend.hpp"

#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/backend.hpp>
#include <pageio/engine/file.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace pageio::micro {

namespace {

constexpr std::size_t block = 4096;

// Counts completions and remembers the first failure; allocated once per benchmark.
struct tally {
  std::uint64_t completed = 0;
  std::int64_t expected = 0;
  std::int64_t first_bad = 1;  // 1: none yet (a valid result is 0..expected)
};

void on_complete(io_request& r) {
  auto* t = static_cast<tally*>(r.user_data);
  ++t->completed;
  if (r.result != t->expected && t->first_bad == 1) t->first_bad = r.result;
}

std::unique_ptr<io_backend> start(benchmark::State& state, const std::string& backend, unsigned qd) {
  try {
    return make_backend(backend, {.queue_depth = qd});
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return nullptr;
  }
}

void report(benchmark::State& state, const tally& t, unsigned per_iteration) {
  if (t.first_bad != 1) {
    state.SkipWithError(("a request completed with " + std::to_string(t.first_bad)).c_str());
    return;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * per_iteration);
}

}  // namespace

void bm_bookkeeping(benchmark::State& state, const std::string& backend, unsigned batch) {
  auto be = start(state, backend, batch);
  if (!be) return;
  aligned_buffer buf(block);
  tally t;
  t.expected = 0;
  std::vector<io_request> reqs(batch);
  std::vector<io_request*> ptrs;
  for (auto& r : reqs) {
    r.prep_read(-1, buf.data(), 0, 0);  // zero length: completes without the kernel
    r.on_complete = &on_complete;
    r.user_data = &t;
    ptrs.push_back(&r);
  }
  for (auto _ : state) {
    be->submit(std::span<io_request* const>(ptrs));
    be->reap(batch);
  }
  benchmark::DoNotOptimize(t.completed);
  report(state, t, batch);
}

void bm_read_4k(benchmark::State& state, const std::string& backend, unsigned qd, bool fixed,
                const std::filesystem::path& path, std::uint64_t file_bytes) {
  auto be = start(state, backend, qd);
  if (!be) return;
  const file f = file::open(path, {.direct = true, .writable = false});
  aligned_buffer arena(qd * block, 4096);
  tally t;
  t.expected = block;
  std::vector<io_request> reqs(qd);
  std::vector<io_request*> ptrs;
  if (fixed) {
    if (!be->caps().registered_buffers) {
      state.SkipWithError("this backend cannot register buffers");
      return;
    }
    const int fd = f.fd();
    be->register_files({&fd, 1});
    const iovec whole{arena.data(), arena.size()};
    be->register_buffers({&whole, 1});
  }
  for (unsigned i = 0; i < qd; ++i) {
    io_request& r = reqs[i];
    r.prep_read(f.fd(), arena.data() + i * block, block, 0);
    if (fixed) r.flags = io_flags::fixed_buffer;  // buf_index 0: the whole arena
    r.on_complete = &on_complete;
    r.user_data = &t;
    ptrs.push_back(&r);
  }
  const std::uint64_t blocks = file_bytes / block;
  std::uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (auto _ : state) {
    for (io_request* r : ptrs) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;  // LCG: cheap, good enough to spread offsets
      r->offset = ((x >> 33) % blocks) * block;
    }
    be->submit(std::span<io_request* const>(ptrs));
    be->reap(qd);
  }
  be->drain();
  if (fixed) {
    be->unregister_buffers();
    be->unregister_files();
  }
  be->forget_fd(f.fd());
  report(state, t, qd);
}

namespace {

struct steady_ctx {
  io_backend* backend = nullptr;
  tally t;
  std::uint64_t blocks = 0;
  std::uint64_t x = 0x9e3779b97f4a7c15ULL;
  bool stopping = false;
};

void resubmit(io_request& r) {
  auto* c = static_cast<steady_ctx*>(r.user_data);
  ++c->t.completed;
  if (r.result != c->t.expected && c->t.first_bad == 1) c->t.first_bad = r.result;
  if (c->stopping) return;
  c->x = c->x * 6364136223846793005ULL + 1442695040888963407ULL;
  r.offset = ((c->x >> 33) % c->blocks) * block;
  c->backend->submit(r);
}

}  // namespace

void bm_steady_4k(benchmark::State& state, const std::string& backend, unsigned qd, unsigned callback_batch,
                  const std::filesystem::path& path, std::uint64_t file_bytes) {
  std::unique_ptr<io_backend> be;
  try {
    be = make_backend(backend, {.queue_depth = qd, .callback_batch = callback_batch});
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  const file f = file::open(path, {.direct = true, .writable = false});
  aligned_buffer arena(qd * block, 4096);
  steady_ctx ctx;
  ctx.backend = be.get();
  ctx.t.expected = block;
  ctx.blocks = file_bytes / block;
  std::vector<io_request> reqs(qd);
  std::vector<io_request*> ptrs;
  for (unsigned i = 0; i < qd; ++i) {
    io_request& r = reqs[i];
    r.prep_read(f.fd(), arena.data() + i * block, block, (i % ctx.blocks) * block);
    r.on_complete = &resubmit;
    r.user_data = &ctx;
    ptrs.push_back(&r);
  }
  be->submit(std::span<io_request* const>(ptrs));
  std::uint64_t completed = 0;
  for (auto _ : state) completed += be->reap(1);
  ctx.stopping = true;
  be->drain();
  be->forget_fd(f.fd());
  if (ctx.t.first_bad != 1) {
    state.SkipWithError(("a request completed with " + std::to_string(ctx.t.first_bad)).c_str());
    return;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(completed));
  state.counters["per_reap"] = static_cast<double>(completed) / static_cast<double>(state.iterations());
}

}  // namespace pageio::micro
