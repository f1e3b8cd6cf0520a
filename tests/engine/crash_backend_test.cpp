// The crash-simulating wrapper over every backend: what a completed
// durability point covers survives settle(); what it does not comes back
// dropped, applied or torn at sector granularity, never anything else.
#include <pageio/engine/crash_backend.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "backend_fixture.hpp"

namespace pageio::test {
namespace {

constexpr std::size_t page = 4096;
constexpr std::size_t sector = 512;

std::vector<std::uint8_t> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class crash_backend_test : public backend_test {
 protected:
  crash_backend& wrap() {
    auto w = std::make_unique<crash_backend>(std::move(backend_));
    crash_backend& ref = *w;
    backend_ = std::move(w);
    return ref;
  }

  // A page of pattern `tag` as it would lie at `offset`.
  static aligned_buffer pattern_page(std::uint64_t offset, std::uint32_t tag) {
    aligned_buffer b(page, page);
    fill_pattern(b.data(), page, offset, tag);
    return b;
  }
};

TEST_P(crash_backend_test, FlushedWritesSurviveAndUnflushedOnesAreOldNewOrTorn) {
  // Many crash images of the same history: page 0 written and flushed, page 1
  // written and never flushed.
  std::size_t dropped = 0, applied = 0, torn = 0;
  for (std::uint64_t seed = 1; seed <= 24; ++seed) {
    remake(backend_options{});
    crash_backend& c = wrap();
    const std::string name = "img" + std::to_string(seed) + ".dat";
    file f = make_file(name, 4 * page, 1);
    aligned_buffer a = pattern_page(0, 50), b = pattern_page(page, 60);
    io_request r;
    r.prep_write(f.fd(), a.data(), page, 0);
    ASSERT_EQ(run_one(c, r), static_cast<std::int64_t>(page));
    r.prep_fdatasync(f.fd());
    ASSERT_EQ(run_one(c, r), 0);
    r.prep_write(f.fd(), b.data(), page, page);
    ASSERT_EQ(run_one(c, r), static_cast<std::int64_t>(page));
    EXPECT_EQ(c.unstable_writes(), 1u);

    c.cut_power();
    const auto rep = c.settle(seed);
    EXPECT_EQ(rep.dropped + rep.applied + rep.torn, 1u);
    dropped += rep.dropped;
    applied += rep.applied;
    torn += rep.torn;

    const auto img = read_file(dir() / name);
    ASSERT_EQ(img.size(), 4 * page);
    EXPECT_TRUE(has_pattern(img.data(), page, 0, 50)) << "seed " << seed << ": the flushed page was lost";
    for (std::size_t s = 0; s < page / sector; ++s) {
      const std::uint8_t* p = img.data() + page + s * sector;
      const std::uint64_t pos = page + s * sector;
      EXPECT_TRUE(has_pattern(p, sector, pos, 60) || has_pattern(p, sector, pos, 1))
          << "seed " << seed << ", sector " << s << " of page 1 is neither old nor new";
    }
    EXPECT_TRUE(has_pattern(img.data() + 2 * page, 2 * page, 2 * page, 1)) << "untouched pages changed";
  }
  EXPECT_GT(dropped, 0u);
  EXPECT_GT(applied, 0u);
  EXPECT_GT(torn, 0u);
}

TEST_P(crash_backend_test, DsyncWritesAreDurableWhenTheyComplete) {
  crash_backend& c = wrap();
  file f = make_file("dsync.dat", 2 * page, 2);
  aligned_buffer a = pattern_page(page, 70);
  io_request r;
  r.prep_write(f.fd(), a.data(), page, page);
  r.flags = io_flags::dsync;
  ASSERT_EQ(run_one(c, r), static_cast<std::int64_t>(page));
  EXPECT_EQ(c.unstable_writes(), 0u);
  c.cut_power();
  c.settle(9);
  const auto img = read_file(dir() / "dsync.dat");
  EXPECT_TRUE(has_pattern(img.data() + page, page, page, 70));
}

TEST_P(crash_backend_test, AFlushStillInFlightAtTheCutCoversNothing) {
  crash_backend& c = wrap();
  file f = make_file("inflight.dat", 2 * page, 3);
  aligned_buffer a = pattern_page(0, 80);
  io_request w;
  w.prep_write(f.fd(), a.data(), page, 0);
  ASSERT_EQ(run_one(c, w), static_cast<std::int64_t>(page));
  io_request fl;
  fl.prep_fdatasync(f.fd());
  completion_counter cc;
  fl.user_data = &cc;
  fl.on_complete = count_completion;
  c.submit(fl);
  c.cut_power();  // before the flush's completion was seen
  c.drain();
  EXPECT_EQ(cc.count, 1);
  EXPECT_EQ(cc.result, -EIO) << "a flush that completes after the cut does not count";
  EXPECT_EQ(c.unstable_writes(), 1u);
}

TEST_P(crash_backend_test, AFlushCoversOnlyItsOwnFile) {
  crash_backend& c = wrap();
  file x = make_file("x.dat", page, 4), y = make_file("y.dat", page, 5);
  aligned_buffer a = pattern_page(0, 90), b = pattern_page(0, 91);
  io_request r;
  r.prep_write(x.fd(), a.data(), page, 0);
  ASSERT_EQ(run_one(c, r), static_cast<std::int64_t>(page));
  r.prep_write(y.fd(), b.data(), page, 0);
  ASSERT_EQ(run_one(c, r), static_cast<std::int64_t>(page));
  r.prep_fdatasync(x.fd());
  ASSERT_EQ(run_one(c, r), 0);
  EXPECT_EQ(c.unstable_writes(), 1u) << "y's write is not covered by x's flush";
}

TEST_P(crash_backend_test, AfterTheCutEverythingFailsAndNothingIsWritten) {
  crash_backend& c = wrap();
  file f = make_file("dead.dat", page, 6);
  c.cut_power();
  EXPECT_TRUE(c.power_cut());
  aligned_buffer a = pattern_page(0, 99);
  io_request r;
  r.prep_write(f.fd(), a.data(), page, 0);
  EXPECT_EQ(run_one(c, r), -EIO);
  r.prep_read(f.fd(), a.data(), page, 0);
  EXPECT_EQ(run_one(c, r), -EIO);
  c.settle(1);
  const auto img = read_file(dir() / "dead.dat");
  EXPECT_TRUE(has_pattern(img.data(), page, 0, 6)) << "a write after the cut reached the file";
}

TEST_P(crash_backend_test, SettleRefusesBeforeTheCutOrWithRequestsOutstanding) {
  crash_backend& c = wrap();
  EXPECT_THROW(c.settle(1), std::logic_error);
  file f = make_file("busy.dat", page, 7);
  aligned_buffer a(page, page);
  io_request r;
  r.prep_read(f.fd(), a.data(), page, 0);
  c.submit(r);
  c.cut_power();
  EXPECT_THROW(c.settle(1), std::logic_error);
  c.drain();
  EXPECT_NO_THROW(c.settle(1));
}

PAGEIO_INSTANTIATE_ON_ALL_BACKENDS(crash_backend_test);

}  // namespace
}  // namespace pageio::test
