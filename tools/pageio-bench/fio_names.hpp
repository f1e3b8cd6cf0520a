// fio's spelling of what pageio-bench takes, so that a fio user's habits
// work: its --ioengine names for pageio's backends, and the options of `io`,
// `fio`, `cache` and `compare` that have a fio twin (--iodepth = --qd,
// --runtime = --seconds, --ramp_time = --warmup, --filename = --file,
// --ioengine = --backend; durations take fio's units through
// tools::as_seconds). The other direction, backend to engine, is
// fio_engine_for() (fio_runner.hpp).
#pragma once

#include "cli_fwd.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace pageio::bench {

// libaio -> aio, io_uring -> uring, psync, sync, pvsync -> sync; a name of
// the engine's registry passes unchanged. nullopt for anything else.
std::optional<std::string> backend_for_fio_engine(std::string_view name);

// A transform for --ioengine (and the `fio` command's --backend): rewrites a
// fio engine name to the backend's, refuses an unknown one with bad_value.
// With `with_default`, "default" passes too.
CLI::Option* as_fio_engine(CLI::Option* opt, bool with_default);

// The alias options, in the group "fio's names", each excluding its twin.
struct fio_alias_targets {
  unsigned* qd = nullptr;            // --iodepth
  double* seconds = nullptr;         // --runtime
  double* warmup_seconds = nullptr;  // --ramp_time
  std::string* file = nullptr;       // --filename
  std::string* backend = nullptr;    // --ioengine
};
void add_fio_aliases(CLI::App& cmd, const fio_alias_targets& t);

}  // namespace pageio::bench
