// Log archiving (log::options::archive_dir): a finished segment copied into
// the archive directory and made durable there before the log recycles it
// (docs/wal-format.md, "Archive").
#pragma once

#include <pageio/engine/file_system.hpp>
#include <pageio/wal/reader.hpp>

#include <cstdint>
#include <filesystem>

namespace pageio::wal::detail {

// Copies the segment file `segment` to `dir`/archive_file_name(a): written
// under a temporary name (<name>.tmp), fdatasynced, renamed into place and
// the directory synced, so a crash leaves the archive either without the
// file or with all of it. An archived file already there (a crash between
// archiving and recycling) is replaced by the new copy. Returns the bytes
// copied. Throws std::system_error naming the step and the files; the
// temporary file is then removed if it can be.
std::uint64_t archive_segment(file_system& fs, const std::filesystem::path& segment, const std::filesystem::path& dir,
                              const archived_segment& a);

}  // namespace pageio::wal::detail
