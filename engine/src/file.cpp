#include <pageio/engine/file.hpp>

#include <pageio/engine/aligned_buffer.hpp>

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <utility>

namespace pageio {

namespace {

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::system_category(), what);
}

std::uint32_t read_sysfs_u32(const std::string& p) {
  std::ifstream in(p);
  std::uint32_t v = 0;
  if (in >> v) return v;
  return 0;
}

std::uint32_t logical_block_size(dev_t dev) {
  const std::string base =
      "/sys/dev/block/" + std::to_string(major(dev)) + ":" + std::to_string(minor(dev));
  if (auto v = read_sysfs_u32(base + "/queue/logical_block_size")) return v;
  if (auto v = read_sysfs_u32(base + "/../queue/logical_block_size")) return v;  // a partition
  return 512;
}

std::string fs_name(const std::filesystem::path& p) {
  struct statfs sfs {};
  if (::statfs(p.c_str(), &sfs) != 0) return "this file system";
  switch (sfs.f_type) {
    case TMPFS_MAGIC: return "tmpfs";
    case RAMFS_MAGIC: return "ramfs";
    case OVERLAYFS_SUPER_MAGIC: return "overlayfs";
    default: return "this file system";
  }
}

}  // namespace

dio_alignment query_dio_alignment(int fd) {
  dio_alignment a;
  struct statx stx {};
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN) &&
      stx.stx_dio_offset_align != 0) {
    a.memory = stx.stx_dio_mem_align;
    a.offset = stx.stx_dio_offset_align;
    a.from_statx = true;
    return a;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno(errno, "fstat");
  const dev_t dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
  a.memory = a.offset = logical_block_size(dev);
  return a;
}

file file::open(const std::filesystem::path& path, const open_options& opts) {
  // O_NONBLOCK: opening a FIFO would otherwise wait for its other end.
  int flags = O_CLOEXEC | O_NONBLOCK | (opts.writable ? O_RDWR : O_RDONLY);
  if (opts.create) flags |= O_CREAT;
  if (opts.create && opts.exclusive) flags |= O_EXCL;
  if (opts.truncate) flags |= O_TRUNC;
  if (opts.direct) flags |= O_DIRECT;
  int fd = ::open(path.c_str(), flags, opts.mode);
  if (fd < 0) {
    const int err = errno;
    if (err == EINVAL && opts.direct) {
      // Either O_DIRECT is unsupported here or something else is wrong: try without.
      int probe = ::open(path.c_str(), flags & ~O_DIRECT, opts.mode);
      struct stat pst {};
      const bool plain = probe >= 0 && ::fstat(probe, &pst) == 0 && (S_ISREG(pst.st_mode) || S_ISBLK(pst.st_mode));
      if (probe >= 0 && !plain) {
        // Not O_DIRECT's fault: a FIFO, a socket, a directory... said below.
        fd = probe;
      } else if (probe >= 0) {
        ::close(probe);
        throw_errno(EINVAL, path.string() + ": " + fs_name(path.parent_path().empty() ? "." : path.parent_path()) +
                                " does not support O_DIRECT; put the file on a disk file system "
                                "(ext4, xfs, btrfs) or open it without direct I/O");
      }
    }
    if (fd < 0) throw_errno(err, "open " + path.string());
  }
  file f;  // owns fd from here: closed on every throw below
  f.fd_ = fd;
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno(errno, "fstat " + path.string());
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    throw_errno(EINVAL, path.string() + " is " + kind + ", not a regular file");
  }
  if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) throw_errno(errno, "fcntl " + path.string());
  f.path_ = path;
  f.direct_ = opts.direct;
  if (opts.direct) {
    try {
      f.align_ = query_dio_alignment(fd);
    } catch (const std::system_error& e) {
      throw std::system_error(e.code(), path.string() + ": " + e.what());
    }
  } else {
    f.align_ = {1, 1, false};
  }
  return f;
}

file::file(file&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), direct_(o.direct_), path_(std::move(o.path_)), align_(o.align_) {}

file& file::operator=(file&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    direct_ = o.direct_;
    path_ = std::move(o.path_);
    align_ = o.align_;
  }
  return *this;
}

file::~file() { close(); }

int file::release() noexcept { return std::exchange(fd_, -1); }

void file::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::uint64_t file::size() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw_errno(errno, "fstat " + path_.string());
  return static_cast<std::uint64_t>(st.st_size);
}

