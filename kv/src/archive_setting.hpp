// Where a store archives its log (options::wal_archive): recorded in the
// store's directory, so every later opening archives there too, whoever
// opens it and with whatever options (a one-off `pageio-kv get` closes with
// a checkpoint that recycles segments: without the record it would recycle
// them unarchived).
#pragma once

#include <pageio/engine/file_system.hpp>
#include <pageio/kv/store.hpp>

#include <filesystem>

namespace pageio::kv::detail {

// The file holding the record: <store>/wal-archive, the archive's absolute
// path on one line.
inline constexpr const char* archive_record_name = "wal-archive";

// The archive directory this opening uses, and the record brought in line
// with the options, durably (written under a temporary name, synced,
// renamed, the directory synced; or removed): options::wal_archive set
// records it; wal_archive_off removes the record; neither reads it. Empty:
// no archiving. Throws pageio::error (errc::corruption) for a record that
// is not one path (unless the options set it again), std::system_error
// naming the file when it cannot be read or written.
std::filesystem::path resolve_wal_archive(file_system& fs, const std::filesystem::path& store_dir, const options& o);

}  // namespace pageio::kv::detail
