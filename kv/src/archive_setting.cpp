// The store's record of its log archive: read, written or removed at open.
#include "archive_setting.hpp"

#include <pageio/engine/error.hpp>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>

namespace pageio::kv::detail {

namespace {

std::filesystem::path read_record(file_system& fs, const std::filesystem::path& path) {
  if (!fs.stat(path)) return {};
  file f = fs.open(path, {.direct = false, .writable = false});
  std::string text(static_cast<std::size_t>(std::min<std::uint64_t>(f.size(), 1 << 16)), '\0');
  text.resize(fs.read(f, text.data(), text.size(), 0));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty() || text.find('\n') != std::string::npos || text.front() != '/') {
    throw pageio::error(errc::corruption, path.string() + " should hold the log archive's absolute path on one line; it holds \"" +
                                text.substr(0, 200) + "\": fix it, or open the store with --wal-archive DIR (or "
                                "--no-wal-archive) to write it again");
  }
  return text;
}

}  // namespace

std::filesystem::path resolve_wal_archive(file_system& fs, const std::filesystem::path& store_dir, const options& o) {
  const auto path = store_dir / archive_record_name;
  if (o.wal_archive_off && !o.wal_archive.empty()) {
    throw std::invalid_argument("kv::options: wal_archive and wal_archive_off together: choose one");
  }
  try {
    if (o.wal_archive_off) {
      if (fs.stat(path)) {
        fs.unlink(path);
        fs.sync_directory(store_dir);
      }
      return {};
    }
    if (o.wal_archive.empty()) return read_record(fs, path);
    const auto want = std::filesystem::absolute(o.wal_archive).lexically_normal();
    bool same = false;
    try {
      same = fs.stat(path) && read_record(fs, path) == want;
    } catch (const pageio::error&) {
      // Damaged: written again below.
    }
    if (same) return want;
    const auto tmp = store_dir / (std::string(archive_record_name) + ".tmp");
    {
      file f = fs.open(tmp, {.direct = false, .writable = true, .create = true, .truncate = true});
      const std::string line = want.string() + "\n";
      fs.write(f, line.data(), line.size(), 0);
      fs.sync(f, true);
    }
    fs.rename(tmp, path);
    fs.sync_directory(store_dir);
    return want;
  } catch (const pageio::error&) {
    throw;
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "the store's log archive setting (" + path.string() + "): " + e.what());
  }
}

}  // namespace pageio::kv::detail
