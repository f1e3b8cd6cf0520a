// describe_log_record: a record decoded (record.hpp) and told as the user's
// writes, from its notes, or from its one write's changes when it has none.
#include <pageio/kv/log_record.hpp>
#include <pageio/kv/store.hpp>

#include "page.hpp"
#include "record.hpp"

#include <algorithm>

namespace pageio::kv {

namespace {

std::string text_of(std::span<const std::byte> b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

std::string key_of_cell(std::span<const std::byte> cell) {
  const std::size_t klen = cell.size() >= 2 ? page::ld16(cell.data()) : 0;
  if (cell.size() < page::leaf_cell_header || page::leaf_cell_header + klen > cell.size()) {
    throw record::malformed("a leaf cell of " + std::to_string(cell.size()) + " bytes");
  }
  return text_of(cell.subspan(page::leaf_cell_header, klen));
}

}  // namespace

std::uint64_t log_record_time_us(std::span<const std::byte> payload) {
  if (payload.size() < record::header_size) {
    throw corruption_error("not a record of a pageio::kv store: " + std::to_string(payload.size()) + " bytes");
  }
  return page::ld64(payload.data() + 8);
}

logged_record describe_log_record(std::span<const std::byte> payload) {
  logged_record out;
  try {
    const record::decoded d = record::decode(payload);
    out.time_us = d.time_us;
    if (d.checkpoint != 0) {
      out.what = d.foreign_checkpoint ? logged_record::kind::source_checkpoint : logged_record::kind::checkpoint;
      out.checkpoint_lsn = d.checkpoint;
      out.checkpoint_pages_from = d.pages_from;
      return out;
    }
    out.what = d.partial ? logged_record::kind::partial
                         : d.merge ? logged_record::kind::merge : logged_record::kind::write;
    const bool noted = std::any_of(d.changes.begin(), d.changes.end(), [](const auto& c) { return c.kind == record::op::note; });
    std::vector<std::string> drops, written;
    for (const auto& c : d.changes) {
      switch (c.kind) {
        case record::op::note: {
          logged_change w;
          w.what = static_cast<std::uint8_t>(c.bytes[0]) == record::note_put ? logged_change::kind::put
                                                                           : logged_change::kind::del;
          w.value_bytes = page::ld64(c.bytes.data() + 1);
          w.key = text_of(c.bytes.subspan(record::note_header));
          out.changes.push_back(std::move(w));
          break;
        }
        case record::op::buffer_put: {
          logged_change w;
          w.key = key_of_cell(c.bytes);
          w.value_bytes = page::parse_leaf_value(c.bytes).length;
          out.changes.push_back(std::move(w));
          break;
        }
        case record::op::buffer_drop: drops.push_back(text_of(c.bytes)); break;
        case record::op::leaf_put:
        case record::op::leaf_del:
          ++out.page_changes;
          if (noted || d.merge || d.partial) break;
          // A record without notes is one write (record.hpp).
          {
            logged_change w;
            if (c.kind == record::op::leaf_put) {
              w.key = key_of_cell(c.bytes);
              w.value_bytes = page::parse_leaf_value(c.bytes).length;
            } else {
              w.what = logged_change::kind::del;
              w.key = text_of(c.bytes);
            }
            written.push_back(w.key);
            out.changes.push_back(std::move(w));
          }
          break;
        default: ++out.page_changes; break;
      }
    }
    if (d.merge) {
      out.merged_pairs = drops.size();
    } else if (noted) {
      // Drops of keys no note names: pairs merged in the same group.
      for (const auto& k : drops) {
        if (std::none_of(out.changes.begin(), out.changes.end(), [&](const auto& w) { return w.key == k; })) {
          ++out.merged_pairs;
        }
      }
    } else if (!d.partial) {
      // A lone drop: a delete of a key that was only buffered.
      for (const auto& k : drops) {
        if (std::find(written.begin(), written.end(), k) == written.end()) {
          out.changes.push_back({logged_change::kind::del, k, 0});
        }
      }
    }
    return out;
  } catch (const record::malformed& e) {
    throw corruption_error(std::string("not a record of a pageio::kv store: ") + e.what());
  }
}

}  // namespace pageio::kv
