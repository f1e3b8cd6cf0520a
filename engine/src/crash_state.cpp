#include "crash_state.hpp"

#include <pageio/engine/detail/splitmix64.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>

namespace pageio::detail {

namespace {

constexpr std::uint64_t sector = 512;

[[noreturn]] void fail(int err, const std::string& what) {
  throw std::system_error(err, std::system_category(), "crash model: " + what);
}

std::string describe(int fd) { return "file descriptor " + std::to_string(fd); }

void pwrite_all(int fd, const std::uint8_t* p, std::size_t n, std::uint64_t off) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(errno, "rewriting " + describe(fd) + " at byte offset " + std::to_string(off));
    }
    p += w;
    n -= static_cast<std::size_t>(w);
    off += static_cast<std::uint64_t>(w);
  }
}

void pwrite_zeros(int fd, std::uint64_t off, std::uint64_t n) {
  static const std::uint8_t zeros[64 * 1024] = {};
  while (n > 0) {
    const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(n, sizeof zeros));
    pwrite_all(fd, zeros, k, off);
    off += k;
    n -= k;
  }
}

// Up to n bytes at off; fewer only at the end of the file.
std::vector<std::uint8_t> pread_upto(int fd, std::uint64_t off, std::uint64_t n) {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(n));
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t r = ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(errno, "reading what a change replaces in " + describe(fd));
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  out.resize(got);
  return out;
}

std::uint64_t size_of(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(errno, "fstat of " + describe(fd));
  return static_cast<std::uint64_t>(st.st_size);
}

std::string parent_of(const std::string& p) { return std::filesystem::path(p).parent_path().string(); }

void fsync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return;  // removed with its parent
    fail(errno, "opening directory " + dir + " to sync it");
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail(err, "fsync of directory " + dir);
}

}  // namespace

crash_state::~crash_state() {
  for (auto& [key, f] : files_) ::close(f.fd);
}

crash_state::tracked_file& crash_state::track_fd(int fd, inode_key* key) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(errno, "fstat of " + describe(fd));
  *key = {st.st_dev, st.st_ino};
  auto [it, fresh] = files_.try_emplace(*key);
  if (fresh) {
    // Our own descriptor, without O_DIRECT, that outlives the caller's.
    const std::string self = "/proc/self/fd/" + std::to_string(fd);
    int own = ::open(self.c_str(), O_RDWR | O_CLOEXEC);
    if (own < 0 && (errno == EACCES || errno == EPERM || errno == EROFS)) own = ::open(self.c_str(), O_RDONLY | O_CLOEXEC);
    if (own < 0) {
      const int e = errno;
      files_.erase(it);
      fail(e, "reopening " + self);
    }
    it->second.fd = own;
    it->second.durable_size = it->second.current_size = static_cast<std::uint64_t>(st.st_size);
  }
  return it->second;
}

std::optional<crash_state::inode_key> crash_state::track_path(const std::filesystem::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    fail(errno, "lstat " + path.string());
  }
  if (!S_ISREG(st.st_mode)) return std::nullopt;
  if (auto it = files_.find({st.st_dev, st.st_ino}); it != files_.end()) return it->first;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS)) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  }
  if (fd < 0) fail(errno, "opening " + path.string() + " to keep it");
  inode_key key{};
  try {
    track_fd(fd, &key);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return key;
}

void crash_state::mark_created(const inode_key& key) {
  tracked_file& f = files_.at(key);
  f.durable_size = 0;
}

std::uint64_t crash_state::add_record(write_record rec) {
  const std::uint64_t seq = next_seq_++;
  unstable_.emplace(seq, std::move(rec));
  return seq;
}

std::uint64_t crash_state::begin_write(int fd, std::uint64_t offset, std::span<const iovec> data, bool zeros,
                                       std::uint64_t zero_bytes) {
  write_record rec;
  tracked_file& f = track_fd(fd, &rec.key);
  rec.kind = zeros ? record_kind::zeros : record_kind::write;
  rec.offset = offset;
  if (!zeros) {
    for (const iovec& v : data) {
      const auto* p = static_cast<const std::uint8_t*>(v.iov_base);
      rec.new_data.insert(rec.new_data.end(), p, p + v.iov_len);
    }
    rec.length = rec.new_data.size();
  } else {
    rec.length = zero_bytes;
  }
  rec.old_data = pread_upto(f.fd, offset, rec.length);
  f.current_size = std::max(f.current_size, offset + rec.length);
  return add_record(std::move(rec));
}

