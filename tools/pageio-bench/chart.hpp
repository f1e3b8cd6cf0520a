// An SVG bar chart of a comparison, drawn by gnuplot.
#pragma once

#include "compare.hpp"

#include <filesystem>

namespace pageio::bench {

// Writes `svg` (IOPS and CPU per I/O, one group of bars per case) and keeps
// the gnuplot script next to it as <svg>.gp so the chart can be redrawn.
// Throws std::runtime_error when gnuplot fails.
void write_chart(const compare_results& r, const std::filesystem::path& svg);

}  // namespace pageio::bench
