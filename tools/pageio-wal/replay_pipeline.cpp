#include "replay_pipeline.hpp"

#include <algorithm>

namespace pageio::wal::tool {

namespace {
constexpr std::size_t chunk_records = 2048, chunk_bytes = 4u << 20;
constexpr std::size_t max_queued = 4;
}  // namespace

replay_pipeline::replay_pipeline(kv::store& db) : db_(db), thread_([this] { run(); }) {}

replay_pipeline::~replay_pipeline() {
  {
    std::unique_lock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void replay_pipeline::rethrow_locked() {
  if (failed_) std::rethrow_exception(failed_);
}

void replay_pipeline::add(lsn_t lsn, std::span<const std::byte> payload) {
  gathering_.recs.push_back({lsn, gathering_.bytes.size(), payload.size()});
  gathering_.bytes.insert(gathering_.bytes.end(), payload.begin(), payload.end());
  if (gathering_.recs.size() >= chunk_records || gathering_.bytes.size() >= chunk_bytes) hand_over();
}

void replay_pipeline::hand_over() {
  if (gathering_.recs.empty()) return;
  // The pages this chunk changes, read in one batch while the chunk before
  // is replayed.
  std::vector<std::span<const std::byte>> views;
  views.reserve(gathering_.recs.size());
  for (const auto& r : gathering_.recs) views.emplace_back(gathering_.bytes.data() + r.at, r.size);
  db_.prefetch_for_replay(views);
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return queued_.size() < max_queued || failed_; });
  rethrow_locked();
  queued_.push_back(std::move(gathering_));
  gathering_ = chunk();
  if (!spare_.empty()) {
    gathering_ = std::move(spare_.back());
    spare_.pop_back();
  }
  lock.unlock();
  cv_.notify_all();
}

void replay_pipeline::finish() {
  hand_over();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return (queued_.empty() && !busy_) || failed_; });
  rethrow_locked();
}

void replay_pipeline::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return !queued_.empty() || stop_; });
    if (queued_.empty()) return;  // stopping, with nothing left
    chunk c = std::move(queued_.front());
    queued_.pop_front();
    busy_ = true;
    lock.unlock();
    std::exception_ptr err;
    try {
      batch_.clear();
      for (const auto& r : c.recs) batch_.push_back({r.lsn, std::span<const std::byte>(c.bytes).subspan(r.at, r.size)});
      db_.replay(batch_);
    } catch (...) {
      err = std::current_exception();
    }
    c.clear();
    lock.lock();
    busy_ = false;
    if (err) {
      failed_ = err;
      queued_.clear();  // nothing after a record that failed
    }
    spare_.push_back(std::move(c));
    cv_.notify_all();
  }
}

}  // namespace pageio::wal::tool
