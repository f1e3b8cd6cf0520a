// Running the reference tools (fio, gnuplot) and capturing what they print.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace pageio::bench {

// The full path of `program` if it is an executable on $PATH.
std::optional<std::string> find_on_path(const std::string& program);

struct process_output {
  int exit_code = 0;  // the exit status, or 128 + signal number
  std::string out;    // everything written to stdout
  std::string err;    // everything written to stderr
};

// Runs argv[0] (looked up on $PATH) with stdin from /dev/null and waits.
// Throws std::system_error when it cannot be started.
process_output run_process(const std::vector<std::string>& argv);

// The command line as one could paste it into a shell.
std::string shell_quote(const std::vector<std::string>& argv);

}  // namespace pageio::bench
