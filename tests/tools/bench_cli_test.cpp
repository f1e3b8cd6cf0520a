// pageio-bench's command line as typed (tools/pageio-bench/cli_options.cpp):
// fio's option names and engine names, its units, and the checks that make
// a bad value a usage error before anything runs.
#include "backend_option.hpp"
#include "fio_runner.hpp"
#include "cli_options.hpp"
#include "fio_names.hpp"
#include "command_line.hpp"

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace pageio::bench {
namespace {

// Parses `args` as the arguments of one command (the command's name not included).
template <typename Cli, typename Add>
Cli parsed(Add add, std::vector<std::string> args) {
  CLI::App app{"test", "pageio-bench"};
  Cli o;
  add(app, o);
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
  app.parse(args);
  return o;
}

io_cli io(std::vector<std::string> args) {
  return parsed<io_cli>([](CLI::App& a, io_cli& o) { add_io_options(a, o, false); }, std::move(args));
}
io_cli fio(std::vector<std::string> args) {
  return parsed<io_cli>([](CLI::App& a, io_cli& o) { add_io_options(a, o, true); }, std::move(args));
}
cache_cli cache(std::vector<std::string> args) {
  return parsed<cache_cli>([](CLI::App& a, cache_cli& o) { add_cache_options(a, o); }, std::move(args));
}
compare_cli compare(std::vector<std::string> args) {
  return parsed<compare_cli>([](CLI::App& a, compare_cli& o) { add_compare_options(a, o); }, std::move(args));
}

// The message of the usage error `f` ends in.
template <typename F>
std::string refused(F f) {
  try {
    f();
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "accepted";
}

bool registry_has(const std::string& name) {
  const auto& n = tools::backend_names();
  return std::find(n.begin(), n.end(), name) != n.end();
}

TEST(BenchFioNames, EngineNamesMapToBackends) {
  if (registry_has("aio")) {
    EXPECT_EQ(backend_for_fio_engine("libaio"), "aio");
  }
  if (registry_has("uring")) {
    EXPECT_EQ(backend_for_fio_engine("io_uring"), "uring");
  }
  if (registry_has("sync")) {
    for (const char* e : {"psync", "sync", "pvsync"}) EXPECT_EQ(backend_for_fio_engine(e), "sync") << e;
  }
  for (const auto& n : tools::backend_names()) EXPECT_EQ(backend_for_fio_engine(n), n);
  EXPECT_EQ(backend_for_fio_engine("posixaio"), std::nullopt);
  EXPECT_EQ(backend_for_fio_engine("default"), std::nullopt);
}

TEST(BenchFioNames, IoTakesFiosOptionNamesWithUnits) {
  const io_cli o = io({"--iodepth", "8", "--runtime", "2m", "--ramp_time", "500ms", "--filename", "x.dat",
                       "--ioengine", "libaio"});
  EXPECT_EQ(o.qd, 8u);
  EXPECT_DOUBLE_EQ(o.seconds, 120);
  EXPECT_DOUBLE_EQ(o.warmup_seconds, 0.5);
  EXPECT_EQ(o.file, "x.dat");
  EXPECT_EQ(o.backend, "aio");
  EXPECT_EQ(io({"--ioengine", "io_uring"}).backend, "uring");
  EXPECT_EQ(io({"--ioengine", "pvsync"}).backend, "sync");
  EXPECT_DOUBLE_EQ(io({"--runtime", "10s"}).seconds, 10);
  EXPECT_DOUBLE_EQ(io({"--runtime", "3"}).seconds, 3);
}

TEST(BenchFioNames, OurOwnOptionsTakeTheSameUnits) {
  const io_cli o = io({"--seconds", "1m", "--warmup", "250ms", "--qd", "4", "-f", "y.dat", "-j", "3"});
  EXPECT_DOUBLE_EQ(o.seconds, 60);
  EXPECT_DOUBLE_EQ(o.warmup_seconds, 0.25);
  EXPECT_EQ(o.qd, 4u);
  EXPECT_EQ(o.file, "y.dat");
  EXPECT_EQ(o.numjobs, 3u);
  EXPECT_EQ(io({}).numjobs, 1u) << "one job unless asked";
  EXPECT_DOUBLE_EQ(io({"-t", "1.5"}).seconds, 1.5);
}

TEST(BenchFioNames, CacheAndCompareTakeThemWhereTheyMeanTheSame) {
  const cache_cli c = cache({"--runtime", "3s", "--ramp_time", "1", "--filename", "p.dat", "--ioengine", "psync"});
  EXPECT_DOUBLE_EQ(c.seconds, 3);
  EXPECT_DOUBLE_EQ(c.warmup_seconds, 1);
  EXPECT_EQ(c.file, "p.dat");
  EXPECT_EQ(c.backend, "sync");
  const compare_cli m = compare({"--runtime", "2m", "--ramp_time", "100ms"});
  EXPECT_DOUBLE_EQ(m.seconds, 120);
  EXPECT_DOUBLE_EQ(m.warmup_seconds, 0.1);
}

TEST(BenchFioNames, TheFioCommandTakesEngineNamesAsBackends) {
  EXPECT_EQ(fio({"--backend", "libaio"}).backend, "aio");
  EXPECT_EQ(fio({"--backend", "default"}).backend, "default");
  EXPECT_EQ(fio({"--ioengine", "io_uring"}).backend, "uring");
}

TEST(BenchFioNames, TheRegisteredFioReferenceFixesBuffersAndFile) {
  const auto has = [](const std::vector<std::string>& argv, const std::string& a) {
    return std::find(argv.begin(), argv.end(), a) != argv.end();
  };
  fio_params p;
  p.engine = "io_uring";
  p.file = "x.dat";
  p.size_bytes = 1 << 20;
  const auto plain = fio_command(p);
  EXPECT_FALSE(has(plain, "--fixedbufs"));
  EXPECT_FALSE(has(plain, "--registerfiles"));
  p.registered = true;
  const auto reg = fio_command(p);
  EXPECT_TRUE(has(reg, "--fixedbufs"));
  EXPECT_TRUE(has(reg, "--registerfiles"));
  EXPECT_TRUE(has(reg, "--ioengine=io_uring"));
  EXPECT_TRUE(fio({"--backend", "uring", "--uring-register"}).uring_register);
}

TEST(BenchFioNames, AnAliasAndItsTwinExcludeEachOther) {
  EXPECT_NE(refused([] { io({"--qd", "2", "--iodepth", "4"}); }), "accepted");
  EXPECT_NE(refused([] { io({"--seconds", "2", "--runtime", "4"}); }), "accepted");
  EXPECT_NE(refused([] { io({"--warmup", "2", "--ramp_time", "4"}); }), "accepted");
  EXPECT_NE(refused([] { io({"-f", "a", "--filename", "b"}); }), "accepted");
  EXPECT_NE(refused([] { io({"-b", "sync", "--ioengine", "libaio"}); }), "accepted");
}

TEST(BenchFioNames, BadValuesAreRefusedInOneLineNamingTheOption) {
  EXPECT_EQ(refused([] { io({"--ramp_time", "-1"}); }),
            "--ramp_time -1: must be 0 or more seconds, up to a week (e.g. 2, 0.5, 500ms, 2m)");
  EXPECT_EQ(refused([] { io({"--runtime", "0s"}); }),
            "--runtime 0s: must be more than 0 seconds, up to a week (e.g. 2, 0.5, 500ms, 2m)");
  EXPECT_EQ(refused([] { io({"--iodepth", "0"}); }), "--iodepth 0: must be a whole number from 1 to 65536");
  EXPECT_EQ(refused([] { io({"--ioengine", "posixaio"}); }).rfind("--ioengine posixaio: must be one of fio's", 0),
            0u);
  EXPECT_EQ(refused([] { io({"--backend", "libaio"}); }), "--backend libaio: must be one of " +
                                                              tools::backend_list(true))
      << "io's --backend takes the registry's names only";
  EXPECT_EQ(refused([] { io({"--numjobs", "0"}); }), "--numjobs 0: must be a whole number from 1 to 1024");
  EXPECT_EQ(refused([] { io({"--bs", "4q"}); }).rfind("--bs 4q: ", 0), 0u);
  EXPECT_EQ(refused([] { compare({"--backends", "sync,nope"}); }),
            "--backends nope: must be one of " + tools::backend_list(false));
  EXPECT_EQ(refused([] { io({"--rw", "randx"}); }), "--rw randx: must be one of randread, randwrite, read, write");
  EXPECT_EQ(refused([] { cache({"--zipf-theta", "5"}); }), "--zipf-theta 5: must be a number from 0.01 to 0.999");
}

}  // namespace
}  // namespace pageio::bench
