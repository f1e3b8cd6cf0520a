// A store's log records as an operator reads them: what each one did (the
// puts and deletes of a write or batch, a merge of the write buffer, a
// checkpoint) and when it was committed. `pageio-wal dump --decode kv`
// prints them; the format itself is in docs/kv.md ("Logging").
#pragma once

#include <pageio/engine/units.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace pageio::kv {

struct logged_change {
  enum class kind : std::uint8_t { put, del };
  kind what = kind::put;
  std::string key;
  std::uint64_t value_bytes = 0;  // a put's value length
};

struct logged_record {
  enum class kind : std::uint8_t {
    write,       // puts and deletes of the user's (one put, or a batch, or a group of writers')
    merge,       // write-buffer pairs moved into their leaves: nothing a reader sees changes
    partial,     // overflow pages of a large value whose put's record follows
    checkpoint,  // recovery may start at checkpoint_lsn
    source_checkpoint,  // a replica's copy of its source's checkpoint record (not this store's)
  };
  kind what = kind::write;
  std::uint64_t time_us = 0;           // commit time, microseconds since the Unix epoch
  std::vector<logged_change> changes;  // write: in the order they were made
  std::uint64_t merged_pairs = 0;      // pairs a merge (or a write's group) moved from the write buffer
  std::uint64_t page_changes = 0;      // changes to pages: leaves, splits, overflow pages
  lsn_t checkpoint_lsn = 0, checkpoint_pages_from = 0;  // checkpoint
};

// Decodes one record's payload (a wal::record_view's data). Throws
// kv::corruption_error saying what is wrong when it is not a record the
// store wrote.
logged_record describe_log_record(std::span<const std::byte> payload);

// Only the commit time (microseconds since the Unix epoch), cheaply: for
// point-in-time targets. Throws kv::corruption_error for a payload too short
// to be a record.
std::uint64_t log_record_time_us(std::span<const std::byte> payload);

}  // namespace pageio::kv
