// CLI11's option and app by name, for headers that only pass them around:
// the .cpp files that build a command line include <CLI/CLI.hpp> (through
// command_line.hpp), the others do not pay for parsing it.
#pragma once

namespace CLI {
class App;
class Option;
}  // namespace CLI
