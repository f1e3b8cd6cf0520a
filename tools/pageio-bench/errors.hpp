// The two ways a pageio-bench command fails, and the exit codes they map to.
#pragma once

#include <stdexcept>

namespace pageio::bench {

// The command line asks for something impossible (bad size, unknown backend,
// size smaller than the block size...). main() prints it and exits with 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Every other exception is a runtime failure: main() prints it and exits with 1.
inline constexpr int exit_usage = 2;
inline constexpr int exit_runtime = 1;

}  // namespace pageio::bench
