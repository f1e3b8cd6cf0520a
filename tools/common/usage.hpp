// How the three tools report a bad command line and a failure, in one style:
//
//   pageio-bench: --warmup -1: must be 0 or more seconds, up to a week (e.g. 2, 0.5, 500ms, 2m)
//   Run with --help for more information.
//
// A usage error is one line, "<tool>: <what is wrong>; <the fix>", then the
// same hint every time, on stderr, and exit status 2. It is reported before
// the tool touches the disk. A failure at run time is one line
// "<tool>: <what>" and no hint; each tool documents its exit status for it.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace pageio::tools {

inline constexpr int exit_usage = 2;
inline constexpr std::string_view help_hint = "Run with --help for more information.";

// The command line asks for something impossible (a value out of range, a
// missing directory, two options that exclude each other...). The message
// names the option and says what to give instead.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "<tool>: <what>" and the hint on stderr; returns exit_usage.
int report_usage_error(std::string_view tool, std::string_view what);
// "<tool>: <what>" on stderr.
void report_failure(std::string_view tool, std::string_view what);

}  // namespace pageio::tools
