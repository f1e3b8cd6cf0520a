#include "scratch_file.hpp"

#include <pageio/engine/file.hpp>


#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace pageio::micro {

namespace {

// supports_direct_io() also refuses memory file systems (tmpfs accepts
// O_DIRECT since Linux 6.6, but its numbers would be RAM's).
bool on_disk(const std::filesystem::path& dir) { return supports_direct_io(dir); }

std::filesystem::path pick_parent() {
  std::vector<std::filesystem::path> candidates;
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') candidates.emplace_back(t);
  candidates.emplace_back("/tmp");
  for (const auto& c : candidates) {
    std::error_code ec;
    if (std::filesystem::is_directory(c, ec) && on_disk(c)) return c;
  }
  const auto cwd = std::filesystem::current_path();
  if (!on_disk(cwd)) {
    throw std::runtime_error("no directory for the benchmark file is on a disk with O_DIRECT: tried $TMPDIR, /tmp and " +
                             cwd.string() + "; run from a directory on ext4/xfs/btrfs or set TMPDIR");
  }
  return cwd;
}

}  // namespace

scratch_file::scratch_file(std::uint64_t size_bytes) : size_(size_bytes) {
  std::string templ = (pick_parent() / "pageio-micro-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    throw std::system_error(errno, std::system_category(), "mkdtemp " + templ);
  }
  dir_ = templ;
  file_ = dir_ / "data";
  ensure_file_written(file_, size_bytes);
}

scratch_file::~scratch_file() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace pageio::micro
