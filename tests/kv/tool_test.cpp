// pageio-kv as a real process: the shell's line protocol (replies, escaping,
// errors that let the shell go on, atomic batches), the one-shot commands and
// their exit codes, check on a store damaged by hand, and kill -9 of a shell
// in the middle of writes: every write it acknowledged is there afterwards.
#include <pageio/kv/store.hpp>
#include <pageio/version.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <regex>
#include <string>
#include <vector>

#include "support/run_command.hpp"
#include "support/test_dir.hpp"

namespace pageio::kv {
namespace {

using run_output = test::command_output;

// Runs the tool with `args` (already shell-safe) and `input` on stdin.
run_output run_tool(const std::string& args, const std::string& input, const std::filesystem::path& scratch) {
  const auto in = scratch / "stdin.txt";
  {
    std::ofstream f(in, std::ios::binary);
    f << input;
  }
  return test::run_command(std::string(PAGEIO_KV_TOOL) + " " + args + " < '" + in.string() + "' 2>&1");
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

class kv_tool_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
  }
  std::string db() const { return "--dir '" + (dir_->path() / "db").string() + "'"; }
  std::optional<test::test_dir> dir_;
};

// A request the store refuses (a key too long, a backup into a directory
// that exists) gets one ERR line and nothing before it; a backup request
// answers OK with the LSN the backup holds.
TEST_F(kv_tool_test, ARequestTheStoreRefusesGetsOnlyAnErrLine) {
  const std::string long_key(2000, 'k');
  const auto backup = dir_->path() / "backup";
  const std::string script = "put " + long_key + " v\n"
                             "batch 1\n"
                             "put " + long_key + " v\n"
                             "put a 1\n"
                             "backup " + backup.string() + "\n"
                             "backup " + backup.string() + "\n"
                             "quit\n";
  const run_output r = run_tool("shell " + db(), script, dir_->path());
  ASSERT_EQ(r.status, 0) << r.out;
  const auto l = lines(r.out);
  ASSERT_EQ(l.size(), 5u) << r.out;
  EXPECT_EQ(l[0].rfind("ERR key of 2000 bytes", 0), 0u) << l[0];
  EXPECT_EQ(l[1].rfind("ERR ", 0), 0u) << l[1];
  EXPECT_EQ(l[2].rfind("OK ", 0), 0u) << l[2];
  ASSERT_EQ(l[3].rfind("OK ", 0), 0u) << l[3];
  EXPECT_GE(std::stoull(l[3].substr(3)), std::stoull(l[2].substr(3)));
  EXPECT_EQ(l[4].rfind("ERR ", 0), 0u) << l[4];
  EXPECT_NE(l[4].find("exists"), std::string::npos) << l[4];
  EXPECT_EQ(run_tool("get --dir '" + backup.string() + "' a", "", dir_->path()).out, "1\n");
}

// pageio-kv backup: a new directory, or --force over an earlier backup
// only; a JSON summary; never into the store itself.
TEST_F(kv_tool_test, BackupCopiesAClosedStoreAndReplacesOnlyABackup) {
  ASSERT_EQ(run_tool("put " + db() + " k v1", "", dir_->path()).status, 0);
  const std::string to = "'" + (dir_->path() / "b").string() + "'";
  auto r = run_tool("backup " + db() + " --to " + to + " --json", "", dir_->path());
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j.at("lsn").get<std::uint64_t>(), 0u);
  EXPECT_GT(j.at("data_pages").get<std::uint64_t>(), 0u);
  EXPECT_GT(j.at("bytes").get<std::uint64_t>(), 0u);
  EXPECT_TRUE(j.at("seconds").is_number());
  EXPECT_EQ(j.at("tool"), "pageio-kv");
  ASSERT_EQ(run_tool("put " + db() + " k v2", "", dir_->path()).status, 0);
  EXPECT_EQ(run_tool("backup " + db() + " --to " + to, "", dir_->path()).status, 2) << "an existing backup was replaced";
  EXPECT_EQ(run_tool("get --dir " + to + " k", "", dir_->path()).out, "v1\n");
  r = run_tool("backup " + db() + " --to " + to + " --force", "", dir_->path());
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("the store at LSN"), std::string::npos) << r.out;
  EXPECT_EQ(run_tool("get --dir " + to + " k", "", dir_->path()).out, "v2\n");
  std::filesystem::create_directories(dir_->path() / "notastore");
  r = run_tool("backup " + db() + " --to '" + (dir_->path() / "notastore").string() + "' --force", "", dir_->path());
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("not a pageio store"), std::string::npos) << r.out;
  r = run_tool("backup " + db() + " --to '" + (dir_->path() / "db" / "inner").string() + "'", "", dir_->path());
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_EQ(run_tool("backup --dir '" + (dir_->path() / "nostore").string() + "' --to '" +
                         (dir_->path() / "c").string() + "'",
                     "", dir_->path())
                .status,
            1);
}

