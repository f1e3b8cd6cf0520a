// pageio-wal's reading commands: verify, dump and stats of a log given as
// one or more paths (a live log directory, an archive directory, a single
// segment file), read as one log (wal::scan_logs).
#pragma once

#include <pageio/wal/reader.hpp>

#include <string>
#include <vector>

namespace pageio::wal::tool {

inline constexpr int exit_ok = 0, exit_corrupt = 1, exit_usage = 2;

// Where the log is: in the order given (a segment in two of them is read
// from the first).
using log_paths = std::vector<std::string>;

// Exit codes as in main.cpp's header. Each throws std::runtime_error (and
// std::system_error) when a path cannot be read or holds no segment.
struct dump_options {
  lsn_t from = 0;
  lsn_t to = 0;             // the last LSN printed; 0: to the end
  std::uint64_t limit = 0;  // at most this many records; 0: all
  bool json = false;        // JSON Lines, one object per record
  bool hex = false;         // each record's whole payload in hex
  bool decode_kv = false;   // --decode kv: what a pageio::kv store's records did
};

int verify(const log_paths& paths, bool json);
int dump(const log_paths& paths, const dump_options& o);
int stats(const log_paths& paths, bool json);

}  // namespace pageio::wal::tool
