// The crash model that crash_backend and crash_file_system share (see
// crash_file_system.hpp for what it promises): the writes no durability
// point covers, each file's durable and current size, the namespace
// operations no directory sync covers, and settle(), which rewrites the disk
// as a power cut could have left it.
//
// Like PostgreSQL's buf_table.c, the routines here do no locking of their
// own: every caller holds `mu` around every call and every field access.
// Files are known by (dev, inode); the state keeps one buffered descriptor
// per file it tracks, which also keeps an unlinked or replaced file readable
// until settle() has decided whether it comes back.
#pragma once

#include <pageio/engine/crash_backend.hpp>

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace pageio::detail {

class crash_state {
 public:
  using inode_key = std::pair<dev_t, ino_t>;

  crash_state() = default;
  crash_state(const crash_state&) = delete;
  crash_state& operator=(const crash_state&) = delete;
  ~crash_state();  // closes the tracked descriptors

  std::mutex mu;  // held by the caller around everything below

  // --- power -------------------------------------------------------------
  bool cut = false;
  // Settles so far. A backend attached in an earlier epoch stays dead.
  std::uint64_t epoch = 0;
  bool dead(std::uint64_t attached_epoch) const noexcept { return cut || epoch != attached_epoch; }

  // --- data and sizes ------------------------------------------------------
  struct tracked_file {
    int fd = -1;  // our own buffered descriptor (O_RDWR, or O_RDONLY where refused)
    std::uint64_t durable_size = 0;
    std::uint64_t current_size = 0;
  };
  // The file behind a caller's descriptor, tracked from now on: its size now
  // counts as durable. Throws std::system_error.
  tracked_file& track_fd(int fd, inode_key* key);
  // The regular file at `path` (not following a final symlink), tracked;
  // empty when nothing or something else is there. Throws std::system_error.
  std::optional<inode_key> track_path(const std::filesystem::path& path);
  // A file the model saw created: nothing of it is durable yet.
  void mark_created(const inode_key& key);

  // A write of `data` (or, with `zeros`, of `zero_bytes` zeros) at `offset`
  // is about to run on the file behind `fd`: remembers what it replaces and
  // grows the current size. Returns its sequence number. Throws
  // std::system_error when the old bytes cannot be read.
  std::uint64_t begin_write(int fd, std::uint64_t offset, std::span<const iovec> data, bool zeros = false,
                            std::uint64_t zero_bytes = 0);
  // The write finished: `n` bytes landed (a short round keeps only those);
  // with `dsync` it is durable, and so is the current size.
  void complete_write(std::uint64_t seq, std::size_t n, bool dsync);
  // The file behind `fd` is about to shrink or grow to `size_bytes`: a
  // shrink keeps the bytes it removes, so that undoing it can restore them.
  // Returns a token for finish_truncate().
  std::uint64_t begin_truncate(int fd, std::uint64_t size_bytes);
  void finish_truncate(std::uint64_t token, int fd, std::uint64_t size_bytes, bool ok);

  // A flush of the file behind `fd`: the writes completed by now and the
  // current size, which it makes durable if it succeeds.
  struct flush_ticket {
    inode_key key{};
    std::vector<std::uint64_t> covers;
    std::uint64_t size_bytes = 0;
  };
  flush_ticket begin_flush(int fd);
  void complete_flush(const flush_ticket& t);

  // Backend requests between before_submit and after_complete, by shadow.
  struct in_flight_op {
    const void* owner = nullptr;  // the crash_backend
    bool is_flush = false;
    std::uint64_t seq = 0;        // the write
    flush_ticket flush;           // the flush
  };
  std::map<const void*, in_flight_op> in_flight;
  void forget_owner(const void* owner);

  // Writes (write_zeros included) no completed durability point covers.
  std::size_t unstable_writes() const;

  // --- names ---------------------------------------------------------------
  struct node {
    inode_key key{};
    bool directory = false;
    bool operator==(const node&) const = default;
  };
  enum class name_op_kind : std::uint8_t { create, create_directory, rename, unlink };
  // A created, renamed or unlinked name. Paths are absolute and normal.
  // `from_dir`/`to_dir` identify the directories holding them; the operation
  // is covered once each of them was synced after it.
  struct name_op {
    name_op_kind kind = name_op_kind::create;
    std::string from, to;  // create, create_directory, unlink: `to` only
    node target;           // what was created, renamed or unlinked
    inode_key from_dir{}, to_dir{};
    bool from_synced = false, to_synced = false;
  };
  // Records an operation that just happened. `before` gives, for every path
  // it touches, what was there before it (the model's first sight of a name).
  void record_name_op(name_op op, const std::vector<std::pair<std::string, std::optional<node>>>& before);
  // Operations no directory sync covers yet.
  std::size_t unstable_names() const;
  // sync_directory(dir) succeeded: covers the operations touching it.
  void directory_synced(const inode_key& dir);
  // A directory was renamed, which the model does not undo: everything
  // recorded under either path counts as covered.
  void cover_paths_under(const std::string& from, const std::string& to);

  // --- settle ----------------------------------------------------------------
  // After cut: rewrites the disk as the cut could have left it (data, then
  // sizes, then names), makes it durable, forgets everything and powers on
  // again (epoch + 1). Throws std::logic_error before the cut or with
  // requests in flight, std::system_error when the disk cannot be rewritten.
  crash_report settle(std::uint64_t seed);

 private:
  enum class record_kind : std::uint8_t { write, zeros, truncate };
  struct write_record {
    record_kind kind = record_kind::write;
    inode_key key{};
    std::uint64_t offset = 0, length = 0;
    // What the range held before: its first old_data.size() bytes; the rest
    // lay past the end of the file and counts as zeros. For a truncate: the
    // bytes the shrink removed.
    std::vector<std::uint8_t> old_data;
    std::vector<std::uint8_t> new_data;  // kind write only
    bool completed = false;
  };

  std::uint64_t add_record(write_record rec);
  void settle_data(std::uint64_t& rng, crash_report& rep);
  void settle_sizes(std::uint64_t& rng, crash_report& rep);
  void settle_names(std::uint64_t& rng, crash_report& rep);
  void reset();

  std::uint64_t next_seq_ = 1;
  std::map<inode_key, tracked_file> files_;
  std::map<std::uint64_t, write_record> unstable_;  // by seq
  // What each touched path held before the first operation still listed;
  // nullopt: nothing.
  std::map<std::string, std::optional<node>> initial_;
  std::vector<name_op> ops_;  // in the order they happened
};

}  // namespace pageio::detail
