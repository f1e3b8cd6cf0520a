#include "backend_option.hpp"

#include "command_line.hpp"
#include "validators.hpp"

#include <pageio/engine/backend.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace pageio::tools {

const std::vector<std::string>& backend_names() {
  static const std::vector<std::string> names = pageio::backend_names();
  return names;
}

std::string backend_list(bool with_default) {
  std::string out;
  for (const auto& n : backend_names()) out += (out.empty() ? "" : ", ") + n;
  return with_default ? out + ", or default" : out;
}

std::string check_backend(std::string_view option, std::string_view name, bool with_default) {
  const auto& names = backend_names();
  if (std::find(names.begin(), names.end(), name) != names.end()) return {};
  if (with_default && name == "default") return {};
  return fmt::format("{} {}: must be one of {}", option, shown(name), backend_list(with_default));
}

CLI::Option* as_backend(CLI::Option* opt, bool with_default) {
  const std::string name = opt->get_name();
  opt->check(CLI::Validator(
      [name, with_default](std::string& text) -> std::string {
        if (std::string m = check_backend(name, text, with_default); !m.empty()) throw bad_value(std::move(m));
        return {};
      },
      ""));
  std::string choices;
  for (const auto& n : backend_names()) choices += (choices.empty() ? "" : ",") + n;
  if (with_default) choices += ",default";
  return opt->type_name("NAME:{" + choices + "}");
}

}  // namespace pageio::tools
