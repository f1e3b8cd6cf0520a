// The results of `pageio-bench compare` as a table, as JSON and as ratios.
#pragma once

#include "compare.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace pageio::bench {

// The fio engine a pageio backend is held against ("" when none).
std::string fio_counterpart(const std::string& backend);

// a / b for a metric of two cells of the same case; NaN when either is missing.
double iops_ratio(const cell* a, const cell* b);
double cpu_ratio(const cell* a, const cell* b);

// One line per (case, engine) with IOPS, MiB/s, p50, p99, CPU µs/IO and the
// ratios "vs fio" (pageio backend / its fio engine) and "vs sync" (backend /
// pageio sync), then a summary of the ratios.
void print_compare_table(std::FILE* out, const compare_results& r);

// Every pageio / reference ratio of the run, each the median of its
// rounds' paired ratios with their range: what `compare --quick` is read by.
void print_ratio_spread(std::FILE* out, const compare_results& r);

nlohmann::json compare_json(const compare_results& r);

}  // namespace pageio::bench
