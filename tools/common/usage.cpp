#include "usage.hpp"

#include <fmt/format.h>

#include <cstdio>

namespace pageio::tools {

int report_usage_error(std::string_view tool, std::string_view what) {
  fmt::print(stderr, "{}: {}\n{}\n", tool, what, help_hint);
  return exit_usage;
}

void report_failure(std::string_view tool, std::string_view what) { fmt::print(stderr, "{}: {}\n", tool, what); }

}  // namespace pageio::tools
