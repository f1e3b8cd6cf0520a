#include "chart.hpp"

#include "process.hpp"
#include "size_parse.hpp"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <stdexcept>

namespace pageio::bench {

namespace {

struct series {
  std::string tool, engine, color;
};

// A pageio backend and its fio engine share a hue; fio's bar is lighter.
const series all_series[] = {
    {"pageio", "sync", "#4c72b0"}, {"fio", "psync", "#a6bddb"},  {"pageio", "aio", "#dd8452"},
    {"fio", "libaio", "#f5c6a5"},  {"pageio", "uring", "#55a868"}, {"fio", "io_uring", "#b5dfb9"},
};

std::string gp_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string value(const cell* c, double run_result::*field) {
  if (c == nullptr || c->runs.empty() || !std::isfinite(c->median.*field)) return "?";
  return fmt::format("{:.3f}", c->median.*field);
}

}  // namespace

void write_chart(const compare_results& r, const std::filesystem::path& svg) {
  std::vector<const series*> used;
  for (const auto& s : all_series) {
    for (const auto& c : r.cases) {
      if (r.find(c, s.tool, s.engine)) {
        used.push_back(&s);
        break;
      }
    }
  }
  if (used.empty()) throw std::runtime_error("nothing to draw");

  std::string gp;
  auto data_block = [&](const char* name, double run_result::*field) {
    gp += fmt::format("${} << EOD\n", name);
    for (const auto& c : r.cases) {
      gp += gp_string(c.label());
      for (const auto* s : used) {
        gp += ' ';
        gp += value(r.find(c, s->tool, s->engine), field);
      }
      gp += "\n";
    }
    gp += "EOD\n";
  };
  data_block("iops", &run_result::iops);
  data_block("cpu", &run_result::cpu_us_per_io);

  gp += fmt::format("set terminal svg size 1100,800 dynamic noenhanced font 'sans,12' background '#ffffff'\n");
  gp += fmt::format("set output {}\n", gp_string(svg.string()));
  gp += "set datafile missing '?'\n";
  gp += "set style data histograms\nset style histogram clustered gap 1\n";
  gp += "set style fill solid 0.9 border rgb '#333333'\nset boxwidth 0.9\n";
  gp += "set grid ytics lc rgb '#dddddd'\nset yrange [0:*]\n";
  gp += fmt::format("set xrange [-0.6:{}]\n", static_cast<double>(r.cases.size()) - 0.4);
  gp += "set multiplot layout 2,1 title "
        + gp_string(fmt::format("pageio backends vs fio: {} O_DIRECT, {} file, {:g} s per run{}",
                                format_size(r.opts.bs), format_size(r.opts.size_bytes), r.opts.seconds,
                                r.opts.rounds > 1 ? fmt::format(", median of {}", r.opts.rounds) : "")) +
        "\n";
  auto plot = [&](const char* block, const char* ylabel) {
    gp += fmt::format("set ylabel {}\n", gp_string(ylabel));
    gp += "plot ";
    for (std::size_t i = 0; i < used.size(); ++i) {
      if (i) gp += ", \\\n     ";
      gp += fmt::format("${} using {}:xtic(1) title {} lc rgb {}", block, i + 2,
                        gp_string(used[i]->tool + " " + used[i]->engine), gp_string(used[i]->color));
    }
    gp += "\n";
  };
  gp += "set key outside top center horizontal\n";
  plot("iops", "IOPS (higher is better)");
  gp += "unset key\n";
  plot("cpu", "CPU µs per I/O (lower is better)");
  gp += "unset multiplot\n";

  std::filesystem::path script = svg;
  script += ".gp";
  {
    std::ofstream f(script);
    f << gp;
    if (!f) throw std::runtime_error("cannot write " + script.string());
  }
  const process_output out = run_process({"gnuplot", script.string()});
  if (out.exit_code != 0) {
    throw std::runtime_error(fmt::format("gnuplot exited with status {}: {}", out.exit_code, out.err));
  }
}

}  // namespace pageio::bench
