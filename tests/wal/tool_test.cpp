// pageio-wal against real logs: exit status 0 for a clean log or a torn tail,
// 1 for corruption (with segment, page and offset), 2 for usage errors; dump
// prints every record, stats the totals.
#include <pageio/kv/store.hpp>
#include <pageio/version.hpp>
#include <pageio/wal/log.hpp>
#include <pageio/wal/reader.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <fstream>
#include <sstream>
#include <regex>
#include <string>

#include "support/run_command.hpp"
#include "support/test_dir.hpp"

namespace pageio::wal {
namespace {

using run_output = test::command_output;

// Runs the tool with `args` (already shell-safe), capturing stdout and stderr.
run_output run_tool(const std::string& args) {
  return test::run_command(std::string(PAGEIO_WAL_TOOL) + " " + args + " 2>&1");
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
    // Every JSON output carries the version that wrote it, each line of
    // JSON Lines too.
    EXPECT_EQ(obj.value("version", ""), pageio::version_string) << line;
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
    EXPECT_EQ(j.value("version", ""), pageio::version_string) << line;
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

namespace pageio::wal {
namespace {

// A store written after its backup, its log archived as it went: the
// writes in LSN order, and each record's commit time, for models of the
// store at any target.
class wal_replay_test : public ::testing::Test {
 protected:
  struct write {
    lsn_t lsn;
    std::string key;
    std::optional<std::string> value;  // empty: deleted
  };
  void SetUp() override {
    std::string why;
    dir_ = test::test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
    db_ = dir_->path() / "db";
    archive_ = dir_->path() / "archive";
    kv::options o = opts(db_);
    o.wal_archive = archive_;
    kv::store s(o);
    s.put("before", "the backup");
    s.backup(dir_->path() / "backup");
    std::mt19937_64 rng(11);
    // At least 2,000 writes, and on until the archive holds several
    // segments: how many pages the writes fill depends on how the flusher
    // cut them into group commits (each pads its last page), so on a loaded
    // machine 2,000 writes archived only 3 segments once.
    const auto archived = [&] {
      std::error_code ec;  // none archived yet: no directory
      std::filesystem::directory_iterator it(archive_, ec);
      return ec ? 0 : std::distance(it, std::filesystem::directory_iterator());
    };
    for (int i = 0; i < 2000 || (archived() <= 3 && i < 20000); ++i) {
      const std::string k = std::string("k").append(std::to_string(rng() % 400));
      if (rng() % 5 == 0) {
        if (const lsn_t l = s.del(k)) writes_.push_back({l, k, std::nullopt});
      } else {
        const std::string v = std::to_string(i) + std::string(rng() % 200, 'v');
        writes_.push_back({s.put(k, v), k, v});
      }
      if (i % 600 == 599) s.checkpoint();  // segments recycled: archived
    }
    s.sync();
    last_ = s.stats().last_lsn;
  }
  static kv::options opts(const std::filesystem::path& dir) {
    kv::options o;
    o.dir = dir;
    o.sync = false;
    o.checkpoint_interval_ms = 0;
    o.wal_segment_bytes = 16 * 4096;  // many segments, archived as the log goes
    o.wal_buffer_bytes = 16 * 4096;
    return o;
  }
  // The store at `lsn`: every write at or below it.
  std::map<std::string, std::string> model_at(lsn_t lsn) const {
    std::map<std::string, std::string> m{{"before", "the backup"}};
    for (const auto& w : writes_) {
      if (w.lsn > lsn) break;
      if (w.value) {
        m[w.key] = *w.value;
      } else {
        m.erase(w.key);
      }
    }
    return m;
  }
  static std::map<std::string, std::string> contents_of(const std::filesystem::path& dir) {
    kv::options o = opts(dir);
    o.read_only = true;
    kv::store s(o);
    std::map<std::string, std::string> out;
    for (auto it = s.scan(); it.valid(); it.next()) out.emplace(it.key(), it.value());
    return out;
  }
  // A fresh copy of the backup to replay into.
  std::string fresh_copy(const std::string& name) const {
    const auto to = dir_->path() / name;
    std::filesystem::remove_all(to);
    std::filesystem::copy(dir_->path() / "backup", to, std::filesystem::copy_options::recursive);
    return "'" + to.string() + "'";
  }
  // The logs to replay from (and a small cache: the stores are small).
  std::string logs() const {
    return " --cache-mb 16 --archive '" + archive_.string() + "' --wal '" + (db_ / "wal").string() + "'";
  }

  std::optional<test::test_dir> dir_;
  std::filesystem::path db_, archive_;
  std::vector<write> writes_;
  lsn_t last_ = 0;
};

TEST_F(wal_replay_test, ReplayToManyTargetsGivesTheStoreAtEach) {
  ASSERT_GT(std::distance(std::filesystem::directory_iterator(archive_), std::filesystem::directory_iterator()), 3)
      << "the test wants an archive of several segments";
  // Commit times of the writes, from the log (pageio-wal dump --decode kv --json).
  std::map<lsn_t, std::uint64_t> time_of;
  for (const auto& line : [&] {
         std::vector<std::string> l;
         std::istringstream in(run_tool("dump --decode kv --json '" + archive_.string() +
                                        "' '" + (db_ / "wal").string() + "'")
                                   .out);
         for (std::string s; std::getline(in, s);) l.push_back(s);
         return l;
       }()) {
    const auto j = nlohmann::json::parse(line);
    time_of[j.at("lsn").get<lsn_t>()] = j.at("time_us").get<std::uint64_t>();
  }
  std::mt19937_64 rng(5);
  for (int t = 0; t < 4; ++t) {
    const write& w = writes_[rng() % writes_.size()];
    const bool exclusive = t % 2 == 1;
    const std::string into = fresh_copy("pitr");
    const auto r = run_tool("replay --into " + into + logs() + " --to-lsn " + std::to_string(w.lsn) +
                            (exclusive ? " --exclusive" : " --inclusive"));
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("was reached"), std::string::npos) << r.out;
    const lsn_t at = exclusive ? w.lsn - 1 : w.lsn;
    EXPECT_TRUE(contents_of(dir_->path() / "pitr") == model_at(at)) << "replay to LSN " << w.lsn << ": " << r.out;
  }
  // Time targets: the writes committed up to a moment (inclusive) or before it.
  for (int t = 0; t < 2; ++t) {
    const write& w = writes_[rng() % writes_.size()];
    const std::uint64_t when = time_of.at(w.lsn);
    const bool exclusive = t % 2 == 1;
    const std::time_t secs = static_cast<std::time_t>(when / 1'000'000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    const std::string stamp = std::string(buf) + "." + std::to_string(1'000'000 + when % 1'000'000).substr(1) + "Z";
    const std::string into = fresh_copy("pitr");
    const auto r = run_tool("replay --into " + into + logs() + " --to-time " + stamp +
                            (exclusive ? " --exclusive" : ""));
    ASSERT_EQ(r.status, 0) << r.out;
    // The store at the last record before the first one past the target.
    lsn_t at = 0;
    for (const auto& [lsn, us] : time_of) {
      if (exclusive ? us >= when : us > when) break;
      at = lsn;
    }
    EXPECT_TRUE(contents_of(dir_->path() / "pitr") == model_at(at)) << "replay to " << stamp << ": " << r.out;
  }
}

TEST_F(wal_replay_test, AReplayResumesWhereItStoppedAndTwiceIsOnce) {
  const std::string into = fresh_copy("pitr");
  const lsn_t mid = writes_[writes_.size() / 3].lsn, end = writes_[2 * writes_.size() / 3].lsn;
  ASSERT_EQ(run_tool("replay --into " + into + logs() + " --to-lsn " + std::to_string(mid)).status, 0);
  EXPECT_TRUE(contents_of(dir_->path() / "pitr") == model_at(mid));
  auto r = run_tool("replay --into " + into + logs() + " --to-lsn " + std::to_string(end) + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto resumed = nlohmann::json::parse(r.out);
  EXPECT_EQ(resumed.at("first_lsn").get<lsn_t>(), mid + 1) << "it did not resume: " << r.out;
  // Where the time went: the phases add up to no more than the whole.
  const double open_s = resumed.at("open_seconds"), apply_s = resumed.at("apply_seconds"),
               checkpoint_s = resumed.at("checkpoint_seconds"), total_s = resumed.at("seconds");
  EXPECT_GT(apply_s, 0) << r.out;
  EXPECT_LE(open_s + apply_s + checkpoint_s, total_s + 1e-6) << r.out;
  EXPECT_NEAR(resumed.at("apply_records_per_second").get<double>(),
              resumed.at("records").get<double>() / apply_s, 1e-3 * resumed.at("records").get<double>() / apply_s)
      << r.out;
  r = run_tool("replay --into " + into + logs() + " --to-lsn " + std::to_string(end) + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out).at("records"), 0) << r.out;
  EXPECT_TRUE(contents_of(dir_->path() / "pitr") == model_at(end));
  // Killed at any moment, and run again: the same store.
  for (int delay_ms : {30, 90}) {
    const std::string kinto = fresh_copy("killed");
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      const std::string cmd = std::string("exec ") + PAGEIO_WAL_TOOL + " replay --into " + kinto + logs() +
                              " --to-lsn " + std::to_string(end) + " >/dev/null 2>&1";
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
    r = run_tool("replay --into " + kinto + logs() + " --to-lsn " + std::to_string(end));
    ASSERT_EQ(r.status, 0) << "after a kill -9 at " << delay_ms << " ms: " << r.out;
    EXPECT_TRUE(contents_of(dir_->path() / "killed") == model_at(end)) << "after a kill -9 at " << delay_ms << " ms";
  }
}

TEST_F(wal_replay_test, AMissingArchivedSegmentStopsBeforeItWithExitThree) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(archive_)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 3u);
  const auto gone = parse_archive_file_name(files[files.size() / 2].filename().string());
  ASSERT_TRUE(gone);
  std::filesystem::remove(files[files.size() / 2]);
  const std::string into = fresh_copy("pitr");
  auto r = run_tool("replay --into " + into + logs() + " --dry-run");
  EXPECT_EQ(r.status, 3) << r.out;
  EXPECT_NE(r.out.find("NOT reachable"), std::string::npos) << r.out;
  r = run_tool("replay --into " + into + logs() + " --json");
  EXPECT_EQ(r.status, 3) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("stopped"), "target_not_reachable");
  EXPECT_NE(j.at("reason").get<std::string>().find("segment " + std::to_string(gone->seq) + " is missing"),
            std::string::npos)
      << r.out;
  const lsn_t at = j.at("last_lsn").get<lsn_t>();
  EXPECT_LT(at, gone->first_lsn);
  EXPECT_TRUE(contents_of(dir_->path() / "pitr") == model_at(at)) << "not a consistent store at LSN " << at;
}

// A backup opened as a store and written to has a history of its own: a
// replay into it is refused, as is a replica checkpoint of another copy.
TEST_F(wal_replay_test, AStoreWithAHistoryOfItsOwnIsRefused) {
  const std::string into = fresh_copy("written");
  {
    kv::store s(opts(dir_->path() / "written"));
    s.put("mine", "only");
  }
  auto r = run_tool("replay --into " + into + logs());
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("history of its own"), std::string::npos) << r.out;

  const std::string replayed = fresh_copy("replayed");
  ASSERT_EQ(run_tool("replay --into " + replayed + logs()).status, 0);
  const std::string other = fresh_copy("other");
  std::filesystem::copy_file(dir_->path() / "replayed" / "replica-checkpoint",
                             dir_->path() / "other" / "replica-checkpoint");
  r = run_tool("replay --into " + other + logs());
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("another copy"), std::string::npos) << r.out;
}

TEST_F(wal_replay_test, ADamagedArchiveFileStopsWithExitOneNamingThePlace) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(archive_)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 3u);
  const auto victim = files[files.size() / 2];
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 + 100);
    char c = 0;
    f.read(&c, 1);
    f.seekp(4096 + 100);
    c = static_cast<char>(c ^ 0x5a);
    f.write(&c, 1);
  }
  const std::string into = fresh_copy("pitr");
  const auto r = run_tool("replay --into " + into + logs());
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find(victim.filename().string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("byte offset"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("is a consistent store at LSN"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace pageio::wal
