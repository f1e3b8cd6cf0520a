// fio as the reference: the same workload as `pageio-bench io`, run by fio,
// its JSON report read back into a run_result.
#pragma once

#include "result.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pageio::bench {

struct fio_params : workload_shape {
  std::string engine = "io_uring";  // fio --ioengine: psync, libaio, io_uring
  // libaio/io_uring: --iodepth_batch_submit and --iodepth_batch_complete_max.
  // 0 means the queue depth (submit what completed as one batch, as pageio's
  // reap() does); 1 leaves fio's default, a submit call per I/O.
  unsigned batch = 0;
  // io_uring: --fixedbufs --registerfiles (registered buffers and file),
  // the ceiling of that interface.
  bool registered = false;
};

// The fio engine that does what a pageio backend does: sync -> psync,
// aio -> libaio, uring -> io_uring; fio's own names pass through.
// Throws usage_error for anything else.
std::string fio_engine_for(std::string_view backend_or_engine);

// "fio-3.33", or nothing when fio is not on $PATH.
std::optional<std::string> fio_version();

// The fio command line for `p` (argv[0] = "fio").
std::vector<std::string> fio_command(const fio_params& p);

// Runs fio and parses its report. Throws std::runtime_error with fio's own
// message when it fails.
run_result run_fio(const fio_params& p);

// Reads fio's --output-format=json report (text before the first '{', such
// as warnings, is skipped). Throws std::runtime_error when it is not one.
run_result parse_fio_json(std::string_view text, const fio_params& p);

}  // namespace pageio::bench
