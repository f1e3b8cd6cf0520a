// The store's statistics as JSON, for `stats --json` and the shell's `stats`.
#pragma once

#include <pageio/kv/store.hpp>

#include <nlohmann/json.hpp>

namespace pageio::kv::tool {

nlohmann::json stats_json(const statistics& s);

}  // namespace pageio::kv::tool
