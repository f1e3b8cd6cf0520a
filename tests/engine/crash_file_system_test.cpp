// The crash model over data, sizes and names: what a durability point
// covers survives every settle(); what it does not is kept for some seeds
// and undone for others, and undone the way the model says (a file back
// under its old name, a replaced file back with its old bytes, a size back
// to the durable one with the bytes a shrink removed).
#include <pageio/engine/crash_file_system.hpp>

#include <pageio/engine/backend.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <fstream>
#include <functional>
#include <iterator>
#include <vector>

#include "../support/test_dir.hpp"
#include "backend_fixture.hpp"

namespace pageio {
namespace {

constexpr std::size_t page = 4096;
constexpr std::size_t sector = 512;
constexpr std::uint64_t seeds = 32;

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Written outside the model: durable from the model's point of view.
void spit(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

open_options buffered(bool create = false) {
  open_options o;
  o.direct = false;
  o.create = create;
  return o;
}

int error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::system_error& e) {
    return e.code().value();
  }
  return 0;
}

class crash_file_system_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
  }
  // A fresh directory for one round.
  std::filesystem::path round_dir(std::uint64_t seed) {
    auto d = dir_->path() / ("round" + std::to_string(seed));
    std::filesystem::create_directory(d);
    return d;
  }
  std::optional<test::test_dir> dir_;
};

TEST_F(crash_file_system_test, AnUncoveredCreateMayVanishACoveredOneSurvives) {
  std::size_t vanished = 0, survived = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const auto d = round_dir(seed);
    crash_file_system fs;
    EXPECT_EQ(fs.name(), "crash+posix");
    file f = fs.open(d / "new", buffered(true));
    fs.write_zeros(f, 0, page);
    fs.sync(f);  // the data is durable, the name is not
    EXPECT_EQ(fs.unstable_names(), 1u);
    fs.cut_power();
    const auto rep = fs.settle(seed);
    EXPECT_EQ(rep.names_kept + rep.names_undone, 1u);
    if (std::filesystem::exists(d / "new")) {
      ++survived;
      EXPECT_EQ(rep.names_kept, 1u);
      EXPECT_EQ(std::filesystem::file_size(d / "new"), page);
    } else {
      ++vanished;
      EXPECT_EQ(rep.names_undone, 1u);
    }
  }
  EXPECT_GT(vanished, 0u);
  EXPECT_GT(survived, 0u);

  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const auto d = round_dir(100 + seed);
    crash_file_system fs;
    file f = fs.open(d / "new", buffered(true));
    fs.sync_directory(d);
    EXPECT_EQ(fs.unstable_names(), 0u);
    fs.cut_power();
    fs.settle(seed);
    EXPECT_TRUE(std::filesystem::exists(d / "new")) << "seed " << seed << ": a synced create vanished";
  }
}

TEST_F(crash_file_system_test, AnUndoneRenameBringsBackBothNames) {
  std::size_t kept = 0, undone = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const auto d = round_dir(seed);
    spit(d / "a", "new contents");
    spit(d / "b", "old contents of b");
    crash_file_system fs;
    fs.rename(d / "a", d / "b");
    fs.cut_power();
    fs.settle(seed);
    if (std::filesystem::exists(d / "a")) {
      ++undone;
      EXPECT_EQ(slurp(d / "a"), "new contents");
      EXPECT_EQ(slurp(d / "b"), "old contents of b") << "the replaced file did not come back";
    } else {
      ++kept;
      EXPECT_EQ(slurp(d / "b"), "new contents");
    }
  }
  EXPECT_GT(kept, 0u);
  EXPECT_GT(undone, 0u);

  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const auto d = round_dir(100 + seed);
    spit(d / "a", "new contents");
    crash_file_system fs;
    fs.rename(d / "a", d / "b");
    fs.sync_directory(d);
    fs.cut_power();
    fs.settle(seed);
    EXPECT_FALSE(std::filesystem::exists(d / "a")) << "seed " << seed;
    EXPECT_EQ(slurp(d / "b"), "new contents") << "seed " << seed;
  }
}

