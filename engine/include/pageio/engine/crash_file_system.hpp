// A file system that runs every operation on another one and, with the
// crash_backends it wraps, simulates a power cut (LevelDB's
// fault_injection_test, for data, sizes and names together). One model is
// shared by this file system and every backend from wrap(): one cut_power()
// and one settle(seed), called on any of them, cover everything.
//
// The model. Files are known by (dev, inode) throughout.
//  - Data: a write through an attached backend, or write_zeros() here, is
//    remembered with the bytes it replaced until a durability point of its
//    file covers it: a backend fdatasync/fsync covers the writes of its file
//    completed when it was submitted, an io_flags::dsync write covers itself,
//    and sync() here covers every completed write of the file, whichever
//    backend or file system made it. At settle each uncovered write is
//    dropped, applied, or torn at 512-byte sectors, in a random order.
//  - Sizes: each file has a durable and a current size. The size a file had
//    when the model first saw it is durable (a file created here: 0); writes
//    past the end, write_zeros() and truncate() change the current size, and
//    a successful durability point of the file makes it durable (a backend
//    flush: the size when it was submitted). At settle each file whose sizes
//    differ keeps the current one or goes back to the durable one; growing
//    back after an undone shrink restores the bytes the shrink removed,
//    bytes a revert cuts off are gone.
//  - Names: every create (an open that made a new file), create_directory
//    that made a directory, rename and unlink done here joins an ordered
//    list of uncovered operations; sync_directory(d) covers the operations
//    touching d (a rename between two directories once both were synced).
//    What a name held before the first listed operation touching it is
//    durable. At settle each uncovered operation is independently kept or
//    undone; the namespace left is the durable one with the covered and
//    kept operations replayed in order, skipping one whose source is gone
//    in that replay (a kept rename of a file whose create was undone) or
//    whose directory is. A name whose create was undone is unlinked (a
//    directory, with its contents); an undone rename puts the file back
//    under its old name and what it replaced back under the new one; an
//    undone unlink brings the file back. A file comes back as a new file
//    with the bytes the model kept of it (the model holds a descriptor to
//    every file a rename replaces or an unlink removes).
//  - Order at settle: data, then sizes, then names. settle() then fsyncs the
//    files it tracked and the directories it changed, forgets everything
//    (what is on disk now is durable) and powers the model on again: this
//    file system works again and can be cut again, so one instance serves
//    crash, recover, crash again on the same directory. Backends attached
//    before settle() stay dead (every request -EIO); wrap new ones.
//  - After cut_power(), every operation here throws std::system_error with
//    EIO and changes nothing, as the backends complete with -EIO.
//
// Limits (what a test relies on):
//  - what the model saw is all that happened: files, sizes and names changed
//    behind its back (not through this file system or an attached backend)
//    are not undone (a size found changed at settle counts as durable), and
//    a name changed behind its back between an operation and settle() may
//    be realised wrongly;
//  - only regular files and directories are modelled; renaming or unlinking
//    anything else (a symlink, a FIFO) is passed through and counts as
//    durable at once;
//  - a directory rename is passed through and counts as durable at once,
//    and so does every operation already recorded under either of its paths;
//    directories are never removed except by undoing their creation;
//  - paths are compared as written, made absolute and lexically normal: reach
//    a directory by one spelling (no symlinks in between);
//  - a file brought back is a copy (a new inode), and a file kept only by
//    an open descriptor of the caller is not a name: data written through
//    such a descriptor is settled, but nothing creates a name for it;
//  - operations hold the model's lock while they run, so a long write_zeros
//    or sync delays the attached backends' submissions and completions;
//  - the model keeps every uncovered write's old and new bytes in memory
//    (write_zeros keeps only the old ones), and a truncate the bytes it
//    removed, until a durability point or settle().
#pragma once

#include <pageio/engine/backend.hpp>
#include <pageio/engine/crash_backend.hpp>
#include <pageio/engine/file_system.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace pageio {

class crash_file_system final : public forwarding_file_system {
 public:
  explicit crash_file_system(std::shared_ptr<file_system> inner = posix_file_system());
  ~crash_file_system() override;

  // "crash+" and the inner file system's name.
  std::string name() const override;

  // A crash_backend over `inner` that shares this file system's model. It
  // may outlive the file system.
  std::unique_ptr<crash_backend> wrap(std::unique_ptr<io_backend> inner);

  // The power goes out now, for this file system and every backend sharing
  // its model. Safe from any thread.
  void cut_power();
  bool power_cut() const;
  // Writes (write_zeros included) not covered by a completed durability
  // point, of the whole model. Safe from any thread.
  std::size_t unstable_writes() const;
  // Namespace operations no directory sync covers yet.
  std::size_t unstable_names() const;

  // After cut_power(), with nothing in flight on any attached backend:
  // rewrites the disk as the cut could have left it, choosing with `seed`,
  // makes that durable and powers the model on again. Throws
  // std::logic_error before cut_power() or with a write or flush in flight,
  // std::system_error when the disk cannot be rewritten.
  crash_report settle(std::uint64_t seed);

  file open(const std::filesystem::path& path, const open_options& opts) override;
  void write_zeros(const file& f, std::uint64_t from, std::uint64_t to) override;
  std::size_t read(const file& f, void* buf, std::size_t n, std::uint64_t offset) override;
  void write(const file& f, const void* buf, std::size_t n, std::uint64_t offset) override;
  void truncate(const file& f, std::uint64_t size_bytes) override;
  void sync(const file& f, bool data_only = true) override;
  void rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
  void unlink(const std::filesystem::path& path) override;
  bool create_directory(const std::filesystem::path& path) override;
  void sync_directory(const std::filesystem::path& dir) override;
  std::vector<dir_entry> list(const std::filesystem::path& dir) override;
  std::optional<file_status> stat(const std::filesystem::path& path) override;

 private:
  std::shared_ptr<detail::crash_state> state_;
};

}  // namespace pageio
