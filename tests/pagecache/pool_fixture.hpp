// What the pagecache suites share: pages whose bytes say which page and
// version they are, files written before a pool opens them, a fixture that
// runs each suite on every backend (skipping, with the reason, one that cannot
// start here), wrappers that count and fail the pool's I/O, and a watchdog
// for calls that might never return.
#pragma once

#include <pageio/engine/fault_backend.hpp>
#include <pageio/pagecache/buffer_pool.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "probe_backend.hpp"
#include "support/test_dir.hpp"

namespace pageio::pagecache::test {

using pageio::test::io_probe;
using pageio::test::io_record;
using pageio::test::probe_backend;
using pageio::test::test_dir;

// The first 32 bytes of the caller's part of every page a test writes (after
// the pool's header, page_format.hpp); the rest of that part is a
// pattern chosen by (file tag, page, version), so a page from the wrong place,
// a stale version and a torn page each show.
struct page_stamp {
  std::uint64_t magic = 0;
  std::uint64_t page = 0;
  std::uint64_t version = 0;
  std::uint64_t lsn = 0;  // the change that produced this version (0: none)
};
inline constexpr std::uint64_t stamp_magic = 0x3154534554434750ULL;  // "PGCTEST1"

// Writes version `version` of page `page` into the usable_size bytes at `p`
// (a page_ref's data()).
void stamp_page(std::byte* p, std::uint32_t file_tag, std::uint64_t page, std::uint64_t version, lsn_t lsn = 0);
page_stamp read_stamp(const std::byte* p);
// Success when `p` holds exactly stamp_page(file_tag, page, version, *) (the LSN is not compared).
::testing::AssertionResult page_holds(const std::byte* p, std::uint32_t file_tag, std::uint64_t page,
                                      std::uint64_t version);
::testing::AssertionResult all_zero(const std::byte* p, std::size_t n);

// Creates `path` with pages [0, pages) at `version`, sealed as the pool seals
// them with LSN 0 (buffered writes, then fsync): a file a pool then opens.
void write_file(const std::filesystem::path& path, std::uint32_t file_tag, std::uint64_t pages,
                std::uint64_t version = 0);
// The caller's part of page `page` in a file read by read_whole_file.
const std::byte* on_disk(const std::vector<std::byte>& file, std::uint64_t page);
// The whole file, read with plain buffered reads.
std::vector<std::byte> read_whole_file(const std::filesystem::path& path);

// Every fault_backend a pool's lanes were built with, switched together.
// Use only while the pool that built them is alive.
class fault_switch {
 public:
  std::unique_ptr<io_backend> wrap(std::unique_ptr<io_backend> inner);
  void set(const fault_options& o);
  void off() { set(fault_options{}); }
  fault_backend::counters injected() const;  // summed over every lane

 private:
  mutable std::mutex mu_;
  fault_options opts_;
  std::vector<fault_backend*> live_;
};

class pool_test : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override;

  const std::string& backend_name() const { return GetParam(); }
  std::filesystem::path path(const std::string& name) const { return dir_->path() / name; }
  // The backend the fixture runs on, as each lane of a pool builds it.
  std::unique_ptr<io_backend> make_plain_backend() const;
  // Options whose lanes are probe_(faults_(backend)): every request recorded,
  // faults off until faults_->set().
  options probed_options();

  std::optional<test_dir> dir_;
  std::shared_ptr<io_probe> probe_ = std::make_shared<io_probe>();
  std::shared_ptr<fault_switch> faults_ = std::make_shared<fault_switch>();
};

std::string backend_param_name(const ::testing::TestParamInfo<std::string>& info);

#define PAGECACHE_INSTANTIATE_ON_EVERY_BACKEND(suite)                                                        \
  INSTANTIATE_TEST_SUITE_P(Backends, suite,                                                                 \
                           ::testing::Values(std::string("sync"), std::string("aio"), std::string("uring")), \
                           ::pageio::pagecache::test::backend_param_name)

// Runs `fn` on a thread of its own and waits up to `limit` for it. True when
// it returned (an exception it threw is rethrown here). False when it is still
// running: the thread is then detached, and everything `fn` uses must be kept
// alive for the rest of the process (see keep_forever).
bool returns_within(std::function<void()> fn, std::chrono::milliseconds limit);

// Runs fn(0) .. fn(n - 1) on n threads and waits for them: up to `limit`,
// or for 5 s more once `failed()` says a thread has failed (the others are
// expected to stop soon after). Returns how many threads had not returned;
// those are detached, and everything they use must be kept alive for the rest
// of the process (capture it by shared_ptr, see keep_forever). `fn` must not throw.
std::size_t run_threads(int n, const std::function<void(int)>& fn, const std::function<bool()>& failed,
                        std::chrono::milliseconds limit);

// Keeps `p` alive (and reachable, for LeakSanitizer) until the process ends:
// for a pool that a deadlocked thread still uses.
void keep_forever(std::shared_ptr<void> p);

// Waits up to `limit` for `cond`, checking every millisecond; its last value.
bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds limit);

}  // namespace pageio::pagecache::test
