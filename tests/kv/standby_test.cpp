// The warm standby's read service in one process (so the thread sanitizer
// sees it): records replayed into a replica while readers ask through the
// standby's socket. A counter that every record raises never reads lower
// than it read before, a scan is always in key order, writes are refused
// with the reason given, and stopping the service ends every session.
#include <pageio/kv/store.hpp>
#include <pageio/wal/reader.hpp>

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "standby.hpp"
#include "support/test_dir.hpp"

namespace pageio::kv {
namespace {

// One request's reply, read up to the line that ends it.
std::string ask(int fd, const std::string& request, const std::string& last_line_prefix) {
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) return {};
  std::string got;
  char buf[4096];
  for (;;) {
    const auto nl = got.rfind('\n', got.size() >= 2 ? got.size() - 2 : 0);
    const std::string last = got.substr(nl == std::string::npos ? 0 : nl + 1);
    if (!got.empty() && got.back() == '\n' && last.rfind(last_line_prefix, 0) == 0) return got;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return got;
    got.append(buf, static_cast<std::size_t>(n));
  }
}

// A primary whose whole log stays, to be replayed from the backup on.
options primary_options(const std::filesystem::path& root) {
  options o;
  o.dir = root / "primary";
  o.sync = false;
  o.checkpoint_interval_ms = 0;
  o.checkpoint_log_bytes = 0;
  return o;
}

std::uint64_t counter_of(const std::string& reply) {
  if (reply.rfind("VALUE ", 0) != 0) return 0;
  return std::stoull(reply.substr(6));
}

TEST(kv_standby_test, ReadersThroughTheSocketSeeRecordsWholeWhileTheyAreReplayed) {
  std::string why;
  auto dir = test::test_dir::create(&why);
  if (!dir) GTEST_SKIP() << why;
  options o = primary_options(dir->path());
  lsn_t from = 0;
  constexpr int rounds = 3000;
  {
    store p(o);
    for (int i = 0; i < 50; ++i) p.put("key" + std::to_string(i), "v");
    p.put("counter", "0");
    from = p.backup(dir->path() / "standby").lsn;
    for (int r = 1; r <= rounds; ++r) {
      write_batch b;
      b.put("counter", std::to_string(r));
      b.put("key" + std::to_string(r % 50), std::string(static_cast<std::size_t>(r % 300), 'x'));
      p.write(b);
    }
  }
  options ro;
  ro.dir = dir->path() / "standby";
  ro.replica = true;
  store replica(ro);
  std::optional<tool::standby_server> server;
  server.emplace(replica, ro.dir, "a standby: reads only");

  std::atomic<bool> done{false};
  std::atomic<int> failures{0}, reads{0}, midway{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      const int fd = tool::connect_standby(ro.dir);
      if (fd < 0) {
        ++failures;
        return;
      }
      std::uint64_t seen = 0;
      while (!done.load()) {
        const std::uint64_t now = counter_of(ask(fd, "get counter\n", ""));
        if (now < seen) ++failures;  // a record undone
        if (now > 0 && now < rounds) ++midway;
        seen = now;
        const std::string scan = ask(fd, "scan key key9 0\n", "END ");
        std::string prev;
        for (std::size_t at = 0; (at = scan.find("KV ", at)) != std::string::npos; ++at) {
          const std::string k = scan.substr(at + 3, scan.find(' ', at + 3) - at - 3);
          if (k <= prev) ++failures;  // out of order
          prev = k;
        }
        ++reads;
      }
      ::close(fd);
    });
  }
  while (reads.load() < 3 && failures.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // Halfway, the replay waits for a reader to see the store there (on a
  // busy machine the readers might otherwise all come before or after).
  std::size_t replayed = 0;
  const wal::scan_result r = wal::scan_log(o.dir / "wal", from + 1, [&](const wal::record_view& v) {
    replica.replay(v.lsn, v.data);
    if (++replayed == rounds / 2) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (midway.load() == 0 && failures.load() == 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    return true;
  });
  ASSERT_FALSE(r.corruption);
  while (reads.load() < 30 && failures.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(midway.load(), 0) << "no read came while records were replayed";

  const int fd = tool::connect_standby(ro.dir);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(ask(fd, "get counter\n", ""), "VALUE " + std::to_string(rounds) + "\n");
  EXPECT_EQ(ask(fd, "put a b\n", ""), "ERR a standby: reads only\n");
  // A session still open when the service stops reads the end of its stream.
  server.reset();
  char c;
  EXPECT_EQ(::read(fd, &c, 1), 0);
  ::close(fd);
  EXPECT_FALSE(std::filesystem::exists(ro.dir / tool::standby_socket_name));
  EXPECT_LT(tool::connect_standby(ro.dir), 0);
}

// The tree grows while it is replayed (a backup whose root is a leaf, then
// enough writes to split the root and more): readers find every key, the
// ones right of the first split included, and scans see them all.
TEST(kv_standby_test, ReadersFindEveryKeyAfterTheRootSplitsUnderReplay) {
  std::string why;
  auto dir = test::test_dir::create(&why);
  if (!dir) GTEST_SKIP() << why;
  options o = primary_options(dir->path());
  o.write_buffer_bytes = 0;  // every put into its leaf: splits as the log goes
  lsn_t from = 0;
  constexpr int keys = 4000;
  {
    store p(o);
    p.put("k00000", "first");
    from = p.backup(dir->path() / "standby").lsn;
    for (int i = 1; i < keys; ++i) {
      char k[16];
      std::snprintf(k, sizeof k, "k%05d", i);
      p.put(k, std::string(200, 'v'));
    }
  }
  options ro;
  ro.dir = dir->path() / "standby";
  ro.replica = true;
  store replica(ro);
  EXPECT_EQ(replica.stats().height, 1u) << "the backup's root is not a leaf";
  tool::standby_server server(replica, ro.dir, "reads only");
  const wal::scan_result r = wal::scan_log(o.dir / "wal", from + 1, [&](const wal::record_view& v) {
    replica.replay(v.lsn, v.data);
    return true;
  });
  ASSERT_FALSE(r.corruption);
  EXPECT_GE(replica.stats().height, 2u);
  const int fd = tool::connect_standby(ro.dir);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(ask(fd, "get k00000\n", ""), "VALUE first\n");
  EXPECT_EQ(ask(fd, "get k03999\n", ""), "VALUE " + std::string(200, 'v') + "\n");
  const std::string all = ask(fd, "scan - - 0\n", "END ");
  EXPECT_EQ(all.substr(all.rfind("END ")), "END " + std::to_string(keys) + "\n");
  ::close(fd);
}

}  // namespace
}  // namespace pageio::kv
