// What every JSON document the tools print carries, so that a result can be
// tied to a build and a machine: the tool and pageio's version, the schema
// number of the tools' JSON, the time, the kernel release and the device
// under test (the block device holding the data the tool worked on).
// JSON Lines of records (`pageio-kv scan --json`, `pageio-wal dump
// --json`) are data, one object per record, and carry none of it.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string_view>

namespace pageio::tools {

// Bumped when a field of the tools' JSON changes meaning or goes away (new
// fields do not bump it).
inline constexpr int json_schema = 1;

// The block device under `path` (the nearest existing ancestor when it does
// not exist yet): {"name": "vda1", "disk": "vda", "model": ... or null,
// "rotational": bool or null, "filesystem": "ext4" or null, "mount": "/"},
// or null when it cannot be told (a tmpfs, a network file system).
nlohmann::json device_of(const std::filesystem::path& path);

// {"tool", "version", "schema", "time" (UTC, ISO 8601), "kernel", "device"}.
nlohmann::json run_info(std::string_view tool, const std::filesystem::path& data_path);

// Adds run_info's fields to a JSON object (fields it already has stay).
void stamp(nlohmann::json& j, std::string_view tool, const std::filesystem::path& data_path);

}  // namespace pageio::tools
