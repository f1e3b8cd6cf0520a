// pageio-wal against real logs: exit status 0 for a clean log or a torn tail,
// 1 for corruption (with segment, page and offset), 2 for usage errors; dump
// prints every record, stats the totals.
#include <pageio/kv/store.hpp>
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

// Records 1..120, ten to a group commit (a page), in a log of four-page
// segments whose checkpoint archived the two holding only records before
// LSN 100; the paths as shell words.
struct archived_log {
  std::filesystem::path live, archive;
  std::string both() const { return "'" + archive.string() + "' '" + live.string() + "'"; }
};
archived_log make_archived_log(const std::filesystem::path& root) {
  archived_log a{root / "alog", root / "archive"};
  options o;
  o.dir = a.live;
  o.backend = "sync";
  o.segment_bytes = 4 * 4096;
  o.archive_dir = a.archive;
  log w(o);
  for (int i = 1; i <= 120; ++i) {
    const std::string rec = "record number " + std::to_string(i) + std::string(280, '.');
    w.append(std::as_bytes(std::span(rec)));
    if (i % 10 == 0) w.flush(static_cast<lsn_t>(i));
  }
  EXPECT_GE(w.truncate_before(100), 2u);
  return a;
}

TEST_F(wal_tool_test, AnArchiveAndTheLiveLogAreVerifiedDumpedAndSummarisedAsOne) {
  const archived_log a = make_archived_log(dir_->path());
  auto r = run_tool("verify " + a.both());
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("records 1 to 120"), std::string::npos) << r.out;
  r = run_tool("verify '" + a.live.string() + "'");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("records 1 to 120"), std::string::npos) << "the live log alone still starts at 1: " << r.out;
  r = run_tool("dump -d '" + a.archive.string() + "' -d '" + a.live.string() + "' --json");
  EXPECT_EQ(r.status, 0) << r.out;
  std::istringstream lines(r.out);
  std::string line;
  lsn_t expect = 1;
  while (std::getline(lines, line)) EXPECT_EQ(nlohmann::json::parse(line).at("lsn").get<lsn_t>(), expect++) << line;
  EXPECT_EQ(expect, 121u);
  r = run_tool("stats --json " + a.both());
  EXPECT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("first_lsn"), 1);
  EXPECT_EQ(j.at("last_lsn"), 120);
  EXPECT_EQ(j.at("records"), 120);
  EXPECT_EQ(j.at("clean"), true);
  EXPECT_EQ(j.at("paths").size(), 2u);
}

// An archive that lost a file: exit 1, the missing segment named.
TEST_F(wal_tool_test, AMissingArchivedSegmentIsNamedAndExitsOne) {
  const archived_log a = make_archived_log(dir_->path());
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(a.archive)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 2u);
  std::filesystem::remove(files[1]);
  auto r = run_tool("verify " + a.both());
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("segment 2 is missing"), std::string::npos) << r.out;
  r = run_tool("verify --json " + a.both());
  EXPECT_EQ(r.status, 1) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("clean"), false);
  EXPECT_EQ(j.at("corruption").at("segment"), 2);
}

// One segment file by itself, live or archived, as pg_waldump reads one
// WAL file: the records that end in it (the first, begun in the segment
// before, is skipped).
TEST_F(wal_tool_test, OneSegmentFileIsReadByItself) {
  const archived_log a = make_archived_log(dir_->path());
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(a.archive)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  const auto second = parse_archive_file_name(files[1].filename().string());
  ASSERT_TRUE(second);
  auto r = run_tool("dump --json '" + files[1].string() + "'");
  EXPECT_EQ(r.status, 0) << r.out;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<lsn_t> lsns;
  while (std::getline(lines, line)) lsns.push_back(nlohmann::json::parse(line).at("lsn").get<lsn_t>());
  ASSERT_FALSE(lsns.empty()) << r.out;
  EXPECT_LE(lsns.front(), second->first_lsn + 1);
  EXPECT_EQ(lsns.back(), second->last_lsn);
  r = run_tool("verify '" + files[1].string() + "'");
  EXPECT_EQ(r.status, 0) << r.out;
  r = run_tool("verify '" + (logdir_ / segment_file_name(1)).string() + "'");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("records 1 to"), std::string::npos) << r.out;
}

