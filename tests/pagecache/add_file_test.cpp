// add_file through the pool's file_system: a file it creates is durable by
// name before it returns (a power cut right after cannot undo the create),
// and a missing directory is an error, never created.
#include <pageio/pagecache/buffer_pool.hpp>

#include <pageio/engine/crash_file_system.hpp>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "pool_fixture.hpp"

namespace pageio::pagecache::test {
namespace {

class pool_add_file_test : public pool_test {
 protected:
  options quiet(std::shared_ptr<file_system> fs) {
    options o;
    o.backend = backend_name();
    o.frames = 16;
    o.cleaner_dirty_fraction = 0;
    o.fs = std::move(fs);
    return o;
  }
};

TEST_P(pool_add_file_test, ACreatedFileSurvivesAPowerCutRightAfterAddFile) {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto fs = std::make_shared<crash_file_system>();
    const std::filesystem::path p = path("created-" + std::to_string(seed) + ".dat");
    {
      buffer_pool pool(quiet(fs));
      pool.add_file(p, true);
      EXPECT_EQ(fs->unstable_names(), 0u) << "add_file returned with the create not covered by a directory sync";
    }
    fs->cut_power();
    fs->settle(seed);
    EXPECT_TRUE(std::filesystem::exists(p)) << p << " was created by add_file and is gone after the power cut";
  }
}

TEST_P(pool_add_file_test, AMissingDirectoryIsAnErrorAndIsNotCreated) {
  auto fs = std::make_shared<crash_file_system>();
  buffer_pool pool(quiet(fs));
  const std::filesystem::path dir = path("no-such-dir");
  try {
    pool.add_file(dir / "data.dat", true);
    ADD_FAILURE() << "add_file succeeded in a directory that does not exist";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::error_code(ENOENT, std::system_category())) << e.what();
    EXPECT_NE(std::string(e.what()).find((dir / "data.dat").string()), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST_P(pool_add_file_test, WithoutAFileSystemThePosixOneOpensAnExistingFile) {
  write_file(path("data.dat"), 1, 8);
  buffer_pool pool(quiet(nullptr));  // no file system given: the posix one
  const file_id f = pool.add_file(path("data.dat"), false);
  page_ref p = pool.fetch({f, 7});
  EXPECT_TRUE(page_holds(p.data(), 1, 7, 0));
}

PAGECACHE_INSTANTIATE_ON_EVERY_BACKEND(pool_add_file_test);

}  // namespace
}  // namespace pageio::pagecache::test
