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

#include <CLI/CLI.hpp>

#include <optional>
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

// What the validators (validators.hpp) throw while CLI11 parses: a
// CLI::ParseError whose message is already whole, so that it passes through
// CLI11 (which would prefix the option's name to a ValidationError) as is.
class bad_value : public CLI::ParseError {
 public:
  explicit bad_value(std::string message)
      : CLI::ParseError("bad_value", std::move(message), CLI::ExitCodes::ValidationError) {}
};

// What every tool's command line has in common, set before its commands are
// added (they inherit it): --version printing "<tool> <version>" and
// --help-all printing every command's options (help2man reads both to make
// the man page), and help without CLI11's "Excludes:" lists (an alias says
// in words what it stands for).
void set_common_flags(CLI::App& app, std::string_view version);

// "<tool>: <what>" and the hint on stderr; returns exit_usage.
int report_usage_error(std::string_view tool, std::string_view what);
// "<tool>: <what>" on stderr.
void report_failure(std::string_view tool, std::string_view what);

// Parses the command line into `app` (whose name is the tool's). Returns
// nullopt when the tool should go on, or the status to exit with now: 0
// after printing --help or --version on stdout, exit_usage after reporting a
// bad command line with report_usage_error().
std::optional<int> parse_command_line(CLI::App& app, int argc, const char* const* argv);

}  // namespace pageio::tools