void crash_state::complete_write(std::uint64_t seq, std::size_t n, bool dsync) {
  auto it = unstable_.find(seq);
  if (it == unstable_.end()) return;
  write_record& rec = it->second;
  // A short round wrote only its first `n` bytes; the rest comes back as a
  // new round with its own record.
  if (n < rec.length) {
    rec.length = n;
    if (rec.old_data.size() > n) rec.old_data.resize(n);
    if (rec.new_data.size() > n) rec.new_data.resize(n);
  }
  rec.completed = true;
  if (dsync) {
    tracked_file& f = files_.at(rec.key);
    f.durable_size = f.current_size;
    unstable_.erase(it);
  }
}

std::uint64_t crash_state::begin_truncate(int fd, std::uint64_t size_bytes) {
  write_record rec;
  tracked_file& f = track_fd(fd, &rec.key);
  const std::uint64_t now = size_of(f.fd);
  if (size_bytes >= now) return 0;  // a grow: only the size changes
  rec.kind = record_kind::truncate;
  rec.offset = size_bytes;
  rec.old_data = pread_upto(f.fd, size_bytes, now - size_bytes);
  rec.length = rec.old_data.size();
  rec.completed = true;
  return add_record(std::move(rec));
}

void crash_state::finish_truncate(std::uint64_t token, int fd, std::uint64_t size_bytes, bool ok) {
  if (!ok) {
    if (token != 0) unstable_.erase(token);  // ftruncate changed nothing
    return;
  }
  inode_key key{};
  track_fd(fd, &key).current_size = size_bytes;
}

crash_state::flush_ticket crash_state::begin_flush(int fd) {
  flush_ticket t;
  const tracked_file& f = track_fd(fd, &t.key);
  for (const auto& [seq, w] : unstable_) {
    if (w.completed && w.key == t.key) t.covers.push_back(seq);
  }
  t.size_bytes = f.current_size;
  return t;
}

void crash_state::complete_flush(const flush_ticket& t) {
  for (std::uint64_t seq : t.covers) unstable_.erase(seq);
  if (auto it = files_.find(t.key); it != files_.end()) it->second.durable_size = t.size_bytes;
}

void crash_state::forget_owner(const void* owner) {
  std::erase_if(in_flight, [&](const auto& e) { return e.second.owner == owner; });
}

std::size_t crash_state::unstable_writes() const {
  return static_cast<std::size_t>(
      std::count_if(unstable_.begin(), unstable_.end(), [](const auto& e) { return e.second.kind != record_kind::truncate; }));
}

std::size_t crash_state::unstable_names() const {
  return static_cast<std::size_t>(
      std::count_if(ops_.begin(), ops_.end(), [](const name_op& op) { return !(op.from_synced && op.to_synced); }));
}

void crash_state::record_name_op(name_op op, const std::vector<std::pair<std::string, std::optional<node>>>& before) {
  for (const auto& [path, what] : before) initial_.try_emplace(path, what);
  if (op.kind != name_op_kind::rename) op.from_synced = true;
  ops_.push_back(std::move(op));
}

namespace {

// One step of a replay of the namespace; false when it is skipped because
// what it acts on is not there (its source, or the directory it goes into).
bool apply_op(std::map<std::string, std::optional<crash_state::node>>& ns, const crash_state::name_op& op) {
  const auto holds = [&](const std::string& p) -> std::optional<crash_state::node> {
    auto it = ns.find(p);
    if (it != ns.end()) return it->second;
    return crash_state::node{{}, true};  // untouched: a directory that was there all along
  };
  const auto dir_exists = [&](const std::string& p) {
    const auto n = holds(parent_of(p));
    return n && n->directory;
  };
  switch (op.kind) {
    case crash_state::name_op_kind::create:
    case crash_state::name_op_kind::create_directory:
      if (!dir_exists(op.to)) return false;
      ns[op.to] = op.target;
      return true;
    case crash_state::name_op_kind::rename:
      if (holds(op.from) != std::optional(op.target) || !dir_exists(op.to)) return false;
      ns[op.from] = std::nullopt;
      ns[op.to] = op.target;
      return true;
    case crash_state::name_op_kind::unlink:
      if (holds(op.to) != std::optional(op.target)) return false;
      ns[op.to] = std::nullopt;
      return true;
  }
  return false;
}

}  // namespace

