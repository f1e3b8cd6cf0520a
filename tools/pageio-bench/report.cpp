#include "report.hpp"

#include "size_parse.hpp"

#include <fmt/format.h>

#include <cmath>
#include <string>

namespace pageio::bench {

std::string group_thousands(double v) {
  if (!std::isfinite(v)) return "-";
  const bool negative = v < 0;
  std::string digits = fmt::format("{:.0f}", std::fabs(v));
  std::string out;
  const std::size_t n = digits.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return negative ? "-" + out : out;
}

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "-";
  return fmt::format("{:.{}f}", v, decimals);
}

void print_run(std::FILE* out, const run_result& r) {
  fmt::print(out, "{} {}{}: {} {} QD{}{}, {:.2f} s measured, {} I/Os{}\n", r.tool, r.engine,
             r.api.empty() || r.api == "raw" ? std::string() : fmt::format(" (api {})", r.api), to_string(r.rw),
             format_size(r.bs), r.qd, r.numjobs > 1 ? fmt::format(" x {} jobs", r.numjobs) : std::string(), r.seconds, group_thousands(static_cast<double>(r.ios)),
             r.cpu >= 0 ? fmt::format(", pinned to CPU {}", r.cpu) : std::string());
  fmt::print(out, "  IOPS          {:>12}\n", group_thousands(r.iops));
  fmt::print(out, "  MiB/s         {:>12}\n", fixed(r.mib_s, 1));
  fmt::print(out, "  latency (µs)  p50 {}  p99 {}  p99.9 {}  mean {}  max {}\n", fixed(r.lat_p50_us, 1),
             fixed(r.lat_p99_us, 1), fixed(r.lat_p999_us, 1), fixed(r.lat_mean_us, 1), fixed(r.lat_max_us, 0));
  if (std::isfinite(r.clat_p50_us)) {
    fmt::print(out, "  clat (µs)     p50 {}  p99 {}  (fio: completion only, without submission)\n",
               fixed(r.clat_p50_us, 1), fixed(r.clat_p99_us, 1));
  }
  fmt::print(out, "  CPU µs/IO     {:>12}\n", fixed(r.cpu_us_per_io, 2));
}

}  // namespace pageio::bench
