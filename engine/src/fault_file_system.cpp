#include <pageio/engine/fault_file_system.hpp>

#include <pageio/engine/detail/splitmix64.hpp>

#include <cerrno>
#include <system_error>

namespace pageio {

const char* to_string(fs_op op) noexcept {
  switch (op) {
    case fs_op::open: return "open";
    case fs_op::write_zeros: return "write_zeros";
    case fs_op::read: return "read";
    case fs_op::truncate: return "truncate";
    case fs_op::sync: return "sync";
    case fs_op::rename: return "rename";
    case fs_op::unlink: return "unlink";
    case fs_op::create_directory: return "create_directory";
    case fs_op::sync_directory: return "sync_directory";
    case fs_op::list: return "list";
    case fs_op::stat: return "stat";
    case fs_op::write: return "write";
  }
  return "?";
}

fault_file_system::fault_file_system(std::shared_ptr<file_system> inner, const fs_fault_options& opts)
    : forwarding_file_system(std::move(inner)), opts_(opts), rng_state_(opts.seed) {}

std::string fault_file_system::name() const { return "fault+" + inner_->name(); }

void fault_file_system::set_options(const fs_fault_options& opts) {
  std::lock_guard lock(mu_);
  if (opts.seed != opts_.seed) rng_state_ = opts.seed;
  opts_ = opts;
}

void fault_file_system::fail_next(fs_op op, int err, unsigned count) {
  std::lock_guard lock(mu_);
  for (unsigned i = 0; i < count; ++i) next_.push_back({op, err});
}

fault_file_system::counters fault_file_system::injected() const {
  std::lock_guard lock(mu_);
  return counters_;
}

double fault_file_system::uniform() {
  return detail::splitmix64_unit(rng_state_);
}

void fault_file_system::maybe_fail(fs_op op, const std::string& what) {
  int err = 0;
  {
    std::lock_guard lock(mu_);
    for (auto it = next_.begin(); it != next_.end(); ++it) {
      if (it->op == op) {
        err = it->err;
        next_.erase(it);
        break;
      }
    }
    if (err == 0 && (opts_.ops & fs_op_mask(op)) != 0) {
      if (opts_.eio > 0 && uniform() < opts_.eio) {
        err = EIO;
      } else if (opts_.enospc > 0 && uniform() < opts_.enospc) {
        err = ENOSPC;
      } else if (opts_.eacces > 0 && uniform() < opts_.eacces) {
        err = EACCES;
      }
    }
    if (err == 0) return;
    ++counters_.by_op[static_cast<std::size_t>(op)];
    switch (err) {
      case EIO: ++counters_.eio; break;
      case ENOSPC: ++counters_.enospc; break;
      case EACCES: ++counters_.eacces; break;
      default: ++counters_.other; break;
    }
  }
  throw std::system_error(err, std::system_category(), std::string(to_string(op)) + " " + what + ": injected fault");
}

file fault_file_system::open(const std::filesystem::path& path, const open_options& opts) {
  maybe_fail(fs_op::open, path.string());
  return inner_->open(path, opts);
}

void fault_file_system::write_zeros(const file& f, std::uint64_t from, std::uint64_t to) {
  maybe_fail(fs_op::write_zeros, f.path().string());
  inner_->write_zeros(f, from, to);
}

std::size_t fault_file_system::read(const file& f, void* buf, std::size_t n, std::uint64_t offset) {
  maybe_fail(fs_op::read, f.path().string());
  return inner_->read(f, buf, n, offset);
}

void fault_file_system::write(const file& f, const void* buf, std::size_t n, std::uint64_t offset) {
  maybe_fail(fs_op::write, f.path().string());
  inner_->write(f, buf, n, offset);
}

void fault_file_system::truncate(const file& f, std::uint64_t size_bytes) {
  maybe_fail(fs_op::truncate, f.path().string());
  inner_->truncate(f, size_bytes);
}

void fault_file_system::sync(const file& f, bool data_only) {
  maybe_fail(fs_op::sync, f.path().string());
  inner_->sync(f, data_only);
}

void fault_file_system::rename(const std::filesystem::path& from, const std::filesystem::path& to) {
  maybe_fail(fs_op::rename, from.string() + " to " + to.string());
  inner_->rename(from, to);
}

void fault_file_system::unlink(const std::filesystem::path& path) {
  maybe_fail(fs_op::unlink, path.string());
  inner_->unlink(path);
}

bool fault_file_system::create_directory(const std::filesystem::path& path) {
  maybe_fail(fs_op::create_directory, path.string());
  return inner_->create_directory(path);
}

void fault_file_system::sync_directory(const std::filesystem::path& dir) {
  maybe_fail(fs_op::sync_directory, dir.string());
  inner_->sync_directory(dir);
}

std::vector<dir_entry> fault_file_system::list(const std::filesystem::path& dir) {
  maybe_fail(fs_op::list, dir.string());
  return inner_->list(dir);
}

std::optional<file_status> fault_file_system::stat(const std::filesystem::path& path) {
  maybe_fail(fs_op::stat, path.string());
  return inner_->stat(path);
}

}  // namespace pageio
