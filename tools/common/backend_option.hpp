// The --backend option of every tool: the names the engine's registry knows
// (pageio::probe_backends(), best first) and "default", never a list of our
// own, so that a backend added to the engine is offered everywhere at once.
#pragma once

#include "cli_fwd.hpp"

#include <string>
#include <vector>

namespace pageio::tools {

// Every backend the registry knows, best first, whether or not it starts
// here (probed once per process).
const std::vector<std::string>& backend_names();

// "uring, aio, sync" (and ", or default").
std::string backend_list(bool with_default);

// Accepts exactly backend_names() (and "default" when `with_default`) and
// refuses anything else with bad_value: "--backend nope: must be one of
// uring, aio, sync, or default". The help's TYPE lists them:
// NAME:{uring,aio,sync,default} (the bash completion reads it from there).
CLI::Option* as_backend(CLI::Option* opt, bool with_default);

// The message for a name that is none of them ("" when it is one).
std::string check_backend(std::string_view option, std::string_view name, bool with_default);

}  // namespace pageio::tools
