// A page cache under the write-ahead-log rule: each run adds 1 to a counter
// kept in page 17 of a data file, logs the change first, and checkpoints.
//   page_cache [DIR]     (DIR/wal and DIR/table.dat; DIR must exist, defaults to .)
#include <pageio/pagecache/buffer_pool.hpp>
#include <pageio/wal/log.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>

int main(int argc, char** argv) try {
  const std::string dir = argc > 1 ? argv[1] : ".";
  pageio::wal::log wal({.dir = dir + "/wal"});
  pageio::pagecache::buffer_pool pool({.frames = 4096, .log = &wal});  // log: any pageio::durable_log
  auto table = pool.add_file(dir + "/table.dat");                      // O_DIRECT; created if missing
  std::uint64_t count = 0;
  {
    auto page = pool.fetch({table, 17});      // pinned; one read however many threads ask
    std::unique_lock w(page.latch());         // shared to read, exclusive to change
    std::memcpy(&count, page.data(), sizeof count);
    ++count;
    const auto lsn = wal.commit("page 17: counter = " + std::to_string(count));  // the log first,
    std::memcpy(page.data(), &count, sizeof count);  // 4,064 bytes are ours: the pool keeps a 32-byte header
    page.mark_dirty(lsn);                     // written back only once the log is durable to lsn
  }
  wal.truncate_before(pool.checkpoint());     // every change below the result is in the data file
  std::printf("counter in page 17 of %s/table.dat: %llu\n", dir.c_str(), static_cast<unsigned long long>(count));
  return 0;
} catch (const std::exception& e) {  // a damaged page (corruption_error names file and page), tmpfs...
  std::fprintf(stderr, "page_cache: %s\n", e.what());
  return 1;
}