TEST_F(crash_file_system_test, ARenameBetweenDirectoriesNeedsBothSynced) {
  std::size_t undone = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const auto d = round_dir(seed);
    std::filesystem::create_directory(d / "x");
    std::filesystem::create_directory(d / "y");
    spit(d / "x" / "f", "f");
    crash_file_system fs;
    fs.rename(d / "x" / "f", d / "y" / "f");
    fs.sync_directory(d / "y");
    EXPECT_EQ(fs.unstable_names(), 1u) << "one of two directories synced";
    if (seed % 2 == 0) {
      fs.sync_directory(d / "x");
      EXPECT_EQ(fs.unstable_names(), 0u);
    }
    fs.cut_power();
    fs.settle(seed);
    const bool back = std::filesystem::exists(d / "x" / "f");
    EXPECT_NE(back, std::filesystem::exists(d / "y" / "f")) << "seed " << seed << ": one name, exactly";
    if (seed % 2 == 0) {
      EXPECT_FALSE(back) << "seed " << seed << ": a covered rename was undone";
    }
    undone += back;
  }
  EXPECT_GT(undone, 0u);
}

TEST_F(crash_file_system_test, AnUndoneUnlinkBringsTheFileBackWithItsBytes) {
  std::size_t gone = 0, back = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const auto d = round_dir(seed);
    spit(d / "u", "unlinked bytes");
    crash_file_system fs;
    fs.unlink(d / "u");
    EXPECT_FALSE(std::filesystem::exists(d / "u"));
    fs.cut_power();
    fs.settle(seed);
    if (std::filesystem::exists(d / "u")) {
      ++back;
      EXPECT_EQ(slurp(d / "u"), "unlinked bytes");
    } else {
      ++gone;
    }
  }
  EXPECT_GT(gone, 0u);
  EXPECT_GT(back, 0u);
}

TEST_F(crash_file_system_test, AKeptRenameOfAFileWhoseCreateWasUndoneIsSkipped) {
  std::set<std::string> outcomes;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const auto d = round_dir(seed);
    crash_file_system fs;
    {
      file f = fs.open(d / "tmp", buffered(true));
      fs.write_zeros(f, 0, 100);
      fs.sync(f);
    }
    fs.rename(d / "tmp", d / "final");
    fs.cut_power();
    const auto rep = fs.settle(seed);
    EXPECT_EQ(rep.names_kept + rep.names_undone, 2u);
    const bool tmp = std::filesystem::exists(d / "tmp"), fin = std::filesystem::exists(d / "final");
    EXPECT_FALSE(tmp && fin) << "seed " << seed << ": one file under two names";
    if (fin) {
      EXPECT_EQ(std::filesystem::file_size(d / "final"), 100u);
    }
    if (tmp) {
      EXPECT_EQ(std::filesystem::file_size(d / "tmp"), 100u);
    }
    outcomes.insert(tmp ? "tmp" : fin ? "final" : "none");
  }
  EXPECT_EQ(outcomes.size(), 3u) << "expected every outcome: none, tmp, final";
}

TEST_F(crash_file_system_test, FilesInAnUndoneDirectoryGoWithIt) {
  std::size_t dir_gone = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const auto d = round_dir(seed);
    crash_file_system fs;
    EXPECT_TRUE(fs.create_directory(d / "sub"));
    EXPECT_FALSE(fs.create_directory(d / "sub"));
    { file f = fs.open(d / "sub" / "f", buffered(true)); }
    fs.sync_directory(d / "sub");  // covers f, not sub itself
    fs.cut_power();
    fs.settle(seed);
    if (std::filesystem::exists(d / "sub")) {
      EXPECT_TRUE(std::filesystem::exists(d / "sub" / "f")) << "seed " << seed << ": a covered create vanished";
    } else {
      ++dir_gone;
    }
  }
  EXPECT_GT(dir_gone, 0u);
}

TEST_F(crash_file_system_test, AnUnsyncedSizeChangeMayBeLostASyncedOneStays) {
  std::size_t reverted = 0, kept = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const auto d = round_dir(seed);
    spit(d / "g", std::string(page, 'g'));
    crash_file_system fs;
    file f = fs.open(d / "g", buffered());
    fs.write_zeros(f, page, 3 * page);
    EXPECT_EQ(fs.unstable_writes(), 1u);
    fs.cut_power();
    const auto rep = fs.settle(seed);
    const auto size = std::filesystem::file_size(d / "g");
    EXPECT_TRUE(size == page || size == 3 * page) << "seed " << seed << ": size " << size;
    EXPECT_EQ(slurp(d / "g").substr(0, page), std::string(page, 'g')) << "bytes before the growth changed";
    reverted += rep.sizes_reverted;
    kept += rep.sizes_kept;
    EXPECT_EQ(size == page, rep.sizes_reverted == 1) << "seed " << seed;
  }
  EXPECT_GT(reverted, 0u);
  EXPECT_GT(kept, 0u);

  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const auto d = round_dir(100 + seed);
    spit(d / "g", std::string(page, 'g'));
    crash_file_system fs;
    file f = fs.open(d / "g", buffered());
    fs.write_zeros(f, page, 3 * page);
    fs.sync(f);
    EXPECT_EQ(fs.unstable_writes(), 0u);
    fs.cut_power();
    fs.settle(seed);
    const std::string img = slurp(d / "g");
    ASSERT_EQ(img.size(), 3 * page) << "seed " << seed << ": a synced size was lost";
    EXPECT_EQ(img, std::string(page, 'g') + std::string(2 * page, '\0'));
  }
}

