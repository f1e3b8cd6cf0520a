// --json-out FILE, the same in every command that has it: "also write the
// JSON to FILE". Checked before the run (the directory must exist: a tool
// never makes one the user named), written after it.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string_view>

namespace pageio::tools {

// Throws usage_error when `file` cannot be written for a reason the user can
// see now: its directory does not exist, or it is a directory.
void check_output_file(std::string_view option, const std::filesystem::path& file);

// Writes `j` and a newline to `file` (replacing it). Throws
// std::runtime_error naming the file when that fails.
void write_json_out(const std::filesystem::path& file, const nlohmann::json& j);

}  // namespace pageio::tools
