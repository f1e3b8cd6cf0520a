// A backend that runs every request on another one and can simulate a power
// cut. It remembers every write that no completed durability point covers
// yet: a flush (fdatasync/fsync) on the same file covers the writes that had
// completed when it was submitted; an io_flags::dsync write covers itself.
// cut_power() stops the machine: from then on every request, including those
// still in flight, completes with -EIO and nothing more becomes durable.
// settle() then rewrites the files as the power cut could have left them:
// each uncovered write dropped, applied, or torn at 512-byte sector
// granularity (each sector old or new), applied in a random order.
//
// Limits (what a test relies on): the old contents of a range are read when a
// write to it is submitted, so two writes to overlapping ranges must not be
// in flight at once; bytes past the end of a file before a write count as
// zeros when that write is undone (the file keeps its size); creating,
// renaming and truncating files happen outside any backend and are not
// modelled.
#pragma once

#include <pageio/engine/forwarding_backend.hpp>

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace pageio {

class crash_backend final : public forwarding_backend {
 public:
  explicit crash_backend(std::unique_ptr<io_backend> inner);
  ~crash_backend() override;

  // The power goes out now. Safe from any thread.
  void cut_power();
  bool power_cut() const;

  // Writes not covered by a completed durability point (in flight or
  // completed). Safe from any thread.
  std::size_t unstable_writes() const;

  struct settle_report {
    std::size_t dropped = 0, applied = 0, torn = 0;
    std::size_t files = 0;
  };
  // After cut_power(), once the driving thread has stopped using the backend
  // (nothing outstanding): rewrites the files as the power cut left them,
  // choosing with `seed`, and makes that durable. Throws std::logic_error
  // before cut_power() or with requests outstanding, std::system_error when
  // a file cannot be rewritten.
  settle_report settle(std::uint64_t seed);

 private:
  struct tracked_file {
    int fd = -1;  // our own, buffered descriptor of the same file
    std::uint64_t completed_seq = 0;  // highest seq of a completed write (for flushes)
  };
  struct write_record {
    std::uint64_t seq = 0;
    dev_t dev = 0;
    ino_t ino = 0;
    std::uint64_t offset = 0;
    std::vector<std::uint8_t> old_data, new_data;
    bool completed = false;
  };
  struct pending_flush {
    dev_t dev = 0;
    ino_t ino = 0;
    std::vector<std::uint64_t> covers;  // seqs of the writes completed when it was submitted
  };

  bool before_submit(shadow& s) override;
  void after_complete(shadow& s) override;

  tracked_file& track(int fd, dev_t* dev, ino_t* ino);
  void record_write(shadow& s);

  mutable std::mutex mu_;
  bool cut_ = false;
  std::uint64_t next_seq_ = 1;
  std::map<std::pair<dev_t, ino_t>, tracked_file> files_;
  std::map<std::uint64_t, write_record> unstable_;  // by seq
  std::map<const shadow*, std::uint64_t> write_of_;  // in-flight write shadow -> seq
  std::map<const shadow*, pending_flush> flush_of_;  // in-flight flush shadow
};

}  // namespace pageio
