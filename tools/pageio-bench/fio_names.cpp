#include "fio_names.hpp"

#include "backend_option.hpp"
#include "command_line.hpp"
#include "validators.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace pageio::bench {

namespace {

const char* const group = "fio's names";

// `name`'s option, which the alias must exclude (both given is a usage error).
CLI::Option* twin(CLI::App& cmd, const std::string& name) {
  CLI::Option* o = cmd.get_option_no_throw(name);
  if (o == nullptr) throw std::logic_error("fio alias for " + name + ", which this command lacks");
  return o;
}

}  // namespace

std::optional<std::string> backend_for_fio_engine(std::string_view name) {
  std::string out;
  if (name == "libaio") {
    out = "aio";
  } else if (name == "io_uring") {
    out = "uring";
  } else if (name == "psync" || name == "sync" || name == "pvsync") {
    out = "sync";
  } else {
    out = std::string(name);
  }
  const auto& known = tools::backend_names();
  if (std::find(known.begin(), known.end(), out) == known.end()) return std::nullopt;
  return out;
}

CLI::Option* as_fio_engine(CLI::Option* opt, bool with_default) {
  const std::string option = opt->get_name();
  opt->transform(CLI::Validator(
      [option, with_default](std::string& text) -> std::string {
        if (with_default && text == "default") return {};
        if (auto b = backend_for_fio_engine(text)) {
          text = *b;
          return {};
        }
        throw tools::bad_value(fmt::format("{} {}: must be one of fio's libaio, io_uring, psync, sync, pvsync, or "
                                           "a backend: {}",
                                           option, tools::shown(text), tools::backend_list(with_default)));
      },
      ""));
  std::string choices = "libaio,io_uring,psync,sync,pvsync";
  for (const auto& n : tools::backend_names()) {
    if (("," + choices + ",").find("," + n + ",") == std::string::npos) choices += "," + n;
  }
  if (with_default) choices += ",default";
  return opt->type_name("NAME:{" + choices + "}");
}

void add_fio_aliases(CLI::App& cmd, const fio_alias_targets& t) {
  if (t.qd) {
    tools::as_count(cmd.add_option("--iodepth", *t.qd, "fio's name for --qd"), 1, 65536)
        ->excludes(twin(cmd, "--qd"))
        ->group(group);
  }
  if (t.seconds) {
    tools::as_seconds(cmd.add_option("--runtime", *t.seconds, "fio's name for --seconds (fio's units: 10s, 2m)"),
                      tools::seconds_from::above_zero)
        ->excludes(twin(cmd, "--seconds"))
        ->group(group);
  }
  if (t.warmup_seconds) {
    tools::as_seconds(cmd.add_option("--ramp_time", *t.warmup_seconds, "fio's name for --warmup (fio's units: 500ms)"),
                      tools::seconds_from::zero)
        ->excludes(twin(cmd, "--warmup"))
        ->group(group);
  }
  if (t.file) {
    cmd.add_option("--filename", *t.file, "fio's name for --file")
        ->type_name("FILE")
        ->excludes(twin(cmd, "--file"))
        ->group(group);
  }
  if (t.backend) {
    as_fio_engine(cmd.add_option("--ioengine", *t.backend,
                                 "fio's name for --backend, with fio's engine names: libaio (aio), io_uring (uring), "
                                 "psync, sync or pvsync (sync)"),
                  false)
        ->excludes(twin(cmd, "--backend"))
        ->group(group);
  }
}

}  // namespace pageio::bench
