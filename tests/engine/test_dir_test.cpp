// The scratch-directory helper the other suites rely on.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "../support/test_dir.hpp"

namespace pageio::test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(TestDir, IsCreatedAndRemoved) {
  std::string why;
  std::filesystem::path p;
  {
    auto d = test_dir::create(&why);
    if (!d) GTEST_SKIP() << why;
    p = d->path();
    EXPECT_TRUE(std::filesystem::is_directory(p));
    std::filesystem::create_directory(*d / "sub");
    EXPECT_TRUE(std::filesystem::exists(p / "sub"));
    test_dir moved = std::move(*d);
    EXPECT_EQ(moved.path(), p);
  }
  EXPECT_FALSE(std::filesystem::exists(p)) << "removed with its contents";
}

TEST(TestDir, FallsBackWhenThePreferredDirectoryHasNoODirect) {
  std::string why;
  auto d = test_dir::create(&why);
  if (!d) GTEST_SKIP() << why;
  std::string log;
  EXPECT_EQ(choose_direct_io_root("/proc", d->path(), &why, &log), d->path());
  EXPECT_THAT(log, AllOf(HasSubstr("/proc"), HasSubstr("O_DIRECT"), HasSubstr(d->path().string())));
  log.clear();
  EXPECT_EQ(choose_direct_io_root(d->path(), "/proc", &why, &log), d->path());
  EXPECT_TRUE(log.empty()) << "nothing passed over";
}

TEST(TestDir, NowhereWithODirectGivesTheReason) {
  std::string why;
  std::string log;
  EXPECT_TRUE(choose_direct_io_root("/proc", "/sys", &why, &log).empty());
  EXPECT_THAT(why, AllOf(HasSubstr("/proc"), HasSubstr("/sys"), HasSubstr("PAGEIO_TEST_DIR")));
}

}  // namespace
}  // namespace pageio::test
