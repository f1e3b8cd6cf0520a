// Printing one run for a person, and number formatting shared by the tables.
#pragma once

#include "result.hpp"

#include <cstdio>
#include <string>

namespace pageio::bench {

// 1234567.8 -> "1,234,568"; "-" when not measured.
std::string group_thousands(double v);
// Fixed decimals; "-" when not measured.
std::string fixed(double v, int decimals);

// A block of labelled lines: rate, latency percentiles, CPU per I/O.
void print_run(std::FILE* out, const run_result& r);

}  // namespace pageio::bench
