// Reading a log directory: every record in order, where the log ends, and
// whether what follows the end is a torn tail (expected after a crash) or
// damage with valid data after it (corruption, never silently cut).
#pragma once

#include <pageio/engine/units.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace pageio {
class file_system;
}

namespace pageio::wal {

using pageio::lsn_t;  // records are numbered 1, 2, 3, ...; 0 means none

// One record, valid during the callback only.
struct record_view {
  lsn_t lsn = 0;
  std::uint32_t crc = 0;                  // CRC32C of `data`
  std::span<const std::byte> data;
  std::uint64_t segment = 0;              // where its first fragment lies
  std::uint32_t page = 0;
  std::uint32_t offset = 0;               // byte offset in the segment file
};

// Where the log is damaged, and how.
struct damage {
  std::filesystem::path file;
  std::uint64_t segment = 0;
  std::uint32_t page = 0;
  std::uint64_t offset = 0;  // byte offset in the segment file
  std::string what;
  // A whole segment is missing (a gap in the numbers): nothing on disk is
  // damaged, but the log cannot be read past it.
  bool missing_segment = false;
};

struct scan_result {
  lsn_t first_lsn = 0;  // 0: no record
  lsn_t last_lsn = 0;   // the last record of the last complete group commit
  std::uint64_t records = 0;
  std::uint64_t record_bytes = 0;
  std::vector<std::uint64_t> segments;  // sequence numbers found, in order
  // The last LSN each segment holds, for segments that hold records.
  std::map<std::uint64_t, lsn_t> segment_last_lsn;
  std::uint32_t segment_pages = 0;      // pages per segment (from the first segment's size)
  // Where the next group commit goes: this segment, this page (== segment_pages: the next segment).
  std::uint64_t end_segment = 0;
  std::uint32_t end_page = 0;
  // What lies at the end: empty for a clean end, otherwise a torn tail (an
  // unfinished group commit), described. A short segment or a missing one
  // is never an end: it is corruption.
  std::string tail;
  // A complete group commit past the end that was written while the torn
  // one before it was in flight (never acknowledged). The writer erases it
  // before going on, or it would read as a continuation of the new log.
  struct dropped_batch {
    std::uint64_t segment = 0;
    std::uint32_t page = 0, pages = 0;
  };
  std::optional<dropped_batch> dropped;
  // Set when damage is followed by valid group commits: the log cannot be
  // trusted past `corruption->offset`, and nothing was cut.
  std::optional<damage> corruption;
};

// Progress of a long scan: bytes read so far, of `total`.
using scan_progress = std::function<void(std::uint64_t done, std::uint64_t total)>;

// Reads the log in `dir`. Calls `on_record` for each record with lsn >= `from`
// in order, up to the end of the valid log (or the damage); stops early when
// it returns false. Throws std::system_error when the directory or a segment
// cannot be read, naming it.
scan_result scan_log(const std::filesystem::path& dir, lsn_t from = 0,
                     const std::function<bool(const record_view&)>& on_record = {},
                     const scan_progress& progress = {});
// The same, through `fs` (every listing, open and read goes through it).
scan_result scan_log(file_system& fs, const std::filesystem::path& dir, lsn_t from = 0,
                     const std::function<bool(const record_view&)>& on_record = {},
                     const scan_progress& progress = {});

// Reads the segments of several directories as one log: archives
// (log::options::archive_dir) and a live log directory, in any mix; each
// may hold live and archived segment names. A path that is a file is read
// as one segment (named as either). A segment number found in more than one
// place is read from the first given that has it. A number missing between
// the lowest and the highest found is damage, as in one directory (an
// archive that lost a file says which). A lone segment's first record may
// have begun in the segment before it: it is skipped, as after recycling.
scan_result scan_logs(const std::vector<std::filesystem::path>& dirs, lsn_t from = 0,
                      const std::function<bool(const record_view&)>& on_record = {},
                      const scan_progress& progress = {});
scan_result scan_logs(file_system& fs, const std::vector<std::filesystem::path>& dirs, lsn_t from = 0,
                      const std::function<bool(const record_view&)>& on_record = {},
                      const scan_progress& progress = {});

// The payload of record `lsn` in `dirs` (read as scan_logs reads them),
// reading from the start up to that record and no further; empty when they
// do not hold it before their end or damage.
std::optional<std::vector<std::byte>> find_record(const std::vector<std::filesystem::path>& dirs, lsn_t lsn);

// The segment file name for sequence number `seq`: wal-<16 hex digits>.log.
std::string segment_file_name(std::uint64_t seq);
// The sequence number in a segment file name, if it is one.
std::optional<std::uint64_t> parse_segment_file_name(const std::string& name);

// An archived segment (log::options::archive_dir): a byte-for-byte copy of
// segment `seq`, named wal-<seq, 16 hex digits>.<first>-<last>.log, where
// first..last (decimal) are the LSNs of the records that end in it. The
// name says what the file holds; the pages inside say it again.
struct archived_segment {
  std::uint64_t seq = 0;
  lsn_t first_lsn = 0, last_lsn = 0;
};
std::string archive_file_name(const archived_segment& a);
std::optional<archived_segment> parse_archive_file_name(const std::string& name);

}  // namespace pageio::wal
