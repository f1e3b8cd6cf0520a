// A kv record for the operator: the change list, the commit time, and the
// payload on request.
#include "kv_decode.hpp"

#include <pageio/kv/log_record.hpp>

#include "escape.hpp"

#include <fmt/format.h>

#include <ctime>

namespace pageio::wal::tool {

std::string utc_time(std::uint64_t time_us) {
  const std::time_t secs = static_cast<std::time_t>(time_us / 1'000'000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06}Z", buf, time_us % 1'000'000);
}

std::string payload_hex(std::span<const std::byte> data) {
  std::string out;
  out.reserve(data.size() * 2);
  for (const std::byte b : data) out += fmt::format("{:02x}", static_cast<unsigned>(b));
  return out;
}

namespace {

const char* kind_name(kv::logged_record::kind k) {
  switch (k) {
    case kv::logged_record::kind::write: return "write";
    case kv::logged_record::kind::merge: return "merge";
    case kv::logged_record::kind::partial: return "partial";
    case kv::logged_record::kind::checkpoint: return "checkpoint";
    case kv::logged_record::kind::source_checkpoint: return "source_checkpoint";
  }
  return "?";
}

}  // namespace

std::string kv_record_text(const record_view& v, bool hex) {
  const kv::logged_record r = kv::describe_log_record(v.data);
  const std::string head = fmt::format("LSN {:>10}  {}  ", v.lsn, utc_time(r.time_us));
  std::string out;
  switch (r.what) {
    case kv::logged_record::kind::write:
      for (const auto& c : r.changes) {
        if (c.what == kv::logged_change::kind::put) {
          out += fmt::format("{}put  {}  ({} B)\n", head, pageio::tools::escape(c.key), c.value_bytes);
        } else {
          out += fmt::format("{}del  {}\n", head, pageio::tools::escape(c.key));
        }
      }
      if (r.merged_pairs != 0) out += fmt::format("{}merge  {} pair(s) from the write buffer\n", head, r.merged_pairs);
      if (out.empty()) out = fmt::format("{}pages  {} page change(s) (the store's set-up or its structure)\n", head, r.page_changes);
      break;
    case kv::logged_record::kind::merge:
      out = fmt::format("{}merge  {} pair(s) from the write buffer into their leaves\n", head, r.merged_pairs);
      break;
    case kv::logged_record::kind::partial:
      out = fmt::format("{}part of a large value  ({} page change(s); its put follows)\n", head, r.page_changes);
      break;
    case kv::logged_record::kind::checkpoint:
      out = fmt::format("{}checkpoint  (recovery starts at LSN {}, page redo at {})\n", head, r.checkpoint_lsn,
                        r.checkpoint_pages_from);
      break;
    case kv::logged_record::kind::source_checkpoint:
      out = fmt::format("{}checkpoint of the store this one was replayed from  (not this store's: ignored)\n", head);
      break;
  }
  if (hex) out += fmt::format("    {}\n", payload_hex(v.data));
  return out;
}

nlohmann::json kv_record_json(const record_view& v, bool hex) {
  const kv::logged_record r = kv::describe_log_record(v.data);
  nlohmann::json changes = nlohmann::json::array();
  for (const auto& c : r.changes) {
    nlohmann::json one = {{"op", c.what == kv::logged_change::kind::put ? "put" : "del"},
                          {"key", pageio::tools::escape(c.key)}};
    if (c.what == kv::logged_change::kind::put) one["value_bytes"] = c.value_bytes;
    changes.push_back(std::move(one));
  }
  nlohmann::json j = {{"lsn", v.lsn},
                      {"time", utc_time(r.time_us)},
                      {"time_us", r.time_us},
                      {"kind", kind_name(r.what)},
                      {"changes", std::move(changes)},
                      {"merged_pairs", r.merged_pairs},
                      {"page_changes", r.page_changes}};
  if (r.what == kv::logged_record::kind::checkpoint || r.what == kv::logged_record::kind::source_checkpoint) {
    j["checkpoint_lsn"] = r.checkpoint_lsn;
    j["checkpoint_pages_from"] = r.checkpoint_pages_from;
  }
  if (hex) j["payload_hex"] = payload_hex(v.data);
  return j;
}

}  // namespace pageio::wal::tool
