#include "fio_runner.hpp"

#include "errors.hpp"
#include "process.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace pageio::bench {

namespace {

std::string milliseconds(double seconds) {
  return fmt::format("{}ms", static_cast<long long>(std::llround(seconds * 1000)));
}

// fio --percentile_list=50:99:99.9 writes these keys.
double percentile_us(const nlohmann::json& stat, const char* key) {
  if (!stat.contains("percentile")) return not_measured;
  const auto& pct = stat["percentile"];
  if (!pct.contains(key)) return not_measured;
  return pct[key].get<double>() / 1e3;
}

// The end of what fio printed, without trailing blank lines.
std::string last_lines(std::string s, std::size_t max_chars = 800) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  if (s.size() <= max_chars) return s;
  return "..." + s.substr(s.size() - max_chars);
}

// fio splits --filename at ':' (a list of files); a literal one is "\:".
std::string fio_filename(const std::filesystem::path& file) {
  std::string out;
  for (char c : file.string()) {
    if (c == ':') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string fio_engine_for(std::string_view name) {
  if (name == "sync" || name == "psync") return "psync";
  if (name == "aio" || name == "libaio") return "libaio";
  if (name == "uring" || name == "io_uring") return "io_uring";
  throw usage_error(fmt::format("no fio engine corresponds to '{}'; choose one of: sync (psync), aio (libaio), "
                                "uring (io_uring)",
                                name));
}

std::optional<std::string> fio_version() {
  if (!find_on_path("fio")) return std::nullopt;
  try {
    process_output out = run_process({"fio", "--version"});
    if (out.exit_code != 0) return std::nullopt;
    while (!out.out.empty() && (out.out.back() == '\n' || out.out.back() == '\r')) out.out.pop_back();
    return out.out;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::vector<std::string> fio_command(const fio_params& p) {
  std::vector<std::string> argv = {
      "fio",
      "--name=pageio-reference",
      "--filename=" + fio_filename(p.file),
      fmt::format("--size={}", p.size_bytes),
      "--direct=1",
      fmt::format("--rw={}", to_string(p.rw)),
      fmt::format("--bs={}", p.bs),
      "--ioengine=" + p.engine,
      fmt::format("--iodepth={}", p.qd),
      "--runtime=" + milliseconds(p.seconds),
      "--time_based",
      "--ramp_time=" + milliseconds(p.warmup_seconds),
      // Sampling with replacement, as pageio-bench does; fio's default map of
      // blocks already touched costs CPU and changes the access pattern.
      "--norandommap",
      "--lat_percentiles=1",
      "--percentile_list=50:99:99.9",
      "--output-format=json",
  };
  if (p.cpu >= 0) argv.push_back(fmt::format("--cpus_allowed={}", p.cpu));
  if (p.registered) {
    argv.push_back("--fixedbufs");
    argv.push_back("--registerfiles");
  }
  const unsigned batch = p.batch == 0 ? p.qd : std::min(p.batch, p.qd);
  if ((p.engine == "libaio" || p.engine == "io_uring") && batch > 1) {
    // What fio users write for batched submission: up to `batch` I/Os per
    // submit call, reap at least one and at most `batch` per wait.
    argv.push_back(fmt::format("--iodepth_batch_submit={}", batch));
    argv.push_back("--iodepth_batch_complete_min=1");
    argv.push_back(fmt::format("--iodepth_batch_complete_max={}", batch));
  }
  return argv;
}

run_result parse_fio_json(std::string_view text, const fio_params& p) {
  const auto brace = text.find('{');
  if (brace == std::string_view::npos) throw std::runtime_error("fio printed no JSON report");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text.substr(brace));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("fio's JSON report does not parse: {}", e.what()));
  }
  try {
    const auto& job = doc.at("jobs").at(0);
    if (const int err = job.value("error", 0); err != 0) {
      throw std::runtime_error(fmt::format("fio job failed with error {}", err));
    }
    const auto& dir = job.at(is_write(p.rw) ? "write" : "read");
    run_result r;
    r.tool = "fio";
    r.engine = p.engine;
    r.rw = p.rw;
    r.bs = p.bs;
    r.qd = p.qd;
    r.seconds = dir.at("runtime").get<double>() / 1e3;
    r.ios = dir.at("total_ios").get<std::uint64_t>();
    r.iops = dir.at("iops").get<double>();
    r.mib_s = r.iops * static_cast<double>(p.bs) / (1024.0 * 1024.0);
    const auto& lat = dir.at("lat_ns");
    r.lat_p50_us = percentile_us(lat, "50.000000");
    r.lat_p99_us = percentile_us(lat, "99.000000");
    r.lat_p999_us = percentile_us(lat, "99.900000");
    r.lat_mean_us = lat.at("mean").get<double>() / 1e3;
    r.lat_max_us = lat.at("max").get<double>() / 1e3;
    const auto& clat = dir.at("clat_ns");
    r.clat_p50_us = percentile_us(clat, "50.000000");
    r.clat_p99_us = percentile_us(clat, "99.000000");
    // usr_cpu and sys_cpu are percentages of the job's runtime (ramp excluded).
    const double cpu_s = (job.at("usr_cpu").get<double>() + job.at("sys_cpu").get<double>()) / 100.0 *
                         job.at("job_runtime").get<double>() / 1e3;
    if (r.ios > 0) r.cpu_us_per_io = cpu_s * 1e6 / static_cast<double>(r.ios);
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("fio's JSON report lacks a field pageio-bench reads: {}", e.what()));
  }
}

run_result run_fio(const fio_params& p) {
  if (!find_on_path("fio")) throw std::runtime_error("fio is not installed (not found on $PATH)");
  const auto argv = fio_command(p);
  const process_output out = run_process(argv);
  if (out.exit_code != 0) {
    throw std::runtime_error(fmt::format("fio exited with status {}: {}\ncommand: {}", out.exit_code,
                                         last_lines(out.err.empty() ? out.out : out.err), shell_quote(argv)));
  }
  run_result r = parse_fio_json(out.out, p);
  r.command = shell_quote(argv);
  r.cpu = p.cpu;
  return r;
}

}  // namespace pageio::bench
