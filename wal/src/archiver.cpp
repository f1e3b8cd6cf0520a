// Copying a segment into the archive: read through the file system, written
// under a temporary name, made durable, renamed, the directory synced.
#include "archiver.hpp"

#include <pageio/engine/error.hpp>

#include <algorithm>
#include <cerrno>
#include <string>
#include <system_error>
#include <vector>

namespace pageio::wal::detail {

std::uint64_t archive_segment(file_system& fs, const std::filesystem::path& segment, const std::filesystem::path& dir,
                              const archived_segment& a) {
  const std::string name = archive_file_name(a);
  const auto tmp = dir / (name + ".tmp");
  const auto dst = dir / name;
  bool made_tmp = false;
  try {
    file src = fs.open(segment, {.direct = false, .writable = false});
    const std::uint64_t size = src.size();
    file out = fs.open(tmp, {.direct = false, .writable = true, .create = true, .truncate = true});
    made_tmp = true;
    std::vector<char> buf(static_cast<std::size_t>(std::min<std::uint64_t>(size, 1u << 20)));
    for (std::uint64_t off = 0; off < size;) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - off));
      const std::size_t got = fs.read(src, buf.data(), want, off);
      if (got != want) {
        throw std::system_error(errno_code(EIO), segment.string() + " ended at byte " + std::to_string(off + got) +
                                                     " while it was copied (it had " + std::to_string(size) + ")");
      }
      fs.write(out, buf.data(), got, off);
      off += got;
    }
    fs.sync(out, true);
    fs.rename(tmp, dst);
    made_tmp = false;
    fs.sync_directory(dir);
    return size;
  } catch (const std::system_error& e) {
    if (made_tmp) {
      try {
        fs.unlink(tmp);
      } catch (const std::system_error&) {
        // Left behind: the next copy of this segment truncates it.
      }
    }
    throw std::system_error(e.code(), "archiving log segment " + segment.filename().string() + " as " + dst.string() +
                                          ": " + e.what());
  }
}

}  // namespace pageio::wal::detail
