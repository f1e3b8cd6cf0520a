// pageio-wal replay's two stages: the thread that reads the logs gathers
// records into chunks and reads in the pages each chunk will change
// (kv::store::prefetch_for_replay), while a thread of its own replays the
// chunk before (kv::store::replay), in LSN order. Chunks are one block of
// bytes each, reused, so a record costs a copy, not an allocation.
#pragma once

#include <pageio/kv/store.hpp>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

namespace pageio::wal::tool {

class replay_pipeline {
 public:
  explicit replay_pipeline(kv::store& db);
  ~replay_pipeline();  // waits for what was handed over (errors dropped: call finish() to see them)
  replay_pipeline(const replay_pipeline&) = delete;
  replay_pipeline& operator=(const replay_pipeline&) = delete;

  // Takes record `lsn` (copied); hands the chunk over once it is full.
  // Rethrows a failure of the replaying thread.
  void add(lsn_t lsn, std::span<const std::byte> payload);
  // Hands over what is gathered and waits until every record taken is
  // replayed. Rethrows a failure of the replaying thread.
  void finish();

 private:
  struct chunk {
    std::vector<std::byte> bytes;
    struct rec {
      lsn_t lsn;
      std::size_t at, size;
    };
    std::vector<rec> recs;
    void clear() {
      bytes.clear();
      recs.clear();
    }
  };
  void hand_over();
  void run();
  void rethrow_locked();

  kv::store& db_;
  chunk gathering_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<chunk> queued_;  // for the replaying thread (mu_)
  std::vector<chunk> spare_;  // replayed, to be reused (mu_)
  bool busy_ = false, stop_ = false;
  std::exception_ptr failed_;
  std::vector<kv::store::replay_record> batch_;  // the chunk being replayed (the replaying thread's)
  std::thread thread_;
};

}  // namespace pageio::wal::tool
