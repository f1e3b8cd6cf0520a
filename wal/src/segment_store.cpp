#include "segment_store.hpp"

#include "wal_errors.hpp"

#include <pageio/wal/format.hpp>
#include <pageio/wal/reader.hpp>

#include <algorithm>
#include <system_error>

namespace pageio::wal::detail {

segment_store::segment_store(std::shared_ptr<file_system> fs, std::filesystem::path dir, std::uint32_t segment_pages,
                             const std::vector<std::uint64_t>& existing)
    : fs_(std::move(fs)), dir_(std::move(dir)), segment_bytes_(std::uint64_t{segment_pages} * format::page_size) {
  ready_.insert(existing.begin(), existing.end());
  if (!existing.empty()) highest_ = *std::max_element(existing.begin(), existing.end());
}

segment_store::~segment_store() {
  {
    std::lock_guard lock(prep_mu_);
    prep_stop_ = true;
  }
  prep_cv_.notify_all();
  if (preparer_.joinable()) preparer_.join();
}

void segment_store::start_preparer() {
  preparer_ = std::thread([this] { preparer_main(); });
}

std::filesystem::path segment_store::path_of(std::uint64_t seq) const { return dir_ / segment_file_name(seq); }

bool segment_store::is_ready(std::uint64_t seq) const {
  std::lock_guard lock(files_mu_);
  return ready_.count(seq) != 0;
}

std::uint64_t segment_store::segments_created() const {
  std::lock_guard lock(files_mu_);
  return created_;
}

void segment_store::make_ready(std::uint64_t seq) {
  if (ready_.count(seq) != 0) return;
  if (auto it = prep_failed_.find(seq); it != prep_failed_.end()) std::rethrow_exception(it->second);
  const auto path = path_of(seq);
  try {
    if (const auto st = fs_->stat(path)) {
      // Made by someone else: usable only as a whole segment.
      if (st->type != file_type::regular || st->size_bytes != segment_bytes_) {
        throw std::system_error(make_error_code(std::errc::file_exists),
                                path.string() + " is in the way: " +
                                    (st->type != file_type::regular ? std::string("not a regular file")
                                                                    : std::to_string(st->size_bytes) + " bytes, not " +
                                                                          std::to_string(segment_bytes_)));
      }
      fs_->sync_directory(dir_);
    } else {
      // Full-size zeros under a temporary name, durable, then renamed: a
      // segment is never seen half made, and O_DIRECT writes into it never
      // allocate. Zeros written with O_DIRECT do not crowd the page cache.
      const std::filesystem::path tmp = path.string() + ".tmp";
      if (fs_->stat(tmp)) fs_->unlink(tmp);  // left by an earlier attempt
      try {
        file f = fs_->open(tmp, {.direct = true, .writable = true, .create = true, .truncate = true});
        fs_->write_zeros(f, 0, segment_bytes_);
        fs_->sync(f, true);
      } catch (...) {
        try {
          fs_->unlink(tmp);
        } catch (const std::system_error&) {
          // Left behind; removed when the log is next opened.
        }
        throw;
      }
      fs_->rename(tmp, path);
      fs_->sync_directory(dir_);
      ++created_;
    }
  } catch (const std::system_error&) {
    rethrow_as("making segment " + path.filename().string());
  }
  ready_.insert(seq);
  highest_ = std::max(highest_, seq);
}

const file& segment_store::writable(std::uint64_t seq) {
  if (auto it = open_.find(seq); it != open_.end()) return it->second;
  {
    std::lock_guard lock(files_mu_);
    make_ready(seq);
    opened_ = std::max(opened_, seq);
  }
  const auto path = path_of(seq);
  file f;
  try {
    f = fs_->open(path, {.direct = true, .writable = true});
  } catch (const std::system_error&) {
    rethrow_as("opening segment " + path.filename().string());
  }
  const file& out = open_.emplace(seq, std::move(f)).first->second;
  {
    std::lock_guard lock(prep_mu_);
    prep_want_ = std::max(prep_want_, seq + 1);
  }
  prep_cv_.notify_one();
  return out;
}

void segment_store::release_before(std::uint64_t keep_from, io_backend& backend) {
  for (auto it = open_.begin(); it != open_.end() && it->first < keep_from;) {
    backend.forget_fd(it->second.fd());
    it = open_.erase(it);
  }
}

std::size_t segment_store::recycle(const std::vector<std::uint64_t>& victims) {
  std::lock_guard lock(files_mu_);
  // The next free number after every segment file there is.
  std::uint64_t next = highest_;
  try {
    for (const auto& e : fs_->list(dir_)) {
      if (const auto seq = parse_segment_file_name(e.name)) next = std::max(next, *seq);
    }
  } catch (const std::system_error&) {
    rethrow_as("listing " + dir_.string() + " to recycle segments");
  }
  ++next;
  std::size_t done = 0;
  for (std::uint64_t seq : victims) {
    const auto from = path_of(seq), to = path_of(next);
    try {
      fs_->rename(from, to);
      // One at a time: a crash then leaves the lowest numbers gone in order,
      // never a gap among the segments that remain.
      fs_->sync_directory(dir_);
    } catch (const std::system_error&) {
      rethrow_as("recycling " + from.filename().string() + " as " + to.filename().string());
    }
    ready_.erase(seq);
    ready_.insert(next);
    highest_ = next;
    ++next;
    ++done;
  }
  return done;
}

void segment_store::prepare(std::uint64_t seq) {
  std::lock_guard files_lock(files_mu_);
  if (seq <= opened_) return;  // overtaken by the flusher
  try {
    make_ready(seq);
  } catch (...) {
    // Reported to the flusher when the log reaches this segment.
    prep_failed_[seq] = std::current_exception();
  }
}

void segment_store::preparer_main() {
  std::unique_lock lock(prep_mu_);
  for (;;) {
    prep_cv_.wait(lock, [&] { return prep_stop_ || prep_want_ > prep_done_; });
    if (prep_stop_) return;
    const std::uint64_t seq = prep_want_;
    lock.unlock();
    prepare(seq);
    lock.lock();
    prep_done_ = std::max(prep_done_, seq);
  }
}

}  // namespace pageio::wal::detail
