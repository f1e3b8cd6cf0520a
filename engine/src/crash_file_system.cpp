// The file-system half of the crash model: every operation runs on the inner
// file system under the model's lock, so that the model records exactly
// what happened, in the order it happened, and a cut falls between two
// operations, never inside one.
#include <pageio/engine/crash_file_system.hpp>

#include <sys/stat.h>

#include <cerrno>
#include <mutex>
#include <system_error>

#include "crash_state.hpp"

namespace pageio {

namespace {

using detail::crash_state;

[[noreturn]] void powered_off(const std::string& what) {
  throw std::system_error(EIO, std::system_category(), what + ": the power is cut (crash_file_system)");
}

// Absolute, lexically normal, without a trailing separator: one spelling per
// name, so that replays can compare paths.
std::string normal(const std::filesystem::path& p) {
  std::string s = (p.is_absolute() ? p : std::filesystem::absolute(p)).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string parent_of(const std::string& p) { return std::filesystem::path(p).parent_path().string(); }

// The (dev, inode) of what is at `path` (following symlinks), if anything.
std::optional<crash_state::inode_key> key_of(const std::string& path, bool* directory = nullptr) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  if (directory != nullptr) *directory = S_ISDIR(st.st_mode);
  return crash_state::inode_key{st.st_dev, st.st_ino};
}

// What lstat says is at `path`: nothing, a regular file, a directory, or
// something else.
enum class kind { none, regular, directory, other };
kind kind_at(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return kind::none;
  if (S_ISREG(st.st_mode)) return kind::regular;
  if (S_ISDIR(st.st_mode)) return kind::directory;
  return kind::other;
}

}  // namespace

crash_file_system::crash_file_system(std::shared_ptr<file_system> inner)
    : forwarding_file_system(std::move(inner)), state_(std::make_shared<crash_state>()) {}

crash_file_system::~crash_file_system() = default;

std::string crash_file_system::name() const { return "crash+" + inner_->name(); }

std::unique_ptr<crash_backend> crash_file_system::wrap(std::unique_ptr<io_backend> inner) {
  return std::unique_ptr<crash_backend>(new crash_backend(std::move(inner), state_));
}

void crash_file_system::cut_power() {
  std::lock_guard lock(state_->mu);
  state_->cut = true;
}

bool crash_file_system::power_cut() const {
  std::lock_guard lock(state_->mu);
  return state_->cut;
}

std::size_t crash_file_system::unstable_writes() const {
  std::lock_guard lock(state_->mu);
  return state_->unstable_writes();
}

std::size_t crash_file_system::unstable_names() const {
  std::lock_guard lock(state_->mu);
  return state_->unstable_names();
}

crash_report crash_file_system::settle(std::uint64_t seed) {
  std::lock_guard lock(state_->mu);
  return state_->settle(seed);
}

file crash_file_system::open(const std::filesystem::path& path, const open_options& opts) {
  std::lock_guard lock(state_->mu);
  if (state_->cut) powered_off("open " + path.string());
  if (opts.create) {
    // O_EXCL first: then the model knows whether this open made the file.
    open_options excl = opts;
    excl.exclusive = true;
    excl.truncate = false;
    std::optional<file> made;
    try {
      made = inner_->open(path, excl);
    } catch (const std::system_error& e) {
      if (opts.exclusive || e.code() != std::errc::file_exists) throw;
    }
    if (made) {
      const std::string name = normal(path);
      crash_state::inode_key key{};
      state_->track_fd(made->fd(), &key);
      state_->mark_created(key);
      crash_state::name_op op;
      op.kind = crash_state::name_op_kind::create;
      op.to = name;
      op.target = {key, false};
      if (auto d = key_of(parent_of(name))) op.to_dir = *d;
      state_->record_name_op(std::move(op), {{name, std::nullopt}});
      return std::move(*made);
    }
  }
  open_options existing = opts;
  existing.create = false;
  existing.truncate = false;
  file f = inner_->open(path, existing);
  if (opts.truncate) {
    // O_TRUNC of an existing file is a shrink the model can undo.
    const std::uint64_t token = state_->begin_truncate(f.fd(), 0);
    try {
      inner_->truncate(f, 0);
    } catch (...) {
      state_->finish_truncate(token, f.fd(), 0, false);
      throw;
    }
    state_->finish_truncate(token, f.fd(), 0, true);
  }
  return f;
}

void crash_file_system::write_zeros(const file& f, std::uint64_t from, std::uint64_t to) {
  std::lock_guard lock(state_->mu);
  if (state_->cut) powered_off("writing zeros to " + f.path().string());
  if (from >= to || (f.direct() && (from % 4096 != 0 || to % 4096 != 0))) {
    inner_->write_zeros(f, from, to);  // nothing to write, or refused before writing
    return;
  }
  const std::uint64_t seq = state_->begin_write(f.fd(), from, {}, true, to - from);
  // A failure leaves the write uncovered and never completed: it may or may
  // not have reached the file, and settle() decides.
  inner_->write_zeros(f, from, to);
  state_->complete_write(seq, static_cast<std::size_t>(to - from), false);
}

void crash_file_system::write(const file& f, const void* buf, std::size_t n, std::uint64_t offset) {
  std::lock_guard lock(state_->mu);
  if (state_->cut) powered_off("writing " + f.path().string());
  if (n == 0 || (f.direct() && (offset % 4096 != 0 || n % 4096 != 0))) {
    inner_->write(f, buf, n, offset);  // nothing to write, or refused before writing
    return;
  }
  const iovec one{const_cast<void*>(buf), n};
  const std::uint64_t seq = state_->begin_write(f.fd(), offset, std::span<const iovec>(&one, 1));
  // As for write_zeros: a failure leaves the write uncovered and never
  // completed, and settle() decides what of it reached the file.
  inner_->write(f, buf, n, offset);
  state_->complete_write(seq, n, false);
}

std::size_t crash_file_system::read(const file& f, void* buf, std::size_t n, std::uint64_t offset) {
  std::lock_guard lock(state_->mu);
  if (state_->cut) powered_off("reading " + f.path().string());
  return inner_->read(f, buf, n, offset);
}

void crash_file_system::truncate(const file& f, std::uint64_t size_bytes) {
  std::lock_guard lock(state_->mu);
  if (state_->cut) powered_off("truncating " + f.path().string());
  const std::uint64_t token = state_->begin_truncate(f.fd(), size_bytes);
  try {
    inner_->truncate(f, size_bytes);
  } catch (...) {
    state_->finish_truncate(token, f.fd(), size_bytes, false);
    throw;
  }
  state_->finish_truncate(token, f.fd(), size_bytes, true);
}

void crash_file_system::sync(const file& f, bool data_only) {
  std::lock_guard lock(state_->mu);
  if (state_->cut) powered_off(std::string(data_only ? "fdatasync " : "fsync ") + f.path().string());
  const crash_state::flush_ticket t = state_->begin_flush(f.fd());
  inner_->sync(f, data_only);  // a failed sync covers nothing
  state_->complete_flush(t);
}

void crash_file_system::rename(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::lock_guard lock(state_->mu);
  if (state_->cut) powered_off("renaming " + from.string() + " to " + to.string());
  const std::string src = normal(from), dst = normal(to);
  const kind src_kind = kind_at(src), dst_kind = kind_at(dst);
  if (src_kind == kind::directory) {
    // Not undone (see the limits): whatever was recorded under either path
    // counts as durable.
    inner_->rename(from, to);
    state_->cover_paths_under(src, dst);
    return;
  }
  const auto src_dir = key_of(parent_of(src)), dst_dir = key_of(parent_of(dst));
  if (src_kind != kind::regular || (dst_kind != kind::none && dst_kind != kind::regular) || !src_dir || !dst_dir) {
    inner_->rename(from, to);  // not modelled, or bound to fail
    return;
  }
  const auto moved = state_->track_path(src);
  const auto replaced = dst_kind == kind::regular ? state_->track_path(dst) : std::nullopt;
  if (!moved || moved == replaced) {
    inner_->rename(from, to);  // hard links to one file: rename(2) does nothing
    return;
  }
  inner_->rename(from, to);
  crash_state::name_op op;
  op.kind = crash_state::name_op_kind::rename;
  op.from = src;
  op.to = dst;
  op.target = {*moved, false};
  op.from_dir = *src_dir;
  op.to_dir = *dst_dir;
  std::optional<crash_state::node> before_dst;
  if (replaced) before_dst = crash_state::node{*replaced, false};
  state_->record_name_op(std::move(op), {{src, crash_state::node{*moved, false}}, {dst, before_dst}});
}

void crash_file_system::unlink(const std::filesystem::path& path) {
  std::lock_guard lock(state_->mu);
  if (state_->cut) powered_off("unlinking " + path.string());
  const std::string name = normal(path);
  const auto dir = key_of(parent_of(name));
  const auto gone = kind_at(name) == kind::regular && dir ? state_->track_path(name) : std::nullopt;
  inner_->unlink(path);
  if (!gone) return;  // not modelled
  crash_state::name_op op;
  op.kind = crash_state::name_op_kind::unlink;
  op.to = name;
  op.target = {*gone, false};
  op.to_dir = *dir;
  state_->record_name_op(std::move(op), {{name, crash_state::node{*gone, false}}});
}

bool crash_file_system::create_directory(const std::filesystem::path& path) {
  std::lock_guard lock(state_->mu);
  if (state_->cut) powered_off("creating directory " + path.string());
  if (!inner_->create_directory(path)) return false;
  const std::string name = normal(path);
  bool is_dir = false;
  const auto key = key_of(name, &is_dir);
  const auto dir = key_of(parent_of(name));
  if (!key || !is_dir || !dir) return true;  // gone already: nothing to undo
  crash_state::name_op op;
  op.kind = crash_state::name_op_kind::create_directory;
  op.to = name;
  op.target = {*key, true};
  op.to_dir = *dir;
  state_->record_name_op(std::move(op), {{name, std::nullopt}});
  return true;
}

void crash_file_system::sync_directory(const std::filesystem::path& dir) {
  std::lock_guard lock(state_->mu);
  if (state_->cut) powered_off("fsync of directory " + dir.string());
  const auto key = key_of(normal(dir));
  inner_->sync_directory(dir);
  if (key) state_->directory_synced(*key);
}

std::vector<dir_entry> crash_file_system::list(const std::filesystem::path& dir) {
  std::lock_guard lock(state_->mu);
  if (state_->cut) powered_off("listing " + dir.string());
  return inner_->list(dir);
}

std::optional<file_status> crash_file_system::stat(const std::filesystem::path& path) {
  std::lock_guard lock(state_->mu);
  if (state_->cut) powered_off("stat " + path.string());
  return inner_->stat(path);
}

}  // namespace pageio
