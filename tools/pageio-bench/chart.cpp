#include "chart.hpp"

#include "process.hpp"
#include "numbers.hpp"
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
    {"pageio-reg", "uring", "#8172b2"}, {"fio-reg", "io_uring", "#cbc3e3"},
};

// One bar of the log or buffer-pool panel: pageio / its reference.
struct ratio_bar {
  std::string label;
  double value;
};

std::vector<ratio_bar> log_bars(const compare_results& r) {
  std::vector<ratio_bar> out;
  if (!r.wal) return out;
  for (const auto& shape : r.wal->shapes) {
    if (shape.each_round.empty()) continue;
    for (const auto& ref : shape.references) {
      const auto each = shape.ratio_each_round(ref);
      if (each.empty()) continue;
      std::string against = ref.unit == "ops/s"                           ? "db_bench"
                            : ref.unit == "writes/s"                        ? "fio O_DSYNC"
                            : ref.what.find("durable") != std::string::npos ? "fio durable"
                                                                            : "fio no sync";
      out.push_back({fmt::format("{} x {} vs {}", shape.median.writers, format_size(shape.median.record_size),
                                 against),
                     median_of(each)});
    }
  }
  return out;
}

std::vector<ratio_bar> pool_bars(const compare_results& r) {
  std::vector<ratio_bar> out;
  if (!r.cache) return out;
  const cache_compare_results& c = *r.cache;
  if (const cache_result* u = c.find(32, "uniform")) {
    if (std::isfinite(u->hit_vs_pread) && u->hit_vs_pread > 0) {
      out.push_back({"hit vs buffered pread", 1 / u->hit_vs_pread});
    }
    const double raw = c.raw_qd32_mean_iops();
    if (std::isfinite(raw) && raw > 0) out.push_back({"misses QD32 vs raw", u->miss_iops / raw});
  }
  if (const cache_result* b = c.find(1, "uniform"); b && c.raw_qd1 && c.raw_qd1->iops > 0) {
    out.push_back({"misses QD1 vs raw", b->miss_iops / c.raw_qd1->iops});
  }
  return out;
}

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

  const auto logs = log_bars(r);
  const auto pools = pool_bars(r);
  const bool ratios = !logs.empty() || !pools.empty();
  auto ratio_block = [&](const char* name, const std::vector<ratio_bar>& bars) {
    gp += fmt::format("${} << EOD\n", name);
    for (const auto& b : bars) gp += fmt::format("{} {:.3f}\n", gp_string(b.label), b.value);
    gp += "EOD\n";
  };
  ratio_block("log", logs);
  ratio_block("pool", pools);

  gp += fmt::format("set terminal svg size 1100,{} dynamic noenhanced font 'sans,12' background '#ffffff'\n",
                    ratios ? 1500 : 800);
  gp += fmt::format("set output {}\n", gp_string(svg.string()));
  gp += "set datafile missing '?'\n";
  gp += "set style data histograms\nset style histogram clustered gap 1\n";
  gp += "set style fill solid 0.9 border rgb '#333333'\nset boxwidth 0.9\n";
  gp += "set grid ytics lc rgb '#dddddd'\nset yrange [0:*]\n";
  gp += fmt::format("set xrange [-0.6:{}]\n", static_cast<double>(r.cases.size()) - 0.4);
  gp += fmt::format("set multiplot layout {},1 title ", ratios ? 4 : 2) +
        gp_string(fmt::format("pageio backends vs fio: {} O_DIRECT, {} file, {:g} s per run{}",
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
  // The log and the buffer pool: pageio / its reference, 1 marked.
  auto ratio_plot = [&](const char* block, std::size_t bars, const std::string& title, bool log_scale) {
    if (bars == 0) {
      gp += "set multiplot next\n";
      return;
    }
    gp += fmt::format("set title {}\n", gp_string(title));
    gp += fmt::format("set xrange [-0.6:{}]\n", static_cast<double>(bars) - 0.4);
    gp += log_scale ? "set logscale y\nset yrange [0.1:1000]\n" : "unset logscale y\nset yrange [0:*]\n";
    gp += "set ylabel \"pageio / reference (above 1: pageio ahead)\"\n";
    gp += "set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead lc rgb '#c44e52' lw 2 front\n";
    gp += fmt::format("plot ${} using 2:xtic(1) notitle lc rgb '#55a868', ${} using 0:2:(sprintf('%.2fx', $2)) with "
                      "labels offset 0,0.7 notitle\n",
                      block, block);
    gp += "unset arrow 1\nunset title\n";
  };
  if (ratios) {
    ratio_plot("log", logs.size(),
               "write-ahead log: commits/s vs db_bench fillrandom --sync=1, MiB/s vs fio (median of the rounds' ratios)",
               false);
    ratio_plot("pool", pools.size(),
               "buffer pool: a hit vs a buffered pread of a cached page (speed), misses vs the raw backend (IOPS)",
               true);
  }
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
