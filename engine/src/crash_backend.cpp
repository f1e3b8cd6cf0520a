#include <pageio/engine/crash_backend.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

namespace pageio {

namespace {

constexpr std::uint64_t sector = 512;

bool is_write_op(op_code op) noexcept { return op == op_code::write || op == op_code::writev; }
bool is_flush_op(op_code op) noexcept { return op == op_code::fdatasync || op == op_code::fsync; }

std::uint64_t splitmix(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void pwrite_all(int fd, const std::uint8_t* p, std::size_t n, std::uint64_t off) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::system_category(), "crash_backend: rewriting a file");
    }
    p += w;
    n -= static_cast<std::size_t>(w);
    off += static_cast<std::uint64_t>(w);
  }
}

}  // namespace

crash_backend::crash_backend(std::unique_ptr<io_backend> inner) : forwarding_backend(std::move(inner), "crash+") {}

crash_backend::~crash_backend() {
  finish_inner();
  for (auto& [key, f] : files_) ::close(f.fd);
}

void crash_backend::cut_power() {
  std::lock_guard lock(mu_);
  cut_ = true;
}

bool crash_backend::power_cut() const {
  std::lock_guard lock(mu_);
  return cut_;
}

std::size_t crash_backend::unstable_writes() const {
  std::lock_guard lock(mu_);
  return unstable_.size();
}

crash_backend::tracked_file& crash_backend::track(int fd, dev_t* dev, ino_t* ino) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw std::system_error(errno, std::system_category(), "crash_backend: fstat");
  *dev = st.st_dev;
  *ino = st.st_ino;
  auto [it, fresh] = files_.try_emplace({st.st_dev, st.st_ino});
  if (fresh) {
    // Our own descriptor, without O_DIRECT, that outlives the caller's.
    const std::string self = "/proc/self/fd/" + std::to_string(fd);
    it->second.fd = ::open(self.c_str(), O_RDWR | O_CLOEXEC);
    if (it->second.fd < 0) {
      const int e = errno;
      files_.erase(it);
      throw std::system_error(e, std::system_category(), "crash_backend: reopening " + self);
    }
  }
  return it->second;
}

