// The tools' command lines, parsed by CLI11 in the usage style of
// usage.hpp: what every tool's command line has in common, the parse that
// reports a bad one, and the exception the validators throw. (Kept apart
// from usage.hpp so that only the files that build a command line pay for
// CLI11's headers.)
#pragma once

#include "usage.hpp"

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace pageio::tools {

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

// Parses the command line into `app` (whose name is the tool's). Returns
// nullopt when the tool should go on, or the status to exit with now: 0
// after printing --help or --version on stdout, exit_usage after reporting a
// bad command line with report_usage_error().
std::optional<int> parse_command_line(CLI::App& app, int argc, const char* const* argv);

}  // namespace pageio::tools