void crash_state::directory_synced(const inode_key& dir) {
  for (name_op& op : ops_) {
    if (op.from_dir == dir) op.from_synced = true;
    if (op.to_dir == dir) op.to_synced = true;
  }
  // Covered operations at the head of the list are part of what is durable
  // now: fold them into the starting point of every replay.
  std::size_t n = 0;
  while (n < ops_.size() && ops_[n].from_synced && ops_[n].to_synced) apply_op(initial_, ops_[n++]);
  ops_.erase(ops_.begin(), ops_.begin() + static_cast<std::ptrdiff_t>(n));
}

void crash_state::cover_paths_under(const std::string& from, const std::string& to) {
  const auto under = [](const std::string& p, const std::string& dir) {
    return p == dir || (p.size() > dir.size() && p.compare(0, dir.size(), dir) == 0 && p[dir.size()] == '/');
  };
  for (name_op& op : ops_) {
    const bool hit = under(op.to, from) || under(op.to, to) ||
                     (!op.from.empty() && (under(op.from, from) || under(op.from, to)));
    if (hit) op.from_synced = op.to_synced = true;
  }
  std::size_t n = 0;
  while (n < ops_.size() && ops_[n].from_synced && ops_[n].to_synced) apply_op(initial_, ops_[n++]);
  ops_.erase(ops_.begin(), ops_.begin() + static_cast<std::ptrdiff_t>(n));
}

crash_report crash_state::settle(std::uint64_t seed) {
  if (!cut) throw std::logic_error("crash model: settle() before cut_power()");
  if (!in_flight.empty()) {
    throw std::logic_error("crash model: " + std::to_string(in_flight.size()) +
                           " write(s) or flush(es) still in flight on an attached crash_backend; "
                           "stop the driving threads and drain first");
  }
  crash_report rep;
  std::uint64_t rng = seed;
  settle_data(rng, rep);
  settle_sizes(rng, rep);
  settle_names(rng, rep);
  for (auto& [key, f] : files_) {
    if (::fsync(f.fd) != 0 && errno != EBADF && errno != EINVAL) fail(errno, "fsync of a rewritten file");
  }
  rep.files = files_.size();
  reset();
  return rep;
}

void crash_state::settle_data(std::uint64_t& rng, crash_report& rep) {
  // Sizes changed behind the model's back (outside any attached backend or
  // crash_file_system) cannot be undone: they count as durable.
  for (auto& [key, f] : files_) {
    const std::uint64_t now = size_of(f.fd);
    if (now != f.current_size) f.durable_size = f.current_size = now;
  }
  // 1. Undo every uncovered change, newest first: the files then hold what
  //    had been made durable (past the old end of a file: zeros).
  for (auto it = unstable_.rbegin(); it != unstable_.rend(); ++it) {
    const write_record& w = it->second;
    const int fd = files_.at(w.key).fd;
    pwrite_all(fd, w.old_data.data(), w.old_data.size(), w.offset);
    if (w.kind != record_kind::truncate && w.length > w.old_data.size()) {
      pwrite_zeros(fd, w.offset + w.old_data.size(), w.length - w.old_data.size());
    }
  }
  // 2. Replay the writes in a random order, each dropped, applied, or torn
  //    sector by sector. (An undone truncate is the size's business.)
  std::vector<const write_record*> order;
  for (const auto& [seq, w] : unstable_) {
    if (w.kind != record_kind::truncate) order.push_back(&w);
  }
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[splitmix64(rng) % i]);
  const auto put = [](const write_record& w, int fd, std::uint64_t pos, std::uint64_t n) {
    if (w.kind == record_kind::zeros) {
      pwrite_zeros(fd, pos, n);
    } else {
      pwrite_all(fd, w.new_data.data() + (pos - w.offset), static_cast<std::size_t>(n), pos);
    }
  };
  for (const write_record* w : order) {
    const int fd = files_.at(w->key).fd;
    switch (splitmix64(rng) % 3) {
      case 0:
        ++rep.dropped;
        break;
      case 1:
        put(*w, fd, w->offset, w->length);
        ++rep.applied;
        break;
      default: {
        ++rep.torn;
        // Sector boundaries are absolute file offsets.
        std::uint64_t pos = w->offset;
        const std::uint64_t end = w->offset + w->length;
        while (pos < end) {
          const std::uint64_t next = std::min(end, (pos / sector + 1) * sector);
          if (splitmix64(rng) & 1) put(*w, fd, pos, next - pos);
          pos = next;
        }
      }
    }
  }
}