void crash_backend::record_write(shadow& s) {
  write_record rec;
  const io_request& in = s.inner;
  tracked_file& f = track(in.fd, &rec.dev, &rec.ino);
  rec.seq = next_seq_++;
  rec.offset = in.offset;
  if (in.op == op_code::write) {
    const auto* p = static_cast<const std::uint8_t*>(in.buf);
    rec.new_data.assign(p, p + in.length);
  } else {
    for (std::uint32_t i = 0; i < in.iov_count; ++i) {
      const auto* p = static_cast<const std::uint8_t*>(in.iov[i].iov_base);
      rec.new_data.insert(rec.new_data.end(), p, p + in.iov[i].iov_len);
    }
  }
  rec.old_data.assign(rec.new_data.size(), 0);  // past the end of the file: zeros
  std::size_t got = 0;
  while (got < rec.old_data.size()) {
    const ssize_t r = ::pread(f.fd, rec.old_data.data() + got, rec.old_data.size() - got,
                              static_cast<off_t>(rec.offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw std::system_error(errno, std::system_category(), "crash_backend: reading what a write replaces");
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  write_of_[&s] = rec.seq;
  unstable_.emplace(rec.seq, std::move(rec));
}

bool crash_backend::before_submit(shadow& s) {
  std::lock_guard lock(mu_);
  if (cut_) {
    s.skip_inner = true;
    s.result = -EIO;
    return true;
  }
  try {
    if (is_write_op(s.inner.op)) {
      record_write(s);
    } else if (is_flush_op(s.inner.op)) {
      pending_flush pf;
      track(s.inner.fd, &pf.dev, &pf.ino);
      for (const auto& [seq, w] : unstable_) {
        if (w.completed && w.dev == pf.dev && w.ino == pf.ino) pf.covers.push_back(seq);
      }
      flush_of_[&s] = std::move(pf);
    }
  } catch (const std::system_error& e) {
    // Not tracked, so not run: a write the simulation could not undo would
    // make the crash image a lie.
    s.skip_inner = true;
    s.result = -(e.code().value() != 0 ? e.code().value() : EIO);
  }
  return true;
}

void crash_backend::after_complete(shadow& s) {
  std::lock_guard lock(mu_);
  if (auto it = write_of_.find(&s); it != write_of_.end()) {
    const std::uint64_t seq = it->second;
    write_of_.erase(it);
    auto rec = unstable_.find(seq);
    if (cut_) {
      s.result = -EIO;  // it stays uncovered: settle() decides what landed
    } else if (rec != unstable_.end() && s.result >= 0) {
      // A short round wrote only its first `result` bytes; the rest comes
      // back as a new round with its own record.
      const auto n = static_cast<std::size_t>(s.result);
      if (n < rec->second.new_data.size()) {
        rec->second.new_data.resize(n);
        rec->second.old_data.resize(n);
      }
      rec->second.completed = true;
      if ((s.inner.flags & io_flags::dsync) != 0) unstable_.erase(rec);  // durable on completion
    }
    // A failed write stays uncovered and never completed: it may or may not
    // have reached the file.
    return;
  }
  if (auto it = flush_of_.find(&s); it != flush_of_.end()) {
    pending_flush pf = std::move(it->second);
    flush_of_.erase(it);
    if (cut_) {
      s.result = -EIO;
    } else if (s.result >= 0) {
      for (std::uint64_t seq : pf.covers) unstable_.erase(seq);
    }
    return;
  }
  if (cut_ && s.result >= 0) s.result = -EIO;  // reads too: the machine is off
}

crash_backend::settle_report crash_backend::settle(std::uint64_t seed) {
  std::lock_guard lock(mu_);
  if (!cut_) throw std::logic_error("crash_backend::settle: call cut_power() first");
  if (outstanding() > 0) {
    throw std::logic_error("crash_backend::settle: " + std::to_string(outstanding()) +
                           " request(s) outstanding; stop the driving thread and drain first");
  }
  settle_report rep;
  std::uint64_t rng = seed;
  // 1. Undo every uncovered write, newest first: the files then hold exactly
  //    what had been made durable.
  for (auto it = unstable_.rbegin(); it != unstable_.rend(); ++it) {
    const write_record& w = it->second;
    pwrite_all(files_.at({w.dev, w.ino}).fd, w.old_data.data(), w.old_data.size(), w.offset);
  }
  // 2. Replay them in a random order, each dropped, applied, or torn sector
  //    by sector.
  std::vector<const write_record*> order;
  for (const auto& [seq, w] : unstable_) order.push_back(&w);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[splitmix(rng) % i]);
  for (const write_record* w : order) {
    const int fd = files_.at({w->dev, w->ino}).fd;
    switch (splitmix(rng) % 3) {
      case 0:
        ++rep.dropped;
        break;
      case 1:
        pwrite_all(fd, w->new_data.data(), w->new_data.size(), w->offset);
        ++rep.applied;
        break;
      default: {
        ++rep.torn;
        // Sector boundaries are absolute file offsets.
        std::uint64_t pos = w->offset;
        const std::uint64_t end = w->offset + w->new_data.size();
        while (pos < end) {
          const std::uint64_t next = std::min(end, (pos / sector + 1) * sector);
          if (splitmix(rng) & 1) {
            pwrite_all(fd, w->new_data.data() + (pos - w->offset), static_cast<std::size_t>(next - pos), pos);
          }
          pos = next;
        }
      }
    }
  }
  for (auto& [key, f] : files_) {
    if (::fsync(f.fd) != 0) throw std::system_error(errno, std::system_category(), "crash_backend: fsync");
  }
  rep.files = files_.size();
  unstable_.clear();
  return rep;
}

}  // namespace pageio