TEST_F(kv_tool_test, TheShellAnswersEveryRequestOnOneLine) {
  const std::string script =
      "put a 1\n"
      "put key%20with%20space line%0Abreak%25\n"
      "get key%20with%20space\n"
      "get missing\n"
      "del a\n"
      "del a\n"
      "batch 3\n"
      "put b 2\n"
      "put c 3\n"
      "del key%20with%20space\n"
      "batch 2\n"
      "put d 4\n"
      "frobnicate\n"
      "scan - - 0\n"
      "scan b - 1\n"
      "scan - c 0\n"
      "put only-key\n"
      "put %zz v\n"
      "put  v\n"
      "checkpoint\n"
      "stats\n"
      "quit\n"
      "put never reached\n";
  const run_output r = run_tool("shell " + db(), script, dir_->path());
  ASSERT_EQ(r.status, 0) << r.out;
  const auto l = lines(r.out);
  ASSERT_EQ(l.size(), 20u) << r.out;
  EXPECT_EQ(l[0].rfind("OK ", 0), 0u) << l[0];
  EXPECT_EQ(l[1].rfind("OK ", 0), 0u) << l[1];
  EXPECT_GT(std::stoull(l[1].substr(3)), std::stoull(l[0].substr(3)));
  EXPECT_EQ(l[2], "VALUE line%0Abreak%25");
  EXPECT_EQ(l[3], "NOTFOUND");
  EXPECT_EQ(l[4].rfind("OK ", 0), 0u);
  EXPECT_EQ(l[5], "NOTFOUND");
  EXPECT_EQ(l[6].rfind("OK ", 0), 0u);
  EXPECT_EQ(l[7].rfind("ERR batch line 2", 0), 0u) << l[7];  // and "d" was not put
  EXPECT_EQ(l[8], "KV b 2");
  EXPECT_EQ(l[9], "KV c 3");
  EXPECT_EQ(l[10], "END 2");
  EXPECT_EQ(l[11], "KV b 2");
  EXPECT_EQ(l[12], "END 1");
  EXPECT_EQ(l[13], "KV b 2");
  EXPECT_EQ(l[14], "END 1");
  EXPECT_EQ(l[15].rfind("ERR ", 0), 0u);
  EXPECT_EQ(l[16].rfind("ERR ", 0), 0u);
  EXPECT_EQ(l[17].rfind("ERR ", 0), 0u);
  EXPECT_EQ(l[18].rfind("OK ", 0), 0u);
  const auto stats = nlohmann::json::parse(l[19]);
  EXPECT_EQ(stats["batches"], 1);
  EXPECT_EQ(stats.value("version", ""), pageio::version_string) << l[19];
  // The store the shell left behind, read by the one-shot commands.
  EXPECT_EQ(run_tool("get " + db() + " b", "", dir_->path()).out, "2\n");
  const run_output missing = run_tool("get " + db() + " never", "", dir_->path());
  EXPECT_EQ(missing.status, 1);
  const run_output json = run_tool("scan " + db() + " --json", "", dir_->path());
  ASSERT_EQ(json.status, 0);
  const auto jl = lines(json.out);
  ASSERT_EQ(jl.size(), 2u) << json.out;
  EXPECT_EQ(nlohmann::json::parse(jl[0]),
            (nlohmann::json{{"key", "b"}, {"value", "2"}, {"version", pageio::version_string}}))
      << "every JSON output carries the version, each line of JSON Lines too";
}

