// Opening files for direct I/O and learning their alignment rules.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <system_error>

namespace pageio {

// Alignment that O_DIRECT I/O on a file needs: buffer address, and file
// offset and length. From statx(STATX_DIOALIGN) where the kernel reports it,
// otherwise the logical block size of the device.
struct dio_alignment {
  std::uint32_t memory = 512;
  std::uint32_t offset = 512;
  bool from_statx = false;
};
// Throws std::system_error (with the errno) if the fd cannot be inspected.
dio_alignment query_dio_alignment(int fd);

struct open_options {
  bool direct = true;      // O_DIRECT: bypass the page cache
  bool writable = true;    // O_RDWR, else O_RDONLY
  bool create = false;     // O_CREAT
  bool truncate = false;   // O_TRUNC
  bool exclusive = false;  // O_EXCL (with create): fail with EEXIST if it exists
  mode_t mode = 0644;
};

// An open file descriptor that knows its path and direct-I/O alignment. Move-only;
// closes the fd on destruction.
class file {
 public:
  file() noexcept = default;
  // Throws std::system_error whose message names the path and, when the file
  // system has no O_DIRECT (tmpfs), says so and what to do. Only regular
  // files and block devices: anything else (a directory, a FIFO, a socket, a
  // character device) is EINVAL, found without blocking (a FIFO is opened
  // non-blocking, then refused).
  static file open(const std::filesystem::path& path, const open_options& opts = {});

  file(file&& o) noexcept;
  file& operator=(file&& o) noexcept;
  file(const file&) = delete;
  file& operator=(const file&) = delete;
  ~file();

  int fd() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }
  bool direct() const noexcept { return direct_; }
  const std::filesystem::path& path() const noexcept { return path_; }
  const dio_alignment& alignment() const noexcept { return align_; }
  // Current size from fstat. Throws std::system_error.
  std::uint64_t size() const;
  void close() noexcept;
  // Gives up ownership without closing, as unique_ptr::release: returns the
  // descriptor (-1 if none), which the caller must now close, and leaves this
  // object closed (is_open() false; path() and alignment() stay).
  int release() noexcept;

  // Whether (buffer, length, offset) suit this file; for a direct file a
  // misfit returns EINVAL and, when `why` is given, says which part is off.
  std::error_code check_io(const void* buf, std::size_t length, std::uint64_t offset,
                           std::string* why = nullptr) const;

 private:
  int fd_ = -1;
  bool direct_ = false;
  std::filesystem::path path_;
  dio_alignment align_;
};

// "tmpfs" or "ramfs" when `path` (or, if it does not exist yet, its nearest
// existing ancestor) is on a file system that keeps files in memory; empty
// otherwise. Since Linux 6.6 tmpfs accepts O_DIRECT, so trying it no longer
// tells memory from a disk.
std::string memory_file_system(const std::filesystem::path& path);

// Whether `dir` is on a disk file system whose files open with O_DIRECT,
// found by trying; memory file systems (tmpfs, ramfs) count as no, even where
// the kernel accepts O_DIRECT on them. `why` receives the reason when not.
bool supports_direct_io(const std::filesystem::path& dir, std::string* why = nullptr);

// Creates or extends `path` to `size_bytes` by writing it (not only
// fallocate: unwritten extents make O_DIRECT writes and io_submit block).
// Existing data below the old size is kept. Throws std::system_error.
// `progress`, when given, is called now and then with (bytes written, bytes to write).
void ensure_file_written(const std::filesystem::path& path, std::uint64_t size_bytes,
                         const std::function<void(std::uint64_t, std::uint64_t)>& progress = {});

}  // namespace pageio
