// pageio-kv backup --dir D --to B [--force] [--json]: a store's online
// backup (kv::store::backup) from the command line, with progress on a
// terminal and a summary.
#pragma once

#include <string>

namespace pageio::kv::tool {

struct backup_flags {
  std::string dir, to;
  bool force = false;  // replace B when it is an earlier backup (a pageio store)
  bool json = false;
};

// Exit code: 0 done, 1 failure (damage, I/O, the store in use), 2 usage
// (throws std::invalid_argument for those).
int run_backup(const backup_flags& f);

}  // namespace pageio::kv::tool
