// pageio_micro: the CPU cost per request of each backend that starts here.
//
//   bookkeeping/<backend>/batch:N   zero-length reads: submit + reap without the kernel
//   read4k/<backend>/qd:N           4 KiB O_DIRECT random reads of a 4 MiB file, N per batch
//   read4k/uring_fixed/qd:N         the same with registered file and buffers
//   steady4k/<backend>/qd:32/callback_batch:N
//                                   32 reads always in flight, resubmitted from their
//                                   callbacks in groups of N (backend_options::callback_batch)
//
// items_per_second is requests per second of this thread's CPU time (not wall
// time): its inverse is the CPU cost of one request, system calls included.
#include "micro_backend.hpp"
#include "scratch_file.hpp"

#include <pageio/engine/backend.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <string>

int main(int argc, char** argv) {
  using namespace pageio::micro;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;

  std::unique_ptr<scratch_file> data;
  try {
    data = std::make_unique<scratch_file>(4u << 20);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pageio_micro: %s\n", e.what());
    return 1;
  }
  const auto path = data->path();
  const auto bytes = data->size_bytes();

  for (const auto& st : pageio::probe_backends()) {
    if (!st.available) {
      std::fprintf(stderr, "pageio_micro: skipping backend %s: %s\n", st.name.c_str(), st.reason.c_str());
      continue;
    }
    const std::string b = st.name;
    for (unsigned batch : {1u, 32u}) {
      benchmark::RegisterBenchmark(("bookkeeping/" + b + "/batch:" + std::to_string(batch)).c_str(),
                                   [b, batch](benchmark::State& s) { bm_bookkeeping(s, b, batch); });
    }
    for (unsigned qd : {1u, 32u}) {
      benchmark::RegisterBenchmark(("read4k/" + b + "/qd:" + std::to_string(qd)).c_str(),
                                   [=](benchmark::State& s) { bm_read_4k(s, b, qd, false, path, bytes); });
    }
    if (b != "sync") {
      for (unsigned cb : {1u, 2u, 4u, 32u}) {
        benchmark::RegisterBenchmark(("steady4k/" + b + "/qd:32/callback_batch:" + std::to_string(cb)).c_str(),
                                     [=](benchmark::State& s) { bm_steady_4k(s, b, 32, cb, path, bytes); });
      }
    }
    if (b == "uring") {
      for (unsigned qd : {1u, 32u}) {
        benchmark::RegisterBenchmark(("read4k/uring_fixed/qd:" + std::to_string(qd)).c_str(),
                                     [=](benchmark::State& s) { bm_read_4k(s, b, qd, true, path, bytes); });
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
