// Commits records to a write-ahead log from several threads, closes it,
// and reads every record back from the directory as recovery would.
//   wal_commit [DIR]     (the log: DIR/wal, created if missing; DIR defaults to .)
#include <pageio/wal/log.hpp>
#include <pageio/wal/reader.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) try {
  const std::string dir = std::string(argc > 1 ? argv[1] : ".") + "/wal";
  pageio::wal::lsn_t last = 0;
  {
    pageio::wal::log wal({.dir = dir, .backend = "default"});  // recovers what is there
    std::vector<std::jthread> writers;
    for (int t = 0; t < 4; ++t)
      writers.emplace_back([&wal, t] {
        for (int i = 0; i < 100; ++i)                            // append + wait until durable;
          wal.commit("thread " + std::to_string(t) + " record " + std::to_string(i));  // threads share group commits
      });
    writers.clear();                                             // joins them
    last = wal.append("appended now,");                          // or: append now,
    wal.flush(last);                                             //     wait later
    wal.truncate_before(last);                                   // a checkpoint: recycle what nobody needs
  }
  std::size_t records = 0;
  const auto scan = pageio::wal::scan_log(dir, /*from=*/last, [&](const pageio::wal::record_view& r) {
    std::printf("lsn %llu: %.*s\n", static_cast<unsigned long long>(r.lsn), static_cast<int>(r.data.size()),
                reinterpret_cast<const char*>(r.data.data()));
    ++records;
    return true;
  });
  if (scan.corruption) std::fprintf(stderr, "wal_commit: %s\n", scan.corruption->what.c_str());
  return records == 1 && !scan.corruption ? 0 : 1;
} catch (const std::exception& e) {  // a file system without O_DIRECT (tmpfs), a full disk...
  std::fprintf(stderr, "wal_commit: %s\n", e.what());
  return 1;
}