TEST_F(crash_file_system_test, UnsyncedWrittenBytesMayBeLostSyncedOnesStay) {
  const std::string old_bytes(2 * page, 'o'), new_bytes(2 * page, 'n');
  std::size_t lost = 0, landed = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const auto d = round_dir(seed);
    spit(d / "w", old_bytes);
    crash_file_system fs;
    file f = fs.open(d / "w", buffered());
    fs.write(f, new_bytes.data(), new_bytes.size(), page);  // half over old bytes, half growing the file
    EXPECT_EQ(fs.unstable_writes(), 1u);
    fs.cut_power();
    fs.settle(seed);
    const std::string img = slurp(d / "w");
    EXPECT_EQ(img.substr(0, page), std::string(page, 'o')) << "seed " << seed << ": bytes before the write changed";
    for (std::size_t i = page; i < std::min(img.size(), 2 * page); ++i) {
      ASSERT_TRUE(img[i] == 'o' || img[i] == 'n') << "seed " << seed << ": byte " << i << " is neither old nor new";
    }
    if (img == old_bytes) ++lost;
    if (img == std::string(page, 'o') + new_bytes) ++landed;
  }
  EXPECT_GT(lost, 0u) << "an unsynced write always survived the power cut";
  EXPECT_GT(landed, 0u) << "an unsynced write never survived the power cut";

  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const auto d = round_dir(100 + seed);
    spit(d / "w", old_bytes);
    crash_file_system fs;
    file f = fs.open(d / "w", buffered());
    fs.write(f, new_bytes.data(), new_bytes.size(), page);
    fs.sync(f);
    EXPECT_EQ(fs.unstable_writes(), 0u);
    fs.cut_power();
    fs.settle(seed);
    EXPECT_EQ(slurp(d / "w"), std::string(page, 'o') + new_bytes) << "seed " << seed << ": a synced write was lost";
  }
}

TEST_F(crash_file_system_test, AnUndoneShrinkRestoresTheBytesItRemoved) {
  std::size_t restored = 0, shrunk = 0;
  std::string original;
  for (std::size_t i = 0; i < 2 * page; ++i) original.push_back(static_cast<char>('a' + i % 23));
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const auto d = round_dir(seed);
    spit(d / "s", original);
    crash_file_system fs;
    file f = fs.open(d / "s", buffered());
    fs.truncate(f, 100);
    fs.cut_power();
    fs.settle(seed);
    const std::string img = slurp(d / "s");
    if (img.size() == original.size()) {
      ++restored;
      EXPECT_EQ(img, original) << "seed " << seed << ": the removed bytes did not come back";
    } else {
      ++shrunk;
      EXPECT_EQ(img, original.substr(0, 100)) << "seed " << seed;
    }
  }
  EXPECT_GT(restored, 0u);
  EXPECT_GT(shrunk, 0u);
}

TEST_F(crash_file_system_test, OpenWithTruncateIsAnUndoableShrink) {
  std::size_t restored = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const auto d = round_dir(seed);
    spit(d / "t", "durable contents");
    crash_file_system fs;
    open_options o = buffered(true);
    o.truncate = true;
    { file f = fs.open(d / "t", o); }
    EXPECT_EQ(std::filesystem::file_size(d / "t"), 0u);
    EXPECT_EQ(fs.unstable_names(), 0u) << "opening an existing file creates nothing";
    fs.cut_power();
    fs.settle(seed);
    const std::string img = slurp(d / "t");
    EXPECT_TRUE(img.empty() || img == "durable contents") << "seed " << seed << ": " << img;
    restored += !img.empty();
  }
  EXPECT_GT(restored, 0u);
}

