// Building backends by name, and the errors for bad names and options.
#include <pageio/engine/backend.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <utility>
#include <string>

namespace pageio {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

const char* const all_names[] = {"sync", "aio", "uring"};

TEST(MakeBackend, UnknownNameListsTheValidOnes) {
  try {
    make_backend("nonsense");
    FAIL() << "make_backend(\"nonsense\") returned a backend";
  } catch (const backend_unavailable& e) {
    EXPECT_EQ(e.code(), std::make_error_code(std::errc::invalid_argument));
    EXPECT_THAT(e.what(), AllOf(HasSubstr("nonsense"), HasSubstr("sync"), HasSubstr("aio"),
                                HasSubstr("uring"), HasSubstr("default")));
  }
}

TEST(MakeBackend, CallbackResubmissionsGoToTheKernelInTheBackendsDefaultGroups) {
  // uring: groups of 8, with or without a single issuer (docs/engine.md,
  // "Submitting from completion callbacks"); aio and sync: one at a time.
  const std::pair<const char*, std::size_t> defaults[] = {{"sync", 1}, {"aio", 1}, {"uring", 8}};
  for (const auto& [name, want] : defaults) {
    for (const bool single : {false, true}) {
      backend_options o;
      o.uring_single_thread = single;
      std::unique_ptr<io_backend> be;
      try {
        be = make_backend(name, o);
      } catch (const backend_unavailable&) {
        continue;  // not here
      }
      EXPECT_EQ(be->callback_batch(), want) << name << (single ? ", single issuer" : "");
      o.callback_batch = 3;
      EXPECT_EQ(make_backend(name, o)->callback_batch(), 3u) << name << ": an explicit size is kept";
    }
  }
}

TEST(MakeBackend, NamesAreCaseSensitiveAndExact) {
  EXPECT_THROW(make_backend("Sync"), backend_unavailable);
  EXPECT_THROW(make_backend(""), backend_unavailable);
  EXPECT_THROW(make_backend("sync "), backend_unavailable);
}

class MakeBackendQueueDepth : public ::testing::TestWithParam<unsigned> {};

TEST_P(MakeBackendQueueDepth, OutOfRangeIsAClearError) {
  backend_options opts;
  opts.queue_depth = GetParam();
  for (const char* name : {"sync", "aio", "uring", "default"}) {
    SCOPED_TRACE(name);
    try {
      auto be = make_backend(name, opts);
      ADD_FAILURE() << name << " accepted queue depth " << GetParam();
    } catch (const backend_unavailable& e) {
      EXPECT_THAT(e.what(), AllOf(HasSubstr("queue depth"), HasSubstr(std::to_string(GetParam()))));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Limits, MakeBackendQueueDepth, ::testing::Values(0u, 1'000'000u));

TEST(MakeBackend, QueueDepthOneWorks) {
  backend_options opts;
  opts.queue_depth = 1;
  for (const std::string& name : available_backends()) {
    auto be = make_backend(name, opts);
    EXPECT_EQ(be->caps().queue_depth, 1u) << name;
  }
}

TEST(MakeBackend, BuildsWhatItIsAskedFor) {
  for (const auto& st : probe_backends()) {
    if (!st.available) continue;
    auto be = make_backend(st.name);
    ASSERT_NE(be, nullptr);
    EXPECT_EQ(be->name(), st.name);
    EXPECT_EQ(be->caps().name, st.name);
    EXPECT_EQ(be->caps().queue_depth, backend_options{}.queue_depth);
    EXPECT_EQ(be->outstanding(), 0u);
  }
}

TEST(ProbeBackends, ListsEveryBackendBestFirstWithReasons) {
  const auto all = probe_backends();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].name, "uring");
  EXPECT_EQ(all[1].name, "aio");
  EXPECT_EQ(all[2].name, "sync");
  EXPECT_TRUE(all[2].available) << "pread/pwrite always work";
  for (const auto& st : all) {
    if (st.available) {
      EXPECT_TRUE(st.reason.empty()) << st.name;
    } else {
      EXPECT_FALSE(st.reason.empty()) << st.name << " is unavailable without saying why";
      EXPECT_THROW(make_backend(st.name), backend_unavailable);
    }
  }
}

TEST(AvailableBackends, AreTheProbedOnesInOrderAndDefaultIsTheFirst) {
  std::vector<std::string> expected;
  for (const auto& st : probe_backends()) {
    if (st.available) expected.push_back(st.name);
  }
  const auto names = available_backends();
  EXPECT_EQ(names, expected);
  ASSERT_FALSE(names.empty());
  auto def = make_backend("default");
  EXPECT_EQ(def->name(), names.front());
  for (const auto& n : names) {
    EXPECT_NE(std::find(std::begin(all_names), std::end(all_names), n), std::end(all_names)) << n;
  }
}

}  // namespace
}  // namespace pageio

namespace pageio {
namespace {

TEST(BackendNames, AreEveryBackendBuiltInBestFirstAsTheProbeListsThem) {
  std::vector<std::string> probed;
  for (const auto& st : probe_backends()) probed.push_back(st.name);
  EXPECT_EQ(backend_names(), probed) << "the names a tool offers are the ones make_backend knows";
  for (const auto& n : backend_names()) {
    try {
      make_backend(n);
    } catch (const backend_unavailable&) {
      // known, only not startable here
    } catch (const std::exception& e) {
      ADD_FAILURE() << n << ": " << e.what();
    }
  }
}

}  // namespace
}  // namespace pageio
