#include "result.hpp"
#include "numbers.hpp"

#include <cmath>

namespace pageio::bench {

const char* to_string(rw_mode m) noexcept {
  switch (m) {
    case rw_mode::randread: return "randread";
    case rw_mode::randwrite: return "randwrite";
    case rw_mode::read: return "read";
    case rw_mode::write: return "write";
  }
  return "?";
}

bool is_write(rw_mode m) noexcept { return m == rw_mode::randwrite || m == rw_mode::write; }
bool is_random(rw_mode m) noexcept { return m == rw_mode::randread || m == rw_mode::randwrite; }

std::optional<rw_mode> parse_rw(std::string_view s) noexcept {
  for (rw_mode m : {rw_mode::randread, rw_mode::randwrite, rw_mode::read, rw_mode::write}) {
    if (s == to_string(m)) return m;
  }
  return std::nullopt;
}

nlohmann::json to_json(const run_result& r) {
  const auto num = number_or_null;
  nlohmann::json j = {
      {"tool", r.tool},
      {"backend", r.engine},
      {"rw", to_string(r.rw)},
      {"bs", r.bs},
      {"qd", r.qd},
      {"numjobs", r.numjobs},
      {"seconds", r.seconds},
      {"ios", r.ios},
      {"iops", num(r.iops)},
      {"mib_s", num(r.mib_s)},
      {"lat_p50_us", num(r.lat_p50_us)},
      {"lat_p99_us", num(r.lat_p99_us)},
      {"lat_p999_us", num(r.lat_p999_us)},
      {"lat_mean_us", num(r.lat_mean_us)},
      {"lat_max_us", num(r.lat_max_us)},
      {"cpu_us_per_io", num(r.cpu_us_per_io)},
      {"pinned_cpu", r.cpu >= 0 ? nlohmann::json(r.cpu) : nlohmann::json()},
  };
  if (!r.api.empty()) j["api"] = r.api;
  if (r.tool == "fio") {
    j["clat_p50_us"] = num(r.clat_p50_us);
    j["clat_p99_us"] = num(r.clat_p99_us);
    j["command"] = r.command;
  }
  return j;
}

}  // namespace pageio::bench