TEST_F(crash_file_system_test, BackendDataCoveredBySyncSurvivesUncoveredIsOldNewOrTorn) {
  std::size_t dropped = 0, applied = 0, torn = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const auto d = round_dir(seed);
    {
      std::string init(2 * page, '\0');
      test::fill_pattern(init.data(), init.size(), 0, 1);
      spit(d / "data", init);
    }
    crash_file_system fs;
    auto be = fs.wrap(make_backend("sync"));
    EXPECT_EQ(be->name(), "crash+sync");
    file f = fs.open(d / "data", buffered());
    std::vector<char> a(page), b(page);
    test::fill_pattern(a.data(), page, 0, 50);
    test::fill_pattern(b.data(), page, page, 60);
    io_request r;
    r.prep_write(f.fd(), a.data(), page, 0);
    ASSERT_EQ(test::run_one(*be, r), static_cast<std::int64_t>(page));
    fs.sync(f);  // covers the backend's write
    EXPECT_EQ(be->unstable_writes(), 0u);
    r.prep_write(f.fd(), b.data(), page, page);
    ASSERT_EQ(test::run_one(*be, r), static_cast<std::int64_t>(page));
    EXPECT_EQ(fs.unstable_writes(), 1u);
    fs.cut_power();
    const auto rep = fs.settle(seed);
    EXPECT_EQ(rep.dropped + rep.applied + rep.torn, 1u);
    dropped += rep.dropped;
    applied += rep.applied;
    torn += rep.torn;
    const std::string img = slurp(d / "data");
    ASSERT_EQ(img.size(), 2 * page);
    EXPECT_TRUE(test::has_pattern(img.data(), page, 0, 50)) << "seed " << seed << ": synced data was lost";
    for (std::size_t s = 0; s < page / sector; ++s) {
      const std::uint64_t pos = page + s * sector;
      EXPECT_TRUE(test::has_pattern(img.data() + pos, sector, pos, 60) ||
                  test::has_pattern(img.data() + pos, sector, pos, 1))
          << "seed " << seed << ", sector " << s << " is neither old nor new";
    }
  }
  EXPECT_GT(dropped, 0u);
  EXPECT_GT(applied, 0u);
  EXPECT_GT(torn, 0u);
}

TEST_F(crash_file_system_test, ABackendFlushCoversWriteZerosAndMakesTheSizeDurable) {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    const auto d = round_dir(seed);
    crash_file_system fs;
    auto be = fs.wrap(make_backend("sync"));
    file f = fs.open(d / "z", buffered(true));
    fs.sync_directory(d);
    fs.write_zeros(f, 0, 2 * page);
    io_request r;
    r.prep_fdatasync(f.fd());
    ASSERT_EQ(test::run_one(*be, r), 0);
    EXPECT_EQ(fs.unstable_writes(), 0u);
    fs.cut_power();
    const auto rep = fs.settle(seed);
    EXPECT_EQ(rep.sizes_kept + rep.sizes_reverted, 0u);
    EXPECT_EQ(slurp(d / "z"), std::string(2 * page, '\0')) << "seed " << seed;
  }
}

