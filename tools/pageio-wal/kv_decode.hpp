// pageio-wal dump --decode kv: a pageio::kv store's log records told as
// what they did (kv::describe_log_record): the puts and deletes with their
// keys (escaped as pageio-kv escapes them) and value lengths, merges,
// checkpoints, and each record's commit time.
#pragma once

#include <pageio/wal/reader.hpp>

#include <nlohmann/json.hpp>

#include <string>

namespace pageio::wal::tool {

// One record as text lines (one per change) or as one JSON object; `hex`
// adds the whole payload in hex. Throws kv::corruption_error when the
// record is not the store's.
std::string kv_record_text(const record_view& v, bool hex);
nlohmann::json kv_record_json(const record_view& v, bool hex);

// Microseconds since the Unix epoch as UTC, ISO 8601: 2026-12-01T17:42:03.123456Z.
std::string utc_time(std::uint64_t time_us);

// The whole payload in lower-case hex.
std::string payload_hex(std::span<const std::byte> data);

}  // namespace pageio::wal::tool
