#include "replica_checkpoint.hpp"

#include <pageio/engine/crc32c.hpp>
#include <pageio/kv/store.hpp>

#include <cstdio>
#include <string>

namespace pageio::kv::detail {

namespace {

std::uint32_t crc_of(const replica_checkpoint& c) {
  const std::string s = std::to_string(c.redo) + " " + std::to_string(c.pages_from);
  return crc32c(s.data(), s.size());
}

}  // namespace

std::optional<replica_checkpoint> read_replica_checkpoint(file_system& fs, const std::filesystem::path& store_dir) {
  const auto path = store_dir / replica_checkpoint_name;
  if (!fs.stat(path)) return std::nullopt;
  pageio::file f = fs.open(path, {.direct = false, .writable = false});
  std::string text(256, '\0');
  text.resize(fs.read(f, text.data(), text.size(), 0));
  replica_checkpoint c;
  unsigned long long redo = 0, from = 0;
  unsigned crc = 0;
  if (std::sscanf(text.c_str(), "replica-checkpoint %llu %llu %x", &redo, &from, &crc) != 3 ||
      (c.redo = redo, c.pages_from = from, crc_of(c) != crc) || c.pages_from < c.redo) {
    throw corruption_error(path.string() + " is damaged (it holds \"" + text.substr(0, 80) +
                           "\"): restore the store from its backup and replay again");
  }
  return c;
}

void write_replica_checkpoint(file_system& fs, const std::filesystem::path& store_dir, const replica_checkpoint& c) {
  char line[96];
  const int n = std::snprintf(line, sizeof line, "replica-checkpoint %llu %llu %08x\n",
                              static_cast<unsigned long long>(c.redo), static_cast<unsigned long long>(c.pages_from),
                              crc_of(c));
  const auto tmp = store_dir / (std::string(replica_checkpoint_name) + ".tmp");
  {
    pageio::file f = fs.open(tmp, {.direct = false, .writable = true, .create = true, .truncate = true});
    fs.write(f, line, static_cast<std::size_t>(n), 0);
    fs.sync(f, true);
  }
  fs.rename(tmp, store_dir / replica_checkpoint_name);
  fs.sync_directory(store_dir);
}

}  // namespace pageio::kv::detail
