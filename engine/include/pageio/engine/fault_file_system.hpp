// A file system that runs every operation on another one and injects the
// errors a real one produces rarely and never on demand: EIO, ENOSPC and
// EACCES from any operation (fault_backend's counterpart for what is not a
// data transfer). Random faults follow a seed and a rate per errno, limited
// to the operations named in a mask; deterministic ones are queued with
// fail_next() and come first.
//
// An injected fault is thrown before the inner file system is called: the
// operation did not happen (a failed rename leaves the old name, a failed
// unlink the file, a failed sync covers nothing). Every method is safe from
// any thread.
#pragma once

#include <pageio/engine/file_system.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

namespace pageio {

// The operations of file_system, one bit each in fs_fault_options::ops.
enum class fs_op : std::uint8_t {
  open,
  write_zeros,
  read,
  truncate,
  sync,
  rename,
  unlink,
  create_directory,
  sync_directory,
  list,
  stat,
  write,
};
inline constexpr std::size_t fs_op_count = 12;

constexpr std::uint32_t fs_op_mask(fs_op op) noexcept { return std::uint32_t{1} << static_cast<unsigned>(op); }
inline constexpr std::uint32_t all_fs_ops = (std::uint32_t{1} << fs_op_count) - 1;

// "open", "write_zeros", ...: the name an injected fault's message starts with.
const char* to_string(fs_op op) noexcept;

struct fs_fault_options {
  std::uint64_t seed = 1;
  // Each operation whose bit is in `ops` fails with EIO with probability
  // `eio` (0..1), else with ENOSPC with probability `enospc`, else with
  // EACCES with probability `eacces`. A rate of 0 draws nothing from the
  // generator, so adding an errno does not change when the others strike.
  double eio = 0;
  double enospc = 0;
  double eacces = 0;
  std::uint32_t ops = all_fs_ops;
};

class fault_file_system final : public forwarding_file_system {
 public:
  explicit fault_file_system(std::shared_ptr<file_system> inner = posix_file_system(),
                             const fs_fault_options& opts = {});

  // "fault+" and the inner file system's name.
  std::string name() const override;

  // Replaces the options; a new seed restarts the generator.
  void set_options(const fs_fault_options& opts);
  // The next `count` operations of kind `op` fail with `err`, before any
  // random fault and whatever `ops` says.
  void fail_next(fs_op op, int err, unsigned count = 1);

  // Faults injected so far, by operation and by errno.
  struct counters {
    std::array<std::uint64_t, fs_op_count> by_op{};
    std::uint64_t eio = 0, enospc = 0, eacces = 0, other = 0;
    std::uint64_t total() const noexcept { return eio + enospc + eacces + other; }
    std::uint64_t of(fs_op op) const noexcept { return by_op[static_cast<std::size_t>(op)]; }
  };
  counters injected() const;

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
  // Throws std::system_error(err, "<op> <what>: injected fault") when a
  // queued or random fault hits this operation; returns otherwise.
  void maybe_fail(fs_op op, const std::string& what);
  double uniform();  // [0, 1), from the seeded generator

  mutable std::mutex mu_;  // guards everything below
  fs_fault_options opts_;
  std::uint64_t rng_state_;
  struct queued_fault {
    fs_op op;
    int err;
  };
  std::deque<queued_fault> next_;
  counters counters_;
};

}  // namespace pageio
