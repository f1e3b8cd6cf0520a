// A replica's checkpoints (options::replica): a store that takes records
// replayed from another store's log may not log checkpoint records of its
// own (its LSNs must stay the source's), so its checkpoints are kept in
// <dir>/replica-checkpoint instead, and recovery starts at the later of it
// and the log's last checkpoint record. Text, one line:
//   replica-checkpoint <redo LSN> <pages-from LSN> <crc32c of the two, hex>
#pragma once

#include <pageio/engine/file_system.hpp>
#include <pageio/engine/units.hpp>

#include <filesystem>
#include <optional>

namespace pageio::kv::detail {

inline constexpr const char* replica_checkpoint_name = "replica-checkpoint";

struct replica_checkpoint {
  lsn_t redo = 0;        // recovery may start here (the write buffer's pairs too)
  lsn_t pages_from = 0;  // every page change below it is in the data file
};

// Empty when there is none. Throws kv::corruption_error for a file that does
// not parse or check, std::system_error when it cannot be read.
std::optional<replica_checkpoint> read_replica_checkpoint(file_system& fs, const std::filesystem::path& store_dir);
// Written under a temporary name, synced, renamed, the directory synced.
void write_replica_checkpoint(file_system& fs, const std::filesystem::path& store_dir, const replica_checkpoint& c);

}  // namespace pageio::kv::detail
