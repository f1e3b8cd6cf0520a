// pageio-wal replay --follow, a warm standby: it catches up while the
// primary writes (its segments archived and recycled as it goes), serves
// read-only shells meanwhile through the follower (pageio-kv shell
// --read-only), refuses writes there, stops on SIGTERM leaving a consistent
// store at the LSN it reached, and resumes after a stop or a kill -9.
#include <pageio/kv/store.hpp>
#include <pageio/wal/reader.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "support/run_command.hpp"
#include "support/test_dir.hpp"

namespace pageio::wal {
namespace {

using namespace std::chrono_literals;

using output = test::command_output;
const auto run = test::run_command;

std::string q(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

class wal_follow_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
    db_ = dir_->path() / "db";
    archive_ = dir_->path() / "archive";
    standby_ = dir_->path() / "standby";
    kv::options o = opts(db_);
    o.wal_archive = archive_;
    primary_.emplace(o);
    write_some(200);
    primary_->backup(standby_);
    write_some(200);
    primary_->sync();
  }
  void TearDown() override {
    if (follower_ > 0) {
      ::kill(follower_, SIGKILL);
      ::waitpid(follower_, nullptr, 0);
    }
  }
  static kv::options opts(const std::filesystem::path& dir) {
    kv::options o;
    o.dir = dir;
    o.sync = false;
    o.checkpoint_interval_ms = 0;
    o.wal_segment_bytes = 16 * 4096;  // segments archived and recycled as the primary goes
    o.wal_buffer_bytes = 16 * 4096;
    return o;
  }
  void write_some(int n) {
    for (int i = 0; i < n; ++i, ++written_) {
      const std::string k = std::string("k").append(std::to_string(rng_() % 300));
      if (rng_() % 5 == 0) {
        primary_->del(k);
        model_.erase(k);
      } else {
        const std::string v = std::to_string(written_) + std::string(rng_() % 150, 'v');
        primary_->put(k, v);
        model_[k] = v;
      }
      if (written_ % 300 == 299) primary_->checkpoint();  // truncates the log: its segments go to the archive
    }
  }
  void start_follower() {
    follower_ = ::fork();
    ASSERT_GE(follower_, 0);
    if (follower_ == 0) {
      const std::string cmd = std::string("exec ") + PAGEIO_WAL_TOOL + " replay --into " + q(standby_) +
                              " --archive " + q(archive_) + " --wal " + q(db_ / "wal") +
                              " --follow --poll-ms 20 --cache-mb 16 > " + q(dir_->path() / "follower.out") + " 2>&1";
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // It listens as soon as it has the store open (a socket a killed
    // follower left is there before, but nobody answers on it).
    const auto until = std::chrono::steady_clock::now() + 60s;
    while (!listening() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(listening()) << follower_output();
  }
  bool listening() const {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    const std::string p = (standby_ / "standby.sock").string();
    if (p.size() >= sizeof sa.sun_path) return false;
    std::memcpy(sa.sun_path, p.c_str(), p.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
    if (fd >= 0) ::close(fd);
    return ok;
  }
  std::string follower_output() const {
    std::ifstream in(dir_->path() / "follower.out");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // The standby's replies to `requests` through a read-only shell.
  output shell(const std::string& requests) const {
    const auto in = dir_->path() / "requests.txt";
    std::ofstream(in) << requests;
    return run(std::string(PAGEIO_KV_TOOL) + " shell --dir " + q(standby_) + " --read-only < " + q(in) + " 2>&1");
  }
  std::uint64_t standby_lsn() const {
    const output r = shell("stats\n");
    if (r.status != 0) return 0;
    try {
      return nlohmann::json::parse(r.out).at("last_lsn").get<std::uint64_t>();
    } catch (...) {
      return 0;
    }
  }
  // Waits until the standby has applied the primary's every record (so
  // far: the primary's merger may log more at any time while it is open),
  // or `want` and every record before it.
  ::testing::AssertionResult caught_up(std::uint64_t want = 0) const {
    if (want == 0) want = primary_->stats().last_lsn;
    const auto until = std::chrono::steady_clock::now() + 60s;
    std::uint64_t at = 0;
    while ((at = standby_lsn()) < want && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
    if (at >= want) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "the standby is at LSN " << at << ", the primary at " << want << "\n"
                                         << follower_output();
  }
  std::string model_scan() const {
    std::string s;
    for (const auto& [k, v] : model_) s += "KV " + k + " " + v + "\n";
    return s + "END " + std::to_string(model_.size()) + "\n";
  }
  std::map<std::string, std::string> contents_of_standby() const {
    kv::options o = opts(standby_);
    o.read_only = true;
    kv::store s(o);
    std::map<std::string, std::string> out;
    for (auto it = s.scan(); it.valid(); it.next()) out.emplace(it.key(), it.value());
    return out;
  }

  std::optional<test::test_dir> dir_;
  std::filesystem::path db_, archive_, standby_;
  std::optional<kv::store> primary_;
  std::map<std::string, std::string> model_;
  std::mt19937_64 rng_{3};
  int written_ = 0;
  pid_t follower_ = -1;
};

TEST_F(wal_follow_test, TheStandbyCatchesUpWhileThePrimaryWritesAndServesReadsMeanwhile) {
  start_follower();
  ASSERT_TRUE(caught_up());
  EXPECT_EQ(shell("scan - - 0\n").out, model_scan());
  // The primary goes on, recycling segments into the archive; reads are
  // served all along, each a state the primary was in.
  for (int round = 0; round < 4; ++round) {
    write_some(400);
    primary_->sync();
    const output r = shell("get k1\nscan - - 5\n");
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(r.out.rfind("VALUE ", 0) == 0 || r.out.rfind("NOTFOUND", 0) == 0, true) << r.out;
  }
  // The primary closed: its last record is its last (no merger runs on).
  primary_.reset();
  const std::uint64_t last = scan_log(db_ / "wal").last_lsn;
  ASSERT_TRUE(caught_up(last));
  EXPECT_EQ(shell("scan - - 0\n").out, model_scan());
  EXPECT_EQ(shell("get k7\n").out, model_.count("k7") ? "VALUE " + model_.at("k7") + "\n" : "NOTFOUND\n");
  // Writes are refused there, saying why, and the session goes on.
  const output w = shell("put a b\ndel k1\ncheckpoint\nbatch 1\nput a b\nget zz\nquit\n");
  EXPECT_EQ(w.status, 0);
  std::istringstream lines(w.out);
  std::string line;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(std::getline(lines, line)) << w.out;
    EXPECT_EQ(line.rfind("ERR ", 0), 0u) << w.out;
    EXPECT_NE(line.find("warm standby"), std::string::npos) << line;
  }
  ASSERT_TRUE(std::getline(lines, line));
  EXPECT_EQ(line, "NOTFOUND");
  EXPECT_FALSE(std::getline(lines, line)) << "a reply after quit: " << line;

  // SIGTERM: it stops, checkpoints and closes; the store is the primary's.
  ASSERT_EQ(::kill(follower_, SIGTERM), 0);
  int st = 0;
  ASSERT_EQ(::waitpid(follower_, &st, 0), follower_);
  follower_ = -1;
  ASSERT_TRUE(WIFEXITED(st)) << follower_output();
  EXPECT_EQ(WEXITSTATUS(st), 0) << follower_output();
  EXPECT_NE(follower_output().find("asked to stop (SIGTERM) while following, at LSN " + std::to_string(last)),
            std::string::npos)
      << follower_output();
  EXPECT_FALSE(std::filesystem::exists(standby_ / "standby.sock"));
  EXPECT_TRUE(contents_of_standby() == model_);
  // Resumable: a later replay starts from there and has nothing to add.
  const output again = run(std::string(PAGEIO_WAL_TOOL) + " replay --into " + q(standby_) + " --archive " +
                           q(archive_) + " --wal " + q(db_ / "wal") + " --cache-mb 16 --json 2>&1");
  ASSERT_EQ(again.status, 0) << again.out;
  EXPECT_EQ(nlohmann::json::parse(again.out).at("records"), 0) << again.out;
}

TEST_F(wal_follow_test, AFollowerKilledMidwayLeavesAStoreThatReadsAndFollowsOn) {
  start_follower();
  write_some(600);
  primary_->sync();
  std::this_thread::sleep_for(30ms);
  ASSERT_EQ(::kill(follower_, SIGKILL), 0);
  ::waitpid(follower_, nullptr, 0);
  follower_ = -1;
  // The socket it left leads nowhere: the shell reads the store itself.
  ASSERT_TRUE(std::filesystem::exists(standby_ / "standby.sock"));
  const output r = shell("stats\n");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\"last_lsn\""), std::string::npos) << r.out;
  // Started again, it goes on from where the kill left the store.
  write_some(300);
  primary_->sync();
  start_follower();
  ASSERT_TRUE(caught_up());
  EXPECT_EQ(shell("scan - - 0\n").out, model_scan());
}

// Requests piped in faster than a long reply is read: the relay keeps
// reading replies while it hands over requests, so neither side waits on
// the other for ever.
TEST_F(wal_follow_test, APipedSessionOfManyRequestsAfterALongReplyCompletes) {
  write_some(1500);
  primary_->sync();
  start_follower();
  ASSERT_TRUE(caught_up());
  std::string requests = "scan - - 0\n";
  for (int i = 0; i < 40000; ++i) requests += "get k" + std::to_string(i % 300) + "\n";
  const auto in = dir_->path() / "many.txt";
  std::ofstream(in) << requests;
  const output r = run("timeout 60 " + std::string(PAGEIO_KV_TOOL) + " shell --dir " + q(standby_) +
                       " --read-only < " + q(in));
  ASSERT_EQ(r.status, 0) << "exit " << r.status << " (124: it hung)";
  EXPECT_EQ(static_cast<std::size_t>(std::count(r.out.begin(), r.out.end(), '\n')), model_.size() + 1 + 40000);
}

TEST_F(wal_follow_test, FollowTakesNoTargetAndNoDryRun) {
  for (const char* extra : {" --to-lsn 10", " --dry-run", " --to-time 2026-12-01T00:00:00Z"}) {
    const output r = run(std::string(PAGEIO_WAL_TOOL) + " replay --into " + q(standby_) + " --wal " + q(db_ / "wal") +
                         " --follow" + extra + " 2>&1");
    EXPECT_EQ(r.status, 2) << extra << ": " << r.out;
  }
}

}  // namespace
}  // namespace pageio::wal