void crash_state::settle_sizes(std::uint64_t& rng, crash_report& rep) {
  for (auto& [key, f] : files_) {
    std::uint64_t target = f.current_size;
    if (f.current_size != f.durable_size) {
      if (splitmix64(rng) & 1) {
        ++rep.sizes_kept;
      } else {
        target = f.durable_size;
        ++rep.sizes_reverted;
      }
    }
    // Undoing the data above may have written past the size to keep.
    if (size_of(f.fd) != target && ::ftruncate(f.fd, static_cast<off_t>(target)) != 0) {
      fail(errno, "setting a file's size back to " + std::to_string(target) + " bytes");
    }
  }
}

void crash_state::settle_names(std::uint64_t& rng, crash_report& rep) {
  if (ops_.empty()) return;
  // What is on disk now (every operation) and what the cut leaves (the
  // covered ones and those the dice keep), both replayed from the same start.
  auto actual = initial_;
  auto final_ns = initial_;
  for (const name_op& op : ops_) {
    apply_op(actual, op);
    bool keep = op.from_synced && op.to_synced;
    if (!keep) {
      keep = (splitmix64(rng) & 1) != 0;
      ++(keep ? rep.names_kept : rep.names_undone);
    }
    if (keep) apply_op(final_ns, op);
  }
  std::set<std::string> changed_dirs;
  // Children before parents: take away what the cut does not leave.
  for (auto it = actual.rbegin(); it != actual.rend(); ++it) {
    const auto& [path, now] = *it;
    const auto& want = final_ns.at(path);
    if (!now || now == want) continue;
    if (now->directory) {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
      if (ec && ec != std::errc::no_such_file_or_directory) fail(ec.value(), "removing directory " + path);
    } else if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      fail(errno, "unlinking " + path);
    }
    changed_dirs.insert(parent_of(path));
  }
  // Parents before children: bring back what the cut leaves.
  for (const auto& [path, want] : final_ns) {
    const auto& now = actual.at(path);
    if (!want || now == want) continue;
    if (want->directory) {
      if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) fail(errno, "creating directory " + path);
    } else {
      // The file's bytes, as settled above, under a new inode at this name.
      const int src = files_.at(want->key).fd;
      struct stat st {};
      if (::fstat(src, &st) != 0) fail(errno, "fstat of the file to bring back as " + path);
      const int dst = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
      if (dst < 0) fail(errno, "creating " + path);
      try {
        constexpr std::uint64_t chunk = 1 << 20;
        for (std::uint64_t off = 0; off < static_cast<std::uint64_t>(st.st_size); off += chunk) {
          const auto bytes = pread_upto(src, off, std::min<std::uint64_t>(chunk, st.st_size - off));
          pwrite_all(dst, bytes.data(), bytes.size(), off);
        }
        if (::fsync(dst) != 0) fail(errno, "fsync of " + path);
      } catch (...) {
        ::close(dst);
        throw;
      }
      ::close(dst);
    }
    changed_dirs.insert(parent_of(path));
  }
  for (const std::string& d : changed_dirs) fsync_directory(d);
}

void crash_state::reset() {
  for (auto& [key, f] : files_) ::close(f.fd);
  files_.clear();
  unstable_.clear();
  initial_.clear();
  ops_.clear();
  cut = false;
  ++epoch;
}

}  // namespace pageio::detail
