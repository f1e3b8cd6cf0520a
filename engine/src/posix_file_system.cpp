// The file system as the kernel offers it: each operation one system call
// (or a loop of them), its errno converted once into std::system_error
// naming the operation and the path.
#include <pageio/engine/file_system.hpp>

#include <pageio/engine/aligned_buffer.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>

namespace pageio {

namespace {

[[noreturn]] void fail(int err, const std::string& what) { throw std::system_error(err, std::system_category(), what); }

file_type type_of(mode_t m) noexcept {
  if (S_ISREG(m)) return file_type::regular;
  if (S_ISDIR(m)) return file_type::directory;
  return file_type::other;
}

class posix_fs final : public file_system {
 public:
  std::string name() const override { return "posix"; }

  file open(const std::filesystem::path& path, const open_options& opts) override {
    file f = file::open(path, opts);
    struct stat st {};
    if (::fstat(f.fd(), &st) != 0) fail(errno, "fstat " + path.string());
    if (!S_ISREG(st.st_mode)) fail(EINVAL, path.string() + " is a device, not a regular file");
    return f;
  }

  void write_zeros(const file& f, std::uint64_t from, std::uint64_t to) override {
    constexpr std::size_t chunk = 1 << 20;
    if (f.direct() && (from % 4096 != 0 || to % 4096 != 0)) {
      fail(EINVAL, "writing zeros to " + f.path().string() + ": [" + std::to_string(from) + ", " +
                       std::to_string(to) + ") is not 4096-aligned, which O_DIRECT requires");
    }
    if (from >= to) return;
    const std::size_t n_alloc = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, to - from));
    const std::size_t alloc = (n_alloc + 4095) & ~std::size_t{4095};
    const aligned_buffer zeros(alloc, 4096);  // zero-filled
    while (from < to) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(alloc, to - from));
      const ssize_t w = ::pwrite(f.fd(), zeros.data(), n, static_cast<off_t>(from));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) fail(errno, "writing zeros to " + f.path().string() + " at byte offset " + std::to_string(from));
      if (w == 0) fail(EIO, "writing zeros to " + f.path().string() + ": no progress at byte offset " + std::to_string(from));
      from += static_cast<std::uint64_t>(w);
    }
  }

  std::size_t read(const file& f, void* buf, std::size_t n, std::uint64_t offset) override {
    std::size_t got = 0;
    auto* p = static_cast<char*>(buf);
    while (got < n) {
      const ssize_t r = ::pread(f.fd(), p + got, n - got, static_cast<off_t>(offset + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) fail(errno, "reading " + f.path().string() + " at byte offset " + std::to_string(offset + got));
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    return got;
  }

  void write(const file& f, const void* buf, std::size_t n, std::uint64_t offset) override {
    if (f.direct() && (offset % 4096 != 0 || n % 4096 != 0 || reinterpret_cast<std::uintptr_t>(buf) % 4096 != 0)) {
      fail(EINVAL, "writing " + std::to_string(n) + " bytes to " + f.path().string() + " at byte offset " +
                       std::to_string(offset) + ": not 4096-aligned (buffer, length and offset), which O_DIRECT requires");
    }
    const auto* p = static_cast<const char*>(buf);
    std::size_t done = 0;
    while (done < n) {
      const ssize_t w = ::pwrite(f.fd(), p + done, n - done, static_cast<off_t>(offset + done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) fail(errno, "writing " + f.path().string() + " at byte offset " + std::to_string(offset + done));
      if (w == 0) fail(EIO, "writing " + f.path().string() + ": no progress at byte offset " + std::to_string(offset + done));
      done += static_cast<std::size_t>(w);
    }
  }

  void truncate(const file& f, std::uint64_t size_bytes) override {
    if (::ftruncate(f.fd(), static_cast<off_t>(size_bytes)) != 0) {
      fail(errno, "truncating " + f.path().string() + " to " + std::to_string(size_bytes) + " bytes");
    }
  }

  void sync(const file& f, bool data_only) override {
    const int rc = data_only ? ::fdatasync(f.fd()) : ::fsync(f.fd());
    if (rc != 0) fail(errno, std::string(data_only ? "fdatasync " : "fsync ") + f.path().string());
  }

  void rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) fail(errno, "renaming " + from.string() + " to " + to.string());
  }

  void unlink(const std::filesystem::path& path) override {
    if (::unlink(path.c_str()) != 0) fail(errno, "unlinking " + path.string());
  }

  bool create_directory(const std::filesystem::path& path) override {
    if (::mkdir(path.c_str(), 0755) == 0) return true;
    const int err = errno;
    struct stat st {};
    if (err == EEXIST && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return false;
    if (err == EEXIST) fail(ENOTDIR, "creating directory " + path.string() + ": something other than a directory is there");
    fail(err, "creating directory " + path.string());
  }

  void sync_directory(const std::filesystem::path& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail(errno, "opening directory " + dir.string() + " to sync it");
    const int rc = ::fsync(fd);
    const int err = errno;  // before close() can change it
    ::close(fd);
    if (rc != 0) fail(err, "fsync of directory " + dir.string());
  }

  std::vector<dir_entry> list(const std::filesystem::path& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail(errno, "opening directory " + dir.string());
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      const int err = errno;
      ::close(fd);
      fail(err, "reading directory " + dir.string());
    }
    std::vector<dir_entry> out;
    for (;;) {
      errno = 0;
      const dirent* e = ::readdir(d);
      if (e == nullptr) {
        const int err = errno;
        ::closedir(d);
        if (err != 0) fail(err, "reading directory " + dir.string());
        return out;
      }
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      dir_entry de;
      de.name = e->d_name;
      struct stat st {};
      if (::fstatat(fd, e->d_name, &st, 0) == 0) {
        de.type = type_of(st.st_mode);
      } else if (errno != ENOENT) {  // gone meanwhile: skip it
        const int err = errno;
        ::closedir(d);
        fail(err, "stat " + (dir / e->d_name).string());
      } else {
        continue;
      }
      out.push_back(std::move(de));
    }
  }

  std::optional<file_status> stat(const std::filesystem::path& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return std::nullopt;
      fail(errno, "stat " + path.string());
    }
    return file_status{type_of(st.st_mode), static_cast<std::uint64_t>(st.st_size)};
  }
};

}  // namespace

std::shared_ptr<file_system> posix_file_system() {
  static const std::shared_ptr<file_system> fs = std::make_shared<posix_fs>();
  return fs;
}

void create_directories_durably(file_system& fs, const std::filesystem::path& dir) {
  const std::filesystem::path abs = dir.is_absolute() ? dir : std::filesystem::absolute(dir);
  // The nearest existing ancestor, then each missing component in turn.
  std::vector<std::filesystem::path> missing;
  std::filesystem::path p = abs.lexically_normal();
  if (p.has_relative_path() && !p.has_filename()) p = p.parent_path();  // trailing slash
  for (;;) {
    const auto st = fs.stat(p);
    if (st) {
      if (st->type != file_type::directory) {
        throw std::system_error(ENOTDIR, std::system_category(),
                                "creating directory " + dir.string() + ": " + p.string() + " is not a directory");
      }
      break;
    }
    missing.push_back(p);
    if (p == p.root_path() || !p.has_parent_path()) break;
    p = p.parent_path();
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (fs.create_directory(*it)) fs.sync_directory(it->parent_path());
  }
}

}  // namespace pageio
