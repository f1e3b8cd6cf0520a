// The two ways a pageio-bench command fails, and the exit codes they map to.
#pragma once

#include "usage.hpp"

namespace pageio::bench {

// The command line asks for something impossible (bad size, unknown backend,
// size smaller than the block size...). main() reports it in the tools'
// usage style (usage.hpp) and exits with 2.
using usage_error = tools::usage_error;

// Every other exception is a runtime failure: main() prints it and exits with 1.
inline constexpr int exit_usage = tools::exit_usage;
inline constexpr int exit_runtime = 1;

}  // namespace pageio::bench
