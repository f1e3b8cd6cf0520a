// The segment store on its own (wal/src/segment_store.hpp, internal): what
// the preparer may and may not make.
#include "../../wal/src/segment_store.hpp"

#include <pageio/wal/reader.hpp>

#include <gtest/gtest.h>

#include "support/test_dir.hpp"

namespace pageio::wal::detail {
namespace {

TEST(segment_store, APreparerRequestTheFlusherOvertookNeverRemakesARecycledSegment) {
  // Under load the preparer can take its request for segment 2, then lose
  // the CPU; the flusher makes segment 2 itself, fills it, and a checkpoint
  // recycles it. The preparer's late step must not make segment 2 again:
  // an empty segment below the log reads as damage before it.
  std::string why;
  auto dir = test::test_dir::create(&why);
  if (!dir) GTEST_SKIP() << why;
  auto fs = posix_file_system();
  auto backend = make_backend("sync");
  segment_store store(fs, dir->path(), 4, {});  // no preparer thread: the test plays it
  store.writable(1);
  store.writable(2);
  store.writable(3);
  ASSERT_EQ(store.recycle({1, 2}), 2u);
  EXPECT_FALSE(fs->stat(dir->path() / segment_file_name(2)));
  store.prepare(2);  // the late step
  EXPECT_FALSE(fs->stat(dir->path() / segment_file_name(2))) << "a recycled segment was made again";
  store.prepare(6);  // a request ahead of the flusher is still honoured
  EXPECT_TRUE(fs->stat(dir->path() / segment_file_name(6)));
  store.release_all(*backend);
}

}  // namespace
}  // namespace pageio::wal::detail
