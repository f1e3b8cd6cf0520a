// The validators every tool's options go through (tools/common): what each
// kind of value accepts, and the one line a bad value gets.
#include "backend_option.hpp"
#include "command_line.hpp"
#include "validators.hpp"

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace pageio::tools {
namespace {

TEST(ToolSeconds, PlainNumbersAreSecondsAndFioUnitsWork) {
  EXPECT_DOUBLE_EQ(*parse_seconds("2"), 2);
  EXPECT_DOUBLE_EQ(*parse_seconds("0.5"), 0.5);
  EXPECT_DOUBLE_EQ(*parse_seconds("10s"), 10);
  EXPECT_DOUBLE_EQ(*parse_seconds("2m"), 120);
  EXPECT_DOUBLE_EQ(*parse_seconds("2min"), 120);
  EXPECT_DOUBLE_EQ(*parse_seconds("1h"), 3600);
  EXPECT_DOUBLE_EQ(*parse_seconds("500ms"), 0.5);
  EXPECT_DOUBLE_EQ(*parse_seconds("250us"), 0.00025);
  EXPECT_DOUBLE_EQ(*parse_seconds("1.5S"), 1.5);
  for (const char* bad : {"", "-1", "s", "10x", "1e3", "inf", "nan", "2 m", "1..2"}) {
    EXPECT_FALSE(parse_seconds(bad)) << bad;
  }
}

TEST(ToolSeconds, CheckRewritesToSecondsAndRefusesInOneLine) {
  std::string t = "2m";
  EXPECT_EQ(check_seconds("--runtime", t, seconds_from::above_zero), "");
  EXPECT_EQ(t, "120");
  t = "500ms";
  EXPECT_EQ(check_seconds("--ramp_time", t, seconds_from::zero), "");
  EXPECT_EQ(t, "0.5");
  t = "0";
  EXPECT_EQ(check_seconds("--warmup", t, seconds_from::zero), "");
  t = "-1";
  EXPECT_EQ(check_seconds("--warmup", t, seconds_from::zero),
            "--warmup -1: must be 0 or more seconds, up to a week (e.g. 2, 0.5, 500ms, 2m)");
  t = "0";
  EXPECT_EQ(check_seconds("--seconds", t, seconds_from::above_zero),
            "--seconds 0: must be more than 0 seconds, up to a week (e.g. 2, 0.5, 500ms, 2m)");
  t = "8d";
  EXPECT_NE(check_seconds("--seconds", t, seconds_from::above_zero), "");
  t = "604801";
  EXPECT_NE(check_seconds("--seconds", t, seconds_from::above_zero), "") << "more than a week";
  t = "";
  EXPECT_EQ(check_seconds("--seconds", t, seconds_from::above_zero).rfind("--seconds '': ", 0), 0u);
}

TEST(ToolSizes, SuffixesAndMinimum) {
  EXPECT_EQ(*parse_size("4k"), 4096u);
  EXPECT_EQ(*parse_size("64KiB"), 65536u);
  EXPECT_EQ(*parse_size("1.5m"), 3u << 19);
  EXPECT_EQ(check_size("--bs", "4k", 1), "");
  EXPECT_EQ(check_size("--bs", "4x", 1),
            "--bs 4x: unknown suffix 'x'; give a size in bytes, with an optional suffix k, m, g or t (e.g. 64k, 1m, "
            "1g)");
  EXPECT_EQ(check_size("--segment-size", "4k", 8192),
            "--segment-size 4k: less than 8192 bytes; give a size of at least 8192 bytes, with an optional suffix "
            "k, m, g or t (e.g. 64k, 1m, 1g)");
  EXPECT_NE(check_size("--bs", "0", 1), "");
  EXPECT_NE(check_size("--size", "-1g"), "");
  EXPECT_NE(check_size("--size", "0.3k"), "");
}

TEST(ToolCounts, WholeNumbersInRange) {
  EXPECT_EQ(check_count("--qd", "1", 1, 65536), "");
  EXPECT_EQ(check_count("--qd", "65536", 1, 65536), "");
  EXPECT_EQ(check_count("--qd", "0", 1, 65536), "--qd 0: must be a whole number from 1 to 65536");
  EXPECT_EQ(check_count("--qd", "65537", 1, 65536), "--qd 65537: must be a whole number from 1 to 65536");
  EXPECT_EQ(check_count("--qd", "abc", 1, 65536), "--qd abc: must be a whole number from 1 to 65536");
  EXPECT_EQ(check_count("--qd", "1.5", 1, 65536), "--qd 1.5: must be a whole number from 1 to 65536");
  EXPECT_EQ(check_count("--resubmit-gap", "-1", -1, 1000000000), "");
  EXPECT_NE(check_count("--resubmit-gap", "-2", -1, 1000000000), "");
  EXPECT_EQ(check_count("--limit", "-1", 0), "--limit -1: must be a whole number, 0 or more");
  EXPECT_EQ(check_count("--seed", "18446744073709551615", 0), "");
  EXPECT_NE(check_count("--seed", "18446744073709551616", 0), "");
  EXPECT_NE(check_count("--seed", "", 0), "");
}

TEST(ToolNumbers, InRange) {
  EXPECT_EQ(check_number("--zipf-theta", "0.99", 0.01, 0.999), "");
  EXPECT_EQ(check_number("--zipf-theta", "5", 0.01, 0.999), "--zipf-theta 5: must be a number from 0.01 to 0.999");
  EXPECT_NE(check_number("--write-fraction", "x", 0, 1), "");
}

TEST(ToolChoices, OneOfTheWords) {
  EXPECT_EQ(check_choice("--rw", "read", {"randread", "read"}), "");
  EXPECT_EQ(check_choice("--rw", "randx", {"randread", "read"}), "--rw randx: must be one of randread, read");
}

TEST(ToolBackends, TheRegistrysNamesAndDefault) {
  const auto& names = backend_names();
  ASSERT_FALSE(names.empty());
  for (const auto& n : names) EXPECT_EQ(check_backend("--backend", n, false), "") << n;
  EXPECT_EQ(check_backend("--backend", "default", true), "");
  EXPECT_NE(check_backend("--backends", "default", false), "");
  const std::string m = check_backend("--backend", "nope", true);
  EXPECT_EQ(m, "--backend nope: must be one of " + backend_list(true));
  for (const auto& n : names) EXPECT_NE(m.find(n), std::string::npos) << m;
}

// Through CLI11, as the tools use them: a good value reaches the variable
// (a duration in seconds), a bad one leaves app.parse() as bad_value whose
// message is the whole line.
TEST(ToolValidators, ThroughCli11) {
  CLI::App app{"test", "pageio-test"};
  double seconds = 4, warmup = 0.5;
  unsigned qd = 1;
  std::string size = "1g", backend = "default";
  as_seconds(app.add_option("--seconds,-t", seconds), seconds_from::above_zero);
  as_seconds(app.add_option("--warmup", warmup), seconds_from::zero);
  as_count(app.add_option("--qd", qd), 1, 65536);
  as_size(app.add_option("--size", size), 1);
  as_backend(app.add_option("--backend", backend), true);

  std::vector<std::string> args{"-t", "1m", "--warmup", "250ms", "--qd", "32", "--size", "2", "--backend", "sync"};
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
  app.parse(args);
  EXPECT_DOUBLE_EQ(seconds, 60);
  EXPECT_DOUBLE_EQ(warmup, 0.25);
  EXPECT_EQ(qd, 32u);
  EXPECT_EQ(size, "2");
  EXPECT_EQ(backend, "sync");

  auto refused = [&](std::vector<std::string> args) -> std::string {
    std::reverse(args.begin(), args.end());
    try {
      app.clear();
      app.parse(args);
    } catch (const bad_value& e) {
      return e.what();
    } catch (const CLI::ParseError& e) {
      return std::string("not bad_value: ") + e.what();
    }
    return "accepted";
  };
  EXPECT_EQ(refused({"--warmup", "-1"}),
            "--warmup -1: must be 0 or more seconds, up to a week (e.g. 2, 0.5, 500ms, 2m)");
  EXPECT_EQ(refused({"-t", "0"}), "--seconds 0: must be more than 0 seconds, up to a week (e.g. 2, 0.5, 500ms, 2m)");
  EXPECT_EQ(refused({"--qd", "0"}), "--qd 0: must be a whole number from 1 to 65536");
  EXPECT_EQ(refused({"--backend", "nope"}), "--backend nope: must be one of " + backend_list(true));
  EXPECT_EQ(refused({"--size", "1q"}).rfind("--size 1q: unknown suffix 'q'", 0), 0u);
}

TEST(ToolUsage, AUsageErrorIsOneLineAndTheHint) {
  testing::internal::CaptureStderr();
  EXPECT_EQ(report_usage_error("pageio-test", "--qd 0: must be a whole number from 1 to 65536"), 2);
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "pageio-test: --qd 0: must be a whole number from 1 to 65536\nRun with --help for more information.\n");
}

TEST(ToolUsage, ParseCommandLineReportsAndReturnsTwo) {
  CLI::App app{"test", "pageio-test"};
  set_common_flags(app, "1.2.3");
  app.require_subcommand(1, 1);
  unsigned qd = 1;
  auto* run = app.add_subcommand("run", "run");
  as_count(run->add_option("--qd", qd), 1, 8);
  auto* other = app.add_subcommand("other", "other");
  (void)other;

  const char* bad[] = {"pageio-test", "run", "--qd", "9"};
  testing::internal::CaptureStderr();
  EXPECT_EQ(parse_command_line(app, 4, bad), std::optional<int>(2));
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "pageio-test: --qd 9: must be a whole number from 1 to 8\nRun with --help for more information.\n");

  CLI::App app2{"test", "pageio-test"};
  set_common_flags(app2, "1.2.3");
  app2.require_subcommand(1, 1);
  app2.add_subcommand("run", "run");
  app2.add_subcommand("other", "other");
  const char* unknown[] = {"pageio-test", "frob"};
  testing::internal::CaptureStderr();
  EXPECT_EQ(parse_command_line(app2, 2, unknown), std::optional<int>(2));
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "pageio-test: frob: not a command; give one of run, other\nRun with --help for more information.\n");

  CLI::App app3{"test", "pageio-test"};
  set_common_flags(app3, "1.2.3");
  const char* version[] = {"pageio-test", "--version"};
  testing::internal::CaptureStdout();
  EXPECT_EQ(parse_command_line(app3, 2, version), std::optional<int>(0));
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "pageio-test 1.2.3\n");
}

}  // namespace
}  // namespace pageio::tools
