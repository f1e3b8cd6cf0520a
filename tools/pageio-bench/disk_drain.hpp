// Writing back what earlier runs left in the disk's write cache, before a
// run that flushes. On a virtual disk, unsynced writes (fio's sequential
// ceiling, a random-write run) are taken into the host's memory at
// gigabytes a second; the next flush, whoever sends it, waits until the host
// has written them all (663 ms after 4 s of fio's 1 MiB writes here), and
// flushes stay slower for a minute after. A benchmark of durable commits
// must not start with that debt.
#pragma once

#include <filesystem>

namespace pageio::bench {

struct drain_result {
  double drain_ms = 0;  // the first flush: as long as the write-back took
  double flush_us = 0;  // then a 4 KiB write + fdatasync, median of 9: the disk's state now
};

// Writes 4 KiB to a scratch file in `dir`, fdatasyncs it (a flush of the
// whole disk), then takes 9 more of the same; removes the file. Throws
// std::system_error naming the file on a failure.
drain_result drain_disk_cache(const std::filesystem::path& dir);

}  // namespace pageio::bench
