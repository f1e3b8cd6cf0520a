// The fault-injecting file system: an injected errno reaches the caller and
// the inner file system never saw the operation; random faults follow the
// seed, the rates and the operation mask; the counters count.
#include <pageio/engine/fault_file_system.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <fstream>
#include <functional>
#include <vector>

#include "../support/test_dir.hpp"

namespace pageio {
namespace {

using ::testing::HasSubstr;

struct caught {
  int err = 0;
  std::string what;
};
caught error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::system_error& e) {
    return {e.code().value(), e.what()};
  }
  return {};
}

open_options buffered(bool create = false) {
  open_options o;
  o.direct = false;
  o.create = create;
  return o;
}

class fault_file_system_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
  }
  std::filesystem::path path(const std::string& name) const { return dir_->path() / name; }
  void make(const std::string& name, const std::string& bytes) {
    std::ofstream(path(name), std::ios::binary) << bytes;
  }
  std::optional<test::test_dir> dir_;
};

TEST_F(fault_file_system_test, NamesItselfAfterItsInner) {
  fault_file_system fs;
  EXPECT_EQ(fs.name(), "fault+posix");
}

TEST_F(fault_file_system_test, AnInjectedErrnoReachesTheCallerAndTheOperationDidNotHappen) {
  fault_file_system fs;
  make("a", "AAAA");
  for (const int err : {EIO, ENOSPC, EACCES}) {
    SCOPED_TRACE(err);
    fs.fail_next(fs_op::rename, err);
    auto c = error_of([&] { fs.rename(path("a"), path("b")); });
    EXPECT_EQ(c.err, err);
    EXPECT_THAT(c.what, HasSubstr("rename " + path("a").string()));
    EXPECT_THAT(c.what, HasSubstr("injected fault"));
    EXPECT_TRUE(std::filesystem::exists(path("a"))) << "a failed rename moved the file";
    EXPECT_FALSE(std::filesystem::exists(path("b")));

    fs.fail_next(fs_op::unlink, err);
    EXPECT_EQ(error_of([&] { fs.unlink(path("a")); }).err, err);
    EXPECT_TRUE(std::filesystem::exists(path("a"))) << "a failed unlink removed the file";

    fs.fail_next(fs_op::open, err);
    c = error_of([&] { fs.open(path("new"), buffered(true)); });
    EXPECT_EQ(c.err, err);
    EXPECT_THAT(c.what, HasSubstr("open " + path("new").string()));
    EXPECT_FALSE(std::filesystem::exists(path("new"))) << "a failed create made the file";

    fs.fail_next(fs_op::create_directory, err);
    EXPECT_EQ(error_of([&] { fs.create_directory(path("d")); }).err, err);
    EXPECT_FALSE(std::filesystem::exists(path("d")));

    file f = fs.open(path("a"), buffered());
    fs.fail_next(fs_op::write_zeros, err);
    EXPECT_EQ(error_of([&] { fs.write_zeros(f, 0, 4096); }).err, err);
    fs.fail_next(fs_op::truncate, err);
    EXPECT_EQ(error_of([&] { fs.truncate(f, 1); }).err, err);
    fs.fail_next(fs_op::write, err);
    EXPECT_EQ(error_of([&] { fs.write(f, "ZZZZZZ", 6, 0); }).err, err);
    EXPECT_EQ(std::filesystem::file_size(path("a")), 4u)
        << "a failed write_zeros, write or truncate changed the size";

    char buf[4];
    fs.fail_next(fs_op::read, err);
    EXPECT_EQ(error_of([&] { fs.read(f, buf, 4, 0); }).err, err);
    fs.fail_next(fs_op::sync, err);
    EXPECT_EQ(error_of([&] { fs.sync(f); }).err, err);
    fs.fail_next(fs_op::sync_directory, err);
    EXPECT_EQ(error_of([&] { fs.sync_directory(dir_->path()); }).err, err);
    fs.fail_next(fs_op::list, err);
    EXPECT_EQ(error_of([&] { fs.list(dir_->path()); }).err, err);
    fs.fail_next(fs_op::stat, err);
    EXPECT_EQ(error_of([&] { fs.stat(path("a")); }).err, err);
  }
  // Nothing queued any more: everything works.
  EXPECT_NO_THROW(fs.rename(path("a"), path("b")));
  EXPECT_TRUE(std::filesystem::exists(path("b")));
}

