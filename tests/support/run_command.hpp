// Runs a shell command line as an operator would and captures what it
// prints on stdout (add 2>&1 to the command for stderr too).
#pragma once

#include <string>

namespace pageio::test {

struct command_output {
  int status = -1;  // the exit status; -1 when it did not exit normally (or did not start)
  std::string out;
};

command_output run_command(const std::string& cmd);

}  // namespace pageio::test
