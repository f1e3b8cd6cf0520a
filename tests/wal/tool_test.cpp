// pageio-wal against real logs: exit status 0 for a clean log or a torn tail,
// 1 for corruption (with segment, page and offset), 2 for usage errors; dump
// prints every record, stats the totals.
#include <pageio/wal/log.hpp>
#include <pageio/wal/reader.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <regex>
#include <string>

#include "support/test_dir.hpp"

namespace pageio::wal {
namespace {

struct run_output {
  int status = -1;
  std::string out;
};

// Runs the tool with `args` (already shell-safe), capturing stdout.
run_output run_tool(const std::string& args) {
  run_output r;
  const std::string cmd = std::string(PAGEIO_WAL_TOOL) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

class wal_tool_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
    logdir_ = dir_->path() / "log";
    options o;
    o.dir = logdir_;
    o.backend = "sync";
    o.segment_bytes = 8 * 4096;
    log w(o);
    for (int i = 1; i <= 20; ++i) {
      std::string rec = "record number " + std::to_string(i);
      w.commit(std::as_bytes(std::span(rec)));
    }
  }
  std::string dir() const { return "'" + logdir_.string() + "'"; }

  std::optional<test::test_dir> dir_;
  std::filesystem::path logdir_;
};

TEST_F(wal_tool_test, VerifyACleanLog) {
  const auto r = run_tool("verify " + dir());
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("ends after LSN 20"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("OK"), std::string::npos) << r.out;
}

TEST_F(wal_tool_test, VerifyReportsATornTailAndExitsZero) {
  const auto seg = logdir_ / segment_file_name(3);
  FILE* f = std::fopen(seg.c_str(), "r+b");  // tears the last group commit (page 3 of segment 3)
  ASSERT_NE(f, nullptr);
  std::fseek(f, 3 * 4096 + 600, SEEK_SET);
  std::fputc(0x77, f);
  std::fclose(f);
  const auto r = run_tool("verify " + dir());
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("torn tail"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ends after LSN 19"), std::string::npos) << r.out;
}

TEST_F(wal_tool_test, VerifyNamesCorruptionAndExitsOne) {
  const auto seg = logdir_ / segment_file_name(1);
  FILE* f = std::fopen(seg.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  std::fseek(f, 2 * 4096 + 100, SEEK_SET);
  std::fputc(0x5a, f);
  std::fclose(f);
  const auto r = run_tool("verify " + dir());
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("CORRUPT"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("segment 1, page 2, byte offset 8192"), std::string::npos) << r.out;
}

TEST_F(wal_tool_test, UsageErrorsExitTwo) {
  EXPECT_EQ(run_tool("").status, 2);
  EXPECT_EQ(run_tool("verify").status, 2);
  EXPECT_EQ(run_tool("frobnicate " + dir()).status, 2);
  EXPECT_EQ(run_tool("verify '" + (dir_->path() / "nope").string() + "'").status, 2);
}

TEST_F(wal_tool_test, VersionPrintsTheToolAndItsVersion) {
  const auto r = run_tool("--version");
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(std::regex_match(r.out, std::regex("pageio-wal [0-9]+\\.[0-9]+\\.[0-9]+\n"))) << r.out;
}

TEST_F(wal_tool_test, ADirectoryWithoutSegmentsIsNotALog) {
  const auto empty = dir_->path() / "empty";
  std::filesystem::create_directory(empty);
  std::filesystem::create_directory(dir_->path() / "other");
  std::ofstream(dir_->path() / "other" / "notes.txt") << "not a log";
  for (const auto& d : {empty, dir_->path() / "other"}) {
    for (const char* cmd : {"verify", "dump", "stats"}) {
      const auto r = run_tool(std::string(cmd) + " '" + d.string() + "'");
      EXPECT_EQ(r.status, 2) << cmd << " " << d << ": " << r.out;
      EXPECT_NE(r.out.find("no segment files"), std::string::npos) << r.out;
      EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one line: " << r.out;
      EXPECT_EQ(r.out.find("OK"), std::string::npos) << r.out;
    }
  }
}

TEST_F(wal_tool_test, DumpFromBeyondTheLastLsnSaysSo) {
  const auto r = run_tool("dump " + dir() + " --from 21");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("last LSN is 20"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("LSN         21"), std::string::npos) << r.out;
}

TEST_F(wal_tool_test, DumpPrintsEveryRecordFromAnLsn) {
  const auto r = run_tool("dump " + dir() + " --from 15");
  EXPECT_EQ(r.status, 0) << r.out;
  std::istringstream lines(r.out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    EXPECT_NE(line.find("LSN"), std::string::npos) << line;
  }
  EXPECT_EQ(n, 6);
  EXPECT_NE(r.out.find("|record number 15|"), std::string::npos) << r.out;

  const auto j = run_tool("dump " + dir() + " --json");
  EXPECT_EQ(j.status, 0);
  std::istringstream jl(j.out);
  lsn_t expect = 1;
  while (std::getline(jl, line)) {
    const auto obj = nlohmann::json::parse(line);
    EXPECT_EQ(obj.at("lsn").get<lsn_t>(), expect++);
    EXPECT_TRUE(obj.contains("crc32c"));
    EXPECT_TRUE(obj.contains("length"));
  }
  EXPECT_EQ(expect, 21u);
}

TEST_F(wal_tool_test, StatsSummarises) {
  const auto r = run_tool("stats " + dir());
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("records       20"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("first LSN     1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("last LSN      20"), std::string::npos) << r.out;
  // 3 with records, and perhaps a 4th made ahead of use.
  EXPECT_TRUE(r.out.find("segments      3") != std::string::npos || r.out.find("segments      4") != std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("ends at       segment 3"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace pageio::wal