TEST_F(crash_file_system_test, OneCutStopsTheFileSystemAndItsBackends) {
  const auto d = dir_->path();
  spit(d / "x", std::string(page, 'x'));
  crash_file_system fs;
  auto be = fs.wrap(make_backend("sync"));
  file f = fs.open(d / "x", buffered());
  fs.cut_power();
  EXPECT_TRUE(fs.power_cut());
  EXPECT_TRUE(be->power_cut());
  EXPECT_EQ(error_of([&] { fs.open(d / "y", buffered(true)); }), EIO);
  EXPECT_FALSE(std::filesystem::exists(d / "y")) << "an open after the cut created the file";
  EXPECT_EQ(error_of([&] { fs.rename(d / "x", d / "z"); }), EIO);
  EXPECT_TRUE(std::filesystem::exists(d / "x"));
  EXPECT_EQ(error_of([&] { fs.unlink(d / "x"); }), EIO);
  EXPECT_EQ(error_of([&] { fs.write_zeros(f, 0, page); }), EIO);
  EXPECT_EQ(error_of([&] { fs.truncate(f, 0); }), EIO);
  EXPECT_EQ(error_of([&] { fs.sync(f); }), EIO);
  EXPECT_EQ(error_of([&] { fs.create_directory(d / "dir"); }), EIO);
  EXPECT_FALSE(std::filesystem::exists(d / "dir"));
  EXPECT_EQ(error_of([&] { fs.sync_directory(d); }), EIO);
  EXPECT_EQ(error_of([&] { fs.list(d); }), EIO);
  EXPECT_EQ(error_of([&] { fs.stat(d / "x"); }), EIO);
  char buf[16];
  EXPECT_EQ(error_of([&] { fs.read(f, buf, sizeof buf, 0); }), EIO);
  std::vector<char> w(page, 'w');
  io_request r;
  r.prep_write(f.fd(), w.data(), page, 0);
  EXPECT_EQ(test::run_one(*be, r), -EIO);
  EXPECT_EQ(slurp(d / "x"), std::string(page, 'x'));

  // Settled from the backend; the file system works again, the old backend
  // stays dead, a new one works.
  be->settle(1);
  EXPECT_FALSE(fs.power_cut());
  EXPECT_TRUE(be->power_cut());
  EXPECT_TRUE(fs.stat(d / "x"));
  r.prep_write(f.fd(), w.data(), page, 0);
  EXPECT_EQ(test::run_one(*be, r), -EIO);
  auto be2 = fs.wrap(make_backend("sync"));
  EXPECT_FALSE(be2->power_cut());
  r.prep_write(f.fd(), w.data(), page, 0);
  EXPECT_EQ(test::run_one(*be2, r), static_cast<std::int64_t>(page));
  // Cut from the backend, settled from the file system.
  be2->cut_power();
  EXPECT_TRUE(fs.power_cut());
  EXPECT_EQ(error_of([&] { fs.stat(d / "x"); }), EIO);
  EXPECT_NO_THROW(fs.settle(2));
}

TEST_F(crash_file_system_test, CrashSettleUseAgainCrashAgain) {
  const auto d = dir_->path();
  crash_file_system fs;
  std::size_t second_round_undone = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const std::string name = "log" + std::to_string(seed);
    // Round 1: a file made durable the proper way.
    {
      file f = fs.open(d / (name + ".tmp"), buffered(true));
      fs.write_zeros(f, 0, page);
      fs.sync(f);
      fs.rename(d / (name + ".tmp"), d / name);
      fs.sync_directory(d);
    }
    fs.cut_power();
    fs.settle(seed);
    ASSERT_TRUE(std::filesystem::exists(d / name));
    EXPECT_FALSE(std::filesystem::exists(d / (name + ".tmp")));
    // Round 2 on the same directory and file system: an unsynced unlink.
    auto be = fs.wrap(make_backend("sync"));
    fs.unlink(d / name);
    fs.cut_power();
    const auto rep = be->settle(seed * 7);
    EXPECT_EQ(rep.names_kept + rep.names_undone, 1u);
    if (std::filesystem::exists(d / name)) {
      ++second_round_undone;
      EXPECT_EQ(slurp(d / name), std::string(page, '\0'));
    }
  }
  EXPECT_GT(second_round_undone, 0u);
  EXPECT_LT(second_round_undone, seeds);
}

TEST_F(crash_file_system_test, SettleRefusesBeforeTheCutAndWithAWriteInFlight) {
  const auto d = dir_->path();
  spit(d / "busy", std::string(page, 'b'));
  crash_file_system fs;
  EXPECT_THROW(fs.settle(1), std::logic_error);
  auto be = fs.wrap(make_backend("sync"));
  EXPECT_THROW(be->settle(1), std::logic_error);
  file f = fs.open(d / "busy", buffered());
  std::vector<char> w(page, 'w');
  io_request r;
  r.prep_write(f.fd(), w.data(), page, 0);
  test::completion_counter cc;
  r.user_data = &cc;
  r.on_complete = test::count_completion;
  be->submit(r);  // handed to the inner backend, not reaped
  fs.cut_power();
  EXPECT_THROW(fs.settle(1), std::logic_error) << "a write is in flight";
  EXPECT_THROW(be->settle(1), std::logic_error);
  be->drain();
  EXPECT_EQ(cc.count, 1);
  EXPECT_EQ(cc.result, -EIO);
  EXPECT_NO_THROW(fs.settle(1));
  const std::string img = slurp(d / "busy");
  for (std::size_t s = 0; s < page / sector; ++s) {
    const std::string sec = img.substr(s * sector, sector);
    EXPECT_TRUE(sec == std::string(sector, 'b') || sec == std::string(sector, 'w')) << "sector " << s;
  }
}

}  // namespace
}  // namespace pageio
