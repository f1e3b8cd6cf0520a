// Everything a storage component does to files that is not a data transfer
// through an io_backend: creating and opening files, preallocating them by
// writing zeros, copying bytes in (an archived log segment), renaming, unlinking, truncating, fsync of files and of
// directories, listing and stat (LevelDB's Env is the model). The log's
// segment lifecycle and reader and the page cache's data files go through
// it, so the crash-simulating and fault-injecting wrappers
// (crash_file_system, fault_file_system) see every such step.
//
// Errors: every operation throws std::system_error carrying the errno and a
// message naming the operation and the path. Nothing is retried: a failed
// sync in particular is reported once, never turned into a later success.
//
// Durability (POSIX, and what crash_file_system models): a created, renamed
// or unlinked name is durable only after sync_directory() of the directory
// that holds it; a file's new size and the zeros write_zeros() or the bytes
// write() wrote only after sync() of the file (or an io_backend flush / RWF_DSYNC write of it).
#pragma once

#include <pageio/engine/file.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pageio {

enum class file_type : std::uint8_t { regular, directory, other };

struct file_status {
  file_type type = file_type::other;
  std::uint64_t size_bytes = 0;
};

struct dir_entry {
  std::string name;
  file_type type = file_type::other;
};

class file_system {
 public:
  virtual ~file_system() = default;

  // "posix", or a wrapper's prefix and its inner file system's name.
  virtual std::string name() const = 0;

  // Opens (and with opts.create, creates) a regular file. Anything else at
  // `path` (a directory, a FIFO, a device) is refused with EINVAL and a
  // message saying what it is, without blocking. See file::open for O_DIRECT.
  virtual file open(const std::filesystem::path& path, const open_options& opts) = 0;
  // Writes zeros over [from, to) of `f`, extending it if needed:
  // preallocation by writing, so later O_DIRECT writes allocate nothing.
  // On a direct file both ends must be multiples of 4096.
  virtual void write_zeros(const file& f, std::uint64_t from, std::uint64_t to) = 0;
  // Reads up to `n` bytes at `offset`; fewer only at the end of the file.
  virtual std::size_t read(const file& f, void* buf, std::size_t n, std::uint64_t offset) = 0;
  // Writes all `n` bytes of `buf` at `offset`, extending the file if needed
  // (a copy made outside an io_backend: a log segment archived). On a
  // direct file, `buf`, `n` and `offset` must be 4096-aligned.
  virtual void write(const file& f, const void* buf, std::size_t n, std::uint64_t offset) = 0;
  // Sets the file's size (ftruncate).
  virtual void truncate(const file& f, std::uint64_t size_bytes) = 0;
  // fdatasync (data_only) or fsync of the file.
  virtual void sync(const file& f, bool data_only = true) = 0;

  // rename(2): replaces `to` atomically if it exists.
  virtual void rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
  virtual void unlink(const std::filesystem::path& path) = 0;
  // mkdir(2); false when a directory is there already.
  virtual bool create_directory(const std::filesystem::path& path) = 0;
  // fsync of the directory: makes the names created, renamed and unlinked
  // in it durable.
  virtual void sync_directory(const std::filesystem::path& dir) = 0;
  // The entries of `dir` (not "." and ".."), in no particular order; the
  // type is that of what a name points to.
  virtual std::vector<dir_entry> list(const std::filesystem::path& dir) = 0;
  // What is at `path` (following symlinks); empty when nothing is.
  virtual std::optional<file_status> stat(const std::filesystem::path& path) = 0;
};

// The file system of this process: the system calls, converted to
// std::system_error with the path. One shared instance.
std::shared_ptr<file_system> posix_file_system();

// Creates `dir` and its missing parents; after each directory it creates,
// syncs the directory that holds it, so the new names are durable. Throws
// std::system_error (naming the path) when a component is not a directory.
void create_directories_durably(file_system& fs, const std::filesystem::path& dir);

// A delegating file_system (LevelDB's EnvWrapper): every call goes to
// `inner`; a wrapper overrides what it changes.
class forwarding_file_system : public file_system {
 public:
  explicit forwarding_file_system(std::shared_ptr<file_system> inner) : inner_(std::move(inner)) {}
  file_system& inner() noexcept { return *inner_; }

  std::string name() const override { return inner_->name(); }
  file open(const std::filesystem::path& path, const open_options& opts) override { return inner_->open(path, opts); }
  void write_zeros(const file& f, std::uint64_t from, std::uint64_t to) override { inner_->write_zeros(f, from, to); }
  std::size_t read(const file& f, void* buf, std::size_t n, std::uint64_t offset) override {
    return inner_->read(f, buf, n, offset);
  }
  void write(const file& f, const void* buf, std::size_t n, std::uint64_t offset) override {
    inner_->write(f, buf, n, offset);
  }
  void truncate(const file& f, std::uint64_t size_bytes) override { inner_->truncate(f, size_bytes); }
  void sync(const file& f, bool data_only) override { inner_->sync(f, data_only); }
  void rename(const std::filesystem::path& from, const std::filesystem::path& to) override { inner_->rename(from, to); }
  void unlink(const std::filesystem::path& path) override { inner_->unlink(path); }
  bool create_directory(const std::filesystem::path& path) override { return inner_->create_directory(path); }
  void sync_directory(const std::filesystem::path& dir) override { inner_->sync_directory(dir); }
  std::vector<dir_entry> list(const std::filesystem::path& dir) override { return inner_->list(dir); }
  std::optional<file_status> stat(const std::filesystem::path& path) override { return inner_->stat(path); }

 protected:
  std::shared_ptr<file_system> inner_;
};

}  // namespace pageio
