#include "scratch_file.hpp"

#include <pageio/engine/file.hpp>

#include <linux/magic.h>
#include <sys/statfs.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace pageio::micro {

namespace {

// Linux 6.6+ tmpfs accepts O_DIRECT, so supports_direct_io() alone cannot
// keep the benchmark off RAM.
bool on_disk(const std::filesystem::path& dir) {
  struct statfs sfs {};
  if (::statfs(dir.c_str(), &sfs) != 0) return false;
  if (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC) return false;
  return supports_direct_io(dir);
}

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
