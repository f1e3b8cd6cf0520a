// The CPU cost of driving a backend: submit + reap per request.
#pragma once

#include <benchmark/benchmark.h>

#include <filesystem>
#include <string>

namespace pageio::micro {

// Zero-length reads: they complete in the shared bookkeeping without entering
// the kernel, so this is the pure per-request overhead of submit() + reap()
// (queueing, dispatch, the backend's empty kernel cycle). One iteration
// submits `batch` requests as one batch and reaps them all.
void bm_bookkeeping(benchmark::State& state, const std::string& backend, unsigned batch);

// 4 KiB O_DIRECT reads of random blocks of a small file: one iteration
// submits `qd` requests as one batch and reaps them all. CPU time per request
// (items_per_second is requests per CPU second) includes the system calls;
// the wait for the device does not count. `fixed`: register the file and
// buffers (uring only).
void bm_read_4k(benchmark::State& state, const std::string& backend, unsigned qd, bool fixed,
                const std::filesystem::path& file, std::uint64_t file_bytes);

// Steady state as pageio-bench runs it: `qd` 4 KiB random reads always in
// flight, each completion callback resubmitting its request; the backend
// sends those in groups of `callback_batch` (backend_options). One iteration
// is one reap(1); items are completions.
void bm_steady_4k(benchmark::State& state, const std::string& backend, unsigned qd, unsigned callback_batch,
                  const std::filesystem::path& file, std::uint64_t file_bytes);

}  // namespace pageio::micro