std::error_code file::check_io(const void* buf, std::size_t length, std::uint64_t offset,
                               std::string* why) const {
  if (!direct_) return {};
  auto misfit = [&](const char* what, std::uint64_t value, std::uint32_t align) {
    if (why) {
      *why = path_.string() + ": " + what + " " + std::to_string(value) +
             " is not a multiple of " + std::to_string(align) +
             ", which O_DIRECT on this file requires (statx STATX_DIOALIGN); use "
             "pageio::aligned_buffer and block-aligned offsets and lengths";
    }
    return std::make_error_code(std::errc::invalid_argument);
  };
  const auto addr = reinterpret_cast<std::uintptr_t>(buf);
  if (addr % align_.memory != 0) return misfit("buffer address", addr, align_.memory);
  if (offset % align_.offset != 0) return misfit("offset", offset, align_.offset);
  if (length % align_.offset != 0) return misfit("length", length, align_.offset);
  return {};
}

std::string memory_file_system(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  if (ec) p = path;
  while (!std::filesystem::exists(p, ec) && p.has_relative_path()) p = p.parent_path();
  const std::string fs = fs_name(p);
  return fs == "tmpfs" || fs == "ramfs" ? fs : std::string();
}

bool supports_direct_io(const std::filesystem::path& dir, std::string* why) {
  // Since Linux 6.6 tmpfs accepts O_DIRECT, but it keeps files in memory:
  // nothing there reaches a disk, so it is no place for data or measurements.
  if (const std::string fs = memory_file_system(dir); !fs.empty()) {
    if (why) {
      *why = dir.string() + " is on " + fs +
             ", which keeps files in memory (older kernels refuse O_DIRECT there); "
             "use a directory on a disk file system (ext4, xfs, btrfs)";
    }
    return false;
  }
  std::string templ = (dir / ".pageio-odirect-XXXXXX").string();
  int fd = ::mkstemp(templ.data());
  if (fd < 0) {
    if (why) *why = "cannot create a file in " + dir.string() + ": " + std::strerror(errno);
    return false;
  }
  ::close(fd);
  fd = ::open(templ.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  const int err = errno;
  ::unlink(templ.c_str());
  if (fd < 0) {
    if (why) {
      *why = dir.string() + " is on " + fs_name(dir) + ", which does not support O_DIRECT (" +
             std::strerror(err) + "); use a directory on a disk file system";
    }
    return false;
  }
  ::close(fd);
  return true;
}

void ensure_file_written(const std::filesystem::path& path, std::uint64_t size_bytes,
                         const std::function<void(std::uint64_t, std::uint64_t)>& progress) {
  constexpr std::uint64_t chunk = 1u << 20;
  // O_DIRECT where the file system has it, else through the OS cache.
  file f;
  try {
    f = file::open(path, {.direct = true, .create = true});
  } catch (const std::system_error&) {
    f = file::open(path, {.direct = false, .create = true});
  }
  const bool direct = f.direct();
  const int fd = f.fd();
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno(errno, "fstat " + path.string());
  // Restart from the last whole chunk: a previous run may have stopped midway.
  std::uint64_t pos = std::min<std::uint64_t>(static_cast<std::uint64_t>(st.st_size), size_bytes);
  pos -= pos % chunk;
  if (pos >= size_bytes) return;
  aligned_buffer buf(chunk);
  std::mt19937_64 rng(0x70616765696fULL);  // fixed: the content is incompressible, not secret
  auto* words = reinterpret_cast<std::uint64_t*>(buf.data());
  const std::uint64_t total = size_bytes - pos;
  const std::uint64_t start = pos;
  while (pos < size_bytes) {
    for (std::size_t i = 0; i < chunk / 8; ++i) words[i] = rng();
    std::uint64_t n = std::min(chunk, size_bytes - pos);
    if (direct && n % 4096 != 0) n = (n + 4095) & ~std::uint64_t{4095};
    const ssize_t w = ::pwrite(fd, buf.data(), n, static_cast<off_t>(pos));
    if (w < 0) throw_errno(errno, "write " + path.string() + " at offset " + std::to_string(pos));
    pos += static_cast<std::uint64_t>(w);
    if (progress) progress(pos - start, total);
  }
  if (pos != size_bytes && ::ftruncate(fd, static_cast<off_t>(size_bytes)) != 0) {
    throw_errno(errno, "truncate " + path.string());
  }
  if (::fdatasync(fd) != 0) throw_errno(errno, "fdatasync " + path.string());
}

}  // namespace pageio