TEST_F(wal_tool_test, VerifyAndStatsSpeakJsonWithTheirVersion) {
  for (const std::string cmd : {"verify", "stats"}) {
    const auto r = run_tool(cmd + " --json " + dir());
    EXPECT_EQ(r.status, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j.at("tool"), "pageio-wal");
    EXPECT_TRUE(j.at("version").is_string());
    EXPECT_EQ(j.at("last_lsn"), 20);
    EXPECT_EQ(j.at("clean"), true);
    EXPECT_TRUE(j.at("torn_tail").is_null());
  }
}

// A store's log, told as what its records did: each put and delete with its
// key (escaped) and value length, the checkpoints, the commit times; the
// LSN range and count narrow it; --hex adds the payload.
TEST_F(wal_tool_test, DumpDecodesAStoresRecordsAsItsPutsAndDeletes) {
  const auto db = dir_->path() / "db";
  lsn_t first_put = 0;
  {
    kv::store s(kv::options{.dir = db});
    first_put = s.put("a", "1");
    s.put("b x", "hello");
    kv::write_batch b;
    b.put("c", "3");
    b.del("a");
    s.write(b);
    s.del("b x");
    s.put("big", std::string(30000, 'x'));
  }
  const std::string wal = "'" + (db / "wal").string() + "'";
  auto r = run_tool("dump --decode kv " + wal);
  EXPECT_EQ(r.status, 0) << r.out;
  for (const char* line : {"put  a  (1 B)", "put  b%20x  (5 B)", "put  c  (1 B)", "del  a", "del  b%20x",
                           "put  big  (30000 B)", "part of a large value", "checkpoint  (recovery starts at LSN"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line << " is not in:\n" << r.out;
  }
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(LSN +\d+  20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z  put  a)")))
      << r.out;

  r = run_tool("dump --decode kv --json --hex " + wal);
  EXPECT_EQ(r.status, 0) << r.out;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<std::string> ops;
  while (std::getline(lines, line)) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_TRUE(j.at("time").get<std::string>().ends_with("Z")) << line;
    EXPECT_GT(j.at("time_us").get<std::uint64_t>(), 1'700'000'000'000'000u) << line;
    EXPECT_EQ(j.at("payload_hex").get<std::string>().size() % 2, 0u) << line;
    for (const auto& c : j.at("changes")) {
      ops.push_back(c.at("op").get<std::string>() + " " + c.at("key").get<std::string>() +
                    (c.contains("value_bytes") ? " " + std::to_string(c.at("value_bytes").get<std::uint64_t>()) : ""));
    }
  }
  EXPECT_EQ(ops, (std::vector<std::string>{"put a 1", "put b%20x 5", "put c 1", "del a", "del b%20x", "put big 30000"}));

  // --from, --to, --limit: the records of LSNs [first_put, first_put + 2], at most two of them.
  r = run_tool("dump --decode kv --json --from " + std::to_string(first_put) + " --to " +
               std::to_string(first_put + 2) + " --limit 2 " + wal);
  EXPECT_EQ(r.status, 0) << r.out;
  std::vector<lsn_t> lsns;
  std::istringstream l2(r.out);
  while (std::getline(l2, line)) lsns.push_back(nlohmann::json::parse(line).at("lsn").get<lsn_t>());
  EXPECT_EQ(lsns, (std::vector<lsn_t>{first_put, first_put + 1}));
  r = run_tool("dump --json --from " + std::to_string(first_put) + " --to " + std::to_string(first_put) + " " + wal);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_EQ(run_tool("dump --from 5 --to 4 " + wal).status, 2);
  EXPECT_EQ(run_tool("dump --decode sql " + wal).status, 2);
}

TEST_F(wal_tool_test, DecodingALogThatIsNoStoresSaysSoAndExitsOne) {
  const auto r = run_tool("dump --decode kv " + dir());
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("LSN 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("leave out --decode kv"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace pageio::wal