TEST_F(fault_file_system_test, QueuedFaultsHitOnlyTheirOperationInOrder) {
  fault_file_system fs;
  make("a", "x");
  fs.fail_next(fs_op::stat, ENOSPC);
  fs.fail_next(fs_op::stat, EIO, 2);
  EXPECT_NO_THROW(fs.list(dir_->path())) << "a list is not a stat";
  EXPECT_EQ(error_of([&] { fs.stat(path("a")); }).err, ENOSPC);
  EXPECT_EQ(error_of([&] { fs.stat(path("a")); }).err, EIO);
  EXPECT_EQ(error_of([&] { fs.stat(path("a")); }).err, EIO);
  EXPECT_TRUE(fs.stat(path("a")));
}

// Which of `n` stats fail, and with what.
std::vector<int> stat_pattern(fault_file_system& fs, const std::filesystem::path& p, int n) {
  std::vector<int> out;
  for (int i = 0; i < n; ++i) out.push_back(error_of([&] { fs.stat(p); }).err);
  return out;
}

TEST_F(fault_file_system_test, RandomFaultsFollowTheSeedAndTheRates) {
  make("a", "x");
  fs_fault_options o;
  o.seed = 42;
  o.eio = 0.2;
  o.enospc = 0.2;
  o.eacces = 0.2;
  fault_file_system one(posix_file_system(), o), two(posix_file_system(), o);
  const auto p1 = stat_pattern(one, path("a"), 400);
  EXPECT_EQ(p1, stat_pattern(two, path("a"), 400)) << "same seed, same faults";
  o.seed = 43;
  fault_file_system three(posix_file_system(), o);
  EXPECT_NE(p1, stat_pattern(three, path("a"), 400)) << "another seed, other faults";

  // P(EIO) = 0.2, P(ENOSPC) = 0.8 * 0.2, P(EACCES) = 0.64 * 0.2, else success.
  const auto count = [&](int e) { return std::count(p1.begin(), p1.end(), e); };
  EXPECT_NEAR(count(EIO), 80, 30);
  EXPECT_NEAR(count(ENOSPC), 64, 30);
  EXPECT_NEAR(count(EACCES), 51, 30);
  EXPECT_EQ(count(EIO) + count(ENOSPC) + count(EACCES) + count(0), 400);

  const auto c = one.injected();
  EXPECT_EQ(c.eio, static_cast<std::uint64_t>(count(EIO)));
  EXPECT_EQ(c.enospc, static_cast<std::uint64_t>(count(ENOSPC)));
  EXPECT_EQ(c.eacces, static_cast<std::uint64_t>(count(EACCES)));
  EXPECT_EQ(c.of(fs_op::stat), c.total());
  EXPECT_EQ(c.of(fs_op::list), 0u);

  // A new seed restarts the generator.
  fs_fault_options again = o;
  again.seed = 42;
  three.set_options(again);
  EXPECT_EQ(stat_pattern(three, path("a"), 400), p1);
}

TEST_F(fault_file_system_test, TheMaskLimitsRandomFaultsToItsOperations) {
  make("a", "x");
  fs_fault_options o;
  o.eio = 1.0;
  o.ops = fs_op_mask(fs_op::sync) | fs_op_mask(fs_op::sync_directory);
  fault_file_system fs(posix_file_system(), o);
  file f = fs.open(path("a"), buffered());
  EXPECT_TRUE(fs.stat(path("a")));
  EXPECT_NO_THROW(fs.list(dir_->path()));
  EXPECT_NO_THROW(fs.write_zeros(f, 1, 10));
  EXPECT_EQ(error_of([&] { fs.sync(f); }).err, EIO);
  EXPECT_EQ(error_of([&] { fs.sync_directory(dir_->path()); }).err, EIO);
  // A queued fault ignores the mask.
  fs.fail_next(fs_op::stat, EACCES);
  EXPECT_EQ(error_of([&] { fs.stat(path("a")); }).err, EACCES);

  const auto c = fs.injected();
  EXPECT_EQ(c.of(fs_op::sync), 1u);
  EXPECT_EQ(c.of(fs_op::sync_directory), 1u);
  EXPECT_EQ(c.of(fs_op::stat), 1u);
  EXPECT_EQ(c.eio, 2u);
  EXPECT_EQ(c.eacces, 1u);
  EXPECT_EQ(c.total(), 3u);
  EXPECT_EQ(all_fs_ops, (1u << 12) - 1);
  EXPECT_NE(all_fs_ops & fs_op_mask(fs_op::write), 0u) << "the last operation is in the mask of them all";
}

}  // namespace
}  // namespace pageio