TEST_F(kv_tool_test, VersionAndTheRunInEveryJsonDocument) {
  const run_output v = run_tool("--version", "", dir_->path());
  EXPECT_EQ(v.status, 0);
  EXPECT_TRUE(std::regex_match(v.out, std::regex("pageio-kv [0-9]+\\.[0-9]+\\.[0-9]+\n"))) << v.out;
  ASSERT_EQ(run_tool("put " + db() + " k v", "", dir_->path()).status, 0);
  for (const std::string cmd : {"stats", "check"}) {
    const run_output r = run_tool(cmd + " " + db() + " --json", "", dir_->path());
    ASSERT_EQ(r.status, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j.at("tool"), "pageio-kv") << cmd;
    EXPECT_EQ(j.at("version").get<std::string>() + "\n", v.out.substr(std::string("pageio-kv ").size())) << cmd;
    EXPECT_EQ(j.at("schema"), 1) << cmd;
    EXPECT_TRUE(std::regex_match(j.at("time").get<std::string>(),
                                 std::regex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")))
        << cmd;
    EXPECT_FALSE(j.at("kernel").get<std::string>().empty()) << cmd;
    // The store's directory is on a real disk (test_dir refuses tmpfs).
    ASSERT_TRUE(j.at("device").is_object()) << cmd << ": " << r.out;
    EXPECT_FALSE(j.at("device").at("filesystem").get<std::string>().empty()) << cmd;
  }
}

TEST_F(kv_tool_test, CommandsExitZeroOneOrTwo) {
  EXPECT_EQ(run_tool("put " + db() + " k v", "", dir_->path()).status, 0);
  EXPECT_EQ(run_tool("del " + db() + " k", "", dir_->path()).out.rfind("OK ", 0), 0u);
  const run_output again = run_tool("del " + db() + " k", "", dir_->path());
  EXPECT_EQ(again.status, 0);
  EXPECT_EQ(again.out, "NOTFOUND\n");
  EXPECT_EQ(run_tool("check " + db(), "", dir_->path()).status, 0);
  EXPECT_EQ(run_tool("stats " + db() + " --json", "", dir_->path()).status, 0);
  EXPECT_EQ(run_tool("frobnicate", "", dir_->path()).status, 2);
  EXPECT_EQ(run_tool("get", "", dir_->path()).status, 2);
  EXPECT_EQ(run_tool("scan " + db() + " --limit many", "", dir_->path()).status, 2);
  EXPECT_EQ(run_tool("--help", "", dir_->path()).status, 0);
  EXPECT_EQ(run_tool("check --help", "", dir_->path()).status, 0);
  // A directory with no store: refused, and nothing is created.
  const auto nowhere = dir_->path() / "nowhere";
  const run_output r = run_tool("check --dir '" + nowhere.string() + "'", "", dir_->path());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("no pageio::kv store"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(nowhere));
  // An empty key: a usage error, nothing written.
  EXPECT_EQ(run_tool("put " + db() + " '' v", "", dir_->path()).status, 2);
  // A backend nobody knows: a usage error before any benchmark starts or
  // any store is made.
  const auto bench_db = dir_->path() / "bench-db";
  const run_output nope = run_tool("bench --backend nope --num 10 --db '" + bench_db.string() + "'", "", dir_->path());
  EXPECT_EQ(nope.status, 2) << nope.out;
  EXPECT_EQ(nope.out.find("fillrandom"), std::string::npos) << nope.out;
  EXPECT_FALSE(std::filesystem::exists(bench_db));
  // A --db in a directory that does not exist: a usage error, and no
  // directory made on the way (no mkdir -p of a mistyped path).
  const auto missing = dir_->path() / "missing" / "deeper";
  const run_output nodir = run_tool("bench --num 10 --db '" + (missing / "db").string() + "'", "", dir_->path());
  EXPECT_EQ(nodir.status, 2) << nodir.out;
  EXPECT_NE(nodir.out.find("does not exist"), std::string::npos) << nodir.out;
  EXPECT_EQ(nodir.out.find("fillrandom"), std::string::npos) << nodir.out;
  EXPECT_FALSE(std::filesystem::exists(dir_->path() / "missing"));
}

TEST_F(kv_tool_test, CheckReportsAPageDamagedByHandAndGetNeverReturnsItsData) {
  {
    options o;
    o.dir = dir_->path() / "db";
    store s(o);
    for (int i = 0; i < 2'000; ++i) s.put("key" + std::to_string(10'000 + i), "value" + std::to_string(i));
  }
  {
    std::fstream f(dir_->path() / "db" / "data", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(4 * 4096 + 3000);
    char c = 0;
    f.read(&c, 1);
    c ^= 0x01;
    f.seekp(4 * 4096 + 3000);
    f.write(&c, 1);
  }
  const run_output r = run_tool("check " + db(), "", dir_->path());
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("DAMAGE: page 4"), std::string::npos) << r.out;
  const run_output j = run_tool("check " + db() + " --json", "", dir_->path());
  EXPECT_EQ(j.status, 1);
  const auto report = nlohmann::json::parse(lines(j.out).at(0));
  EXPECT_FALSE(report["clean"]);
  EXPECT_EQ(report["problems"][0]["page"], 4);
  // Every get: the right value or exit 1 with an error, never other bytes.
  std::string script;
  for (int i = 0; i < 2'000; ++i) script += "get key" + std::to_string(10'000 + i) + "\n";
  const run_output g = run_tool("shell " + db(), script, dir_->path());
  const auto gl = lines(g.out);
  ASSERT_EQ(gl.size(), 2'000u);
  int errors = 0;
  for (int i = 0; i < 2'000; ++i) {
    if (gl[i].rfind("ERR ", 0) == 0) {
      ++errors;
      EXPECT_NE(gl[i].find("page 4"), std::string::npos) << gl[i];
    } else {
      EXPECT_EQ(gl[i], "VALUE value" + std::to_string(i));
    }
  }
  EXPECT_GT(errors, 0);
}

TEST_F(kv_tool_test, KillNineLosesNoAcknowledgedWrite) {
  // A shell fed puts through a pipe; its replies read as they come; killed
  // with SIGKILL after some of them.
  int to_child[2], from_child[2];
  ASSERT_EQ(::pipe(to_child), 0);
  ASSERT_EQ(::pipe(from_child), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(to_child[0], 0);
    ::dup2(from_child[1], 1);
    ::close(to_child[1]);
    ::close(from_child[0]);
    const std::string dir = (dir_->path() / "db").string();
    ::execl(PAGEIO_KV_TOOL, PAGEIO_KV_TOOL, "shell", "--dir", dir.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);
  FILE* replies = ::fdopen(from_child[0], "r");
  std::map<std::string, std::string> acked;
  char line[256];
  for (int i = 0; i < 300; ++i) {
    const std::string k = "k" + std::to_string(i % 97), v = "v" + std::to_string(i);
    const std::string req = "put " + k + " " + v + "\n";
    ASSERT_EQ(::write(to_child[1], req.data(), req.size()), static_cast<ssize_t>(req.size()));
    // Keep a few requests in flight: read a reply for all but the last 3.
    if (i >= 3) {
      ASSERT_NE(std::fgets(line, sizeof line, replies), nullptr);
      ASSERT_EQ(std::string(line).rfind("OK ", 0), 0u) << line;
    }
    if (i >= 3) acked["k" + std::to_string((i - 3) % 97)] = "v" + std::to_string(i - 3);
  }
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFSIGNALED(st));
  std::fclose(replies);
  ::close(to_child[1]);
  options o;
  o.dir = dir_->path() / "db";
  store s(o);
  EXPECT_TRUE(s.check().clean());
  for (const auto& [k, v] : acked) {
    const auto got = s.get(k);
    ASSERT_TRUE(got.has_value()) << k;
    // A later put of the same key may have been applied without its reply.
    const int acked_n = std::stoi(v.substr(1)), got_n = std::stoi(got->substr(1));
    EXPECT_GE(got_n, acked_n) << k;
    EXPECT_EQ(got_n % 97, acked_n % 97) << k;
  }
}

}  // namespace
}  // namespace pageio::kv
