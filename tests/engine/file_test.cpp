// Opening files for direct I/O, their alignment rules, and aligned buffers.
#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/file.hpp>
#include <pageio/engine/request.hpp>

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "../support/test_dir.hpp"

namespace pageio {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
  }
  std::filesystem::path path(const std::string& name) const { return dir_->path() / name; }
  std::optional<test::test_dir> dir_;
};

bool is_tmpfs(const std::filesystem::path& p) {
  struct statfs s {};
  return ::statfs(p.c_str(), &s) == 0 && s.f_type == TMPFS_MAGIC;
}

TEST_F(FileTest, ADiskFileSystemIsNotAMemoryOne) {
  EXPECT_EQ(memory_file_system(path("")), "");
  EXPECT_EQ(memory_file_system(path("not/made/yet")), "");
}

TEST(FileOpen, TmpfsIsNoPlaceForDirectIo) {
  const std::filesystem::path shm = "/dev/shm";
  if (!is_tmpfs(shm)) GTEST_SKIP() << "/dev/shm is not a tmpfs here";
  // Refused whatever the kernel says of O_DIRECT there (6.6+ accepts it).
  std::string why;
  EXPECT_FALSE(supports_direct_io(shm, &why));
  EXPECT_THAT(why, AllOf(HasSubstr("/dev/shm"), HasSubstr("tmpfs"), HasSubstr("disk file system")));
  // Told without trying, also for a path not made yet (its nearest existing
  // ancestor is asked).
  EXPECT_EQ(memory_file_system(shm), "tmpfs");
  EXPECT_EQ(memory_file_system(shm / "not" / "made" / "yet"), "tmpfs");

  const auto p = shm / ("pageio-test-" + std::to_string(::getpid()));
  const int probe = ::open(p.c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
  if (probe >= 0) {
    ::close(probe);
    std::filesystem::remove(p);
    GTEST_SKIP() << "this kernel opens tmpfs files with O_DIRECT (Linux 6.6 and later)";
  }
  open_options o;
  o.create = true;
  try {
    file f = file::open(p, o);
    std::filesystem::remove(p);
    FAIL() << "O_DIRECT open on tmpfs succeeded";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::error_code(EINVAL, std::system_category()));
    EXPECT_THAT(e.what(), AllOf(HasSubstr(p.string()), HasSubstr("O_DIRECT"), HasSubstr("tmpfs")));
  }
  std::filesystem::remove(p);
}

// procfs has no O_DIRECT on any kernel: the same error, on every machine.
TEST(FileOpen, WithoutODirectSupportNamesThePathAndODirect) {
  const std::filesystem::path p = "/proc/self/status";
  open_options o;
  o.writable = false;
  try {
    file f = file::open(p, o);
    FAIL() << "O_DIRECT open of " << p << " succeeded";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::error_code(EINVAL, std::system_category()));
    EXPECT_THAT(e.what(), AllOf(HasSubstr(p.string()), HasSubstr("O_DIRECT")));
  }
  o.direct = false;
  file f = file::open(p, o);
  EXPECT_TRUE(f.is_open());
  EXPECT_FALSE(f.direct());
}

TEST_F(FileTest, MissingFileNamesThePath) {
  try {
    file::open(path("missing"));
    FAIL() << "opened a missing file";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::error_code(ENOENT, std::system_category()));
    EXPECT_THAT(e.what(), HasSubstr(path("missing").string()));
  }
}

TEST_F(FileTest, OpenCreateTruncateAndMove) {
  open_options o;
  o.create = true;
  file f = file::open(path("a"), o);
  ASSERT_TRUE(f.is_open());
  EXPECT_TRUE(f.direct());
  EXPECT_EQ(f.path(), path("a"));
  EXPECT_EQ(f.size(), 0u);
  const int fd = f.fd();
  EXPECT_NE(::fcntl(fd, F_GETFL) & O_DIRECT, 0);
  EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);

  file g = std::move(f);
  EXPECT_FALSE(f.is_open());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(g.fd(), fd);
  g.close();
  EXPECT_FALSE(g.is_open());
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "close() closes the descriptor";
}

TEST_F(FileTest, ReleaseGivesUpTheDescriptorWithoutClosingIt) {
  open_options o;
  o.create = true;
  int fd = -1;
  {
    file f = file::open(path("a"), o);
    const int owned = f.fd();
    fd = f.release();
    EXPECT_EQ(fd, owned);
    EXPECT_FALSE(f.is_open());
    EXPECT_EQ(f.fd(), -1);
    EXPECT_EQ(f.release(), -1) << "nothing left to release";
  }
  EXPECT_NE(::fcntl(fd, F_GETFD), -1) << "the destructor left the released descriptor open";
  EXPECT_EQ(::close(fd), 0);
  EXPECT_EQ(file().release(), -1);
}

std::size_t open_fd_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

TEST_F(FileTest, FailuresAfterOpeningCloseTheDescriptor) {
  const std::size_t before = open_fd_count();
  open_options o;
  o.direct = false;
  o.writable = false;  // O_RDWR would be refused (EISDIR) before anything is opened
  try {
    file::open(dir_->path(), o);
    FAIL() << "opened a directory as a file";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::error_code(EINVAL, std::system_category()));
    EXPECT_THAT(e.what(), HasSubstr("a directory"));
  }
  EXPECT_EQ(open_fd_count(), before);
  // A progress callback that throws leaves no descriptor behind either.
  EXPECT_THROW(ensure_file_written(path("big"), 2 << 20,
                                   [](std::uint64_t, std::uint64_t) { throw std::runtime_error("stop"); }),
               std::runtime_error);
  EXPECT_EQ(open_fd_count(), before);
}

TEST_F(FileTest, QueryDioAlignmentIsSane) {
  open_options o;
  o.create = true;
  file f = file::open(path("a"), o);
  const dio_alignment a = query_dio_alignment(f.fd());
  EXPECT_TRUE(std::has_single_bit(a.memory)) << a.memory;
  EXPECT_TRUE(std::has_single_bit(a.offset)) << a.offset;
  EXPECT_GE(a.memory, 1u);
  EXPECT_LE(a.memory, 4096u);
  EXPECT_GE(a.offset, 512u) << "no block device has sectors under 512 bytes";
  EXPECT_LE(a.offset, 65536u);
  EXPECT_EQ(f.alignment().memory, a.memory);
  EXPECT_EQ(f.alignment().offset, a.offset);
  EXPECT_EQ(f.alignment().from_statx, a.from_statx);
  // 4096-aligned I/O, what the WAL and page cache use, always fits.
  EXPECT_EQ(4096 % a.offset, 0u);
  EXPECT_EQ(4096 % a.memory, 0u);
}

TEST_F(FileTest, QueryDioAlignmentOfAClosedFdThrows) {
  open_options o;
  o.create = true;
  const int fd = ::dup(file::open(path("a"), o).fd());
  ASSERT_GE(fd, 0);
  ::close(fd);
  EXPECT_THROW(query_dio_alignment(fd), std::system_error);
}

TEST_F(FileTest, BufferedFilesHaveNoAlignmentRule) {
  open_options o;
  o.create = true;
  o.direct = false;
  file f = file::open(path("a"), o);
  EXPECT_FALSE(f.direct());
  EXPECT_EQ(::fcntl(f.fd(), F_GETFL) & O_DIRECT, 0);
  char c = 0;
  EXPECT_FALSE(f.check_io(&c, 3, 7));
}

TEST_F(FileTest, CheckIoNamesTheMisfit) {
  open_options o;
  o.create = true;
  file f = file::open(path("a"), o);
  aligned_buffer buf(8192);
  const auto off = f.alignment().offset;
  std::string why;
  EXPECT_FALSE(f.check_io(buf.data(), 4096, 4096, &why));
  EXPECT_EQ(f.check_io(buf.data() + 1, 4096, 0, &why), std::errc::invalid_argument);
  EXPECT_THAT(why, AllOf(HasSubstr("buffer address"), HasSubstr(path("a").string()), HasSubstr("aligned_buffer")));
  EXPECT_EQ(f.check_io(buf.data(), 4096, off + off / 2, &why), std::errc::invalid_argument);
  EXPECT_THAT(why, AllOf(HasSubstr("offset"), HasSubstr(std::to_string(off + off / 2))));
  EXPECT_EQ(f.check_io(buf.data(), off / 2, 0, &why), std::errc::invalid_argument);
  EXPECT_THAT(why, HasSubstr("length"));
}

TEST_F(FileTest, SupportsDirectIoHereButNotInProcfs) {
  std::string why;
  EXPECT_TRUE(supports_direct_io(dir_->path(), &why)) << why;
  EXPECT_FALSE(supports_direct_io("/proc", &why));
  EXPECT_THAT(why, HasSubstr("/proc"));
  EXPECT_TRUE(std::filesystem::is_empty(dir_->path())) << "the probe file is removed";
}

TEST_F(FileTest, EnsureFileWrittenCreatesAndExtendsKeepingData) {
  const auto p = path("big");
  std::uint64_t last_done = 0;
  std::uint64_t calls = 0;
  ensure_file_written(p, 3 << 20, [&](std::uint64_t done, std::uint64_t total) {
    EXPECT_EQ(total, 3u << 20);
    EXPECT_GE(done, last_done);
    last_done = done;
    ++calls;
  });
  EXPECT_EQ(std::filesystem::file_size(p), 3u << 20);
  EXPECT_EQ(last_done, 3u << 20);
  EXPECT_GE(calls, 1u);
  std::string head(4096, '\0');
  {
    std::ifstream in(p, std::ios::binary);
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
  }
  EXPECT_NE(head, std::string(4096, '\0')) << "the content is written, not a hole";

  ensure_file_written(p, (5 << 20) + 1000);
  EXPECT_EQ(std::filesystem::file_size(p), (5u << 20) + 1000);
  std::string again(4096, '\0');
  std::ifstream in(p, std::ios::binary);
  in.read(again.data(), static_cast<std::streamsize>(again.size()));
  EXPECT_EQ(again, head) << "existing data below the old size is kept";
}

TEST(AlignedBuffer, IsAlignedAndZeroed) {
  for (const std::size_t align : {8u, 512u, 4096u, 65536u}) {
    aligned_buffer b(3 * 4096 + 100, align);
    ASSERT_NE(b.data(), nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % align, 0u) << align;
    EXPECT_EQ(b.size(), 3u * 4096 + 100);
    EXPECT_EQ(b.alignment(), align);
    EXPECT_EQ(b.span().size(), b.size());
    EXPECT_EQ(static_cast<void*>(b.chars()), static_cast<void*>(b.data()));
    for (std::byte x : b.span()) ASSERT_EQ(x, std::byte{0});
  }
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(aligned_buffer(1).data()) % 4096, 0u) << "default 4096";
}

// A large buffer (a log's ring, a pool's frames) is mapped from the kernel:
// zero without being written, so none of it is resident until used.
TEST(AlignedBuffer, ALargeBufferIsZeroWithoutBeingTouched) {
  const std::size_t size = (64u << 20) + 4096 + 100;
  for (const std::size_t align : {4096u, 2u << 20}) {
    aligned_buffer b(size, align);
    ASSERT_NE(b.data(), nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % align, 0u) << align;
    EXPECT_EQ(b.size(), size);
    const std::size_t pages = (size + 4095) / 4096;
    std::vector<unsigned char> resident(pages);
    ASSERT_EQ(::mincore(b.data(), pages * 4096, resident.data()), 0) << std::strerror(errno);
    EXPECT_EQ(std::count_if(resident.begin(), resident.end(), [](unsigned char r) { return (r & 1) != 0; }), 0)
        << "pages resident before anything was written";
    EXPECT_EQ(b.data()[0], std::byte{0});
    EXPECT_EQ(b.data()[size / 2], std::byte{0});
    EXPECT_EQ(b.data()[size - 1], std::byte{0});
    b.data()[size - 1] = std::byte{7};  // all of it is writable
    aligned_buffer moved = std::move(b);
    EXPECT_EQ(moved.data()[size - 1], std::byte{7});
  }
}

TEST(AlignedBuffer, PopulateMapsEveryPageInAndChangesNoByte) {
  const std::size_t size = (8u << 20) + 4096 + 100;
  aligned_buffer b(size);
  const std::size_t pages = (size + 4095) / 4096;
  b.data()[5000] = std::byte{9};  // written before: kept
  std::vector<unsigned char> resident(pages);
  auto count_resident = [&] {
    EXPECT_EQ(::mincore(b.data(), pages * 4096, resident.data()), 0) << std::strerror(errno);
    return std::count_if(resident.begin(), resident.end(), [](unsigned char r) { return (r & 1) != 0; });
  };
  ASSERT_LT(count_resident(), static_cast<std::ptrdiff_t>(pages));
  ASSERT_TRUE(b.populate()) << std::strerror(errno);
  EXPECT_EQ(count_resident(), static_cast<std::ptrdiff_t>(pages));
  EXPECT_EQ(b.data()[5000], std::byte{9});
  for (std::size_t i = 0; i < size; i += 997) EXPECT_EQ(b.data()[i], i == 5000 ? std::byte{9} : std::byte{0}) << i;
  EXPECT_EQ(b.data()[size - 1], std::byte{0});
  // A small buffer is touched when made: nothing to do.
  aligned_buffer small(64 * 1024);
  EXPECT_FALSE(small.populate());
  EXPECT_FALSE(aligned_buffer().populate());
}

TEST(AlignedBuffer, RejectsBadAlignment) {
  for (const std::size_t align : {0u, 1u, 3u, 4u, 100u, 4095u}) {
    EXPECT_THROW(aligned_buffer(4096, align), std::invalid_argument) << align;
  }
}

TEST(AlignedBuffer, EmptyAndMoved) {
  aligned_buffer empty(0);
  EXPECT_EQ(empty.data(), nullptr);
  EXPECT_EQ(empty.size(), 0u);
  aligned_buffer a(4096);
  a.data()[10] = std::byte{42};
  std::byte* p = a.data();
  aligned_buffer b = std::move(a);
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.size(), 4096u);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(a.size(), 0u);       // NOLINT(bugprone-use-after-move)
  aligned_buffer c(512, 512);
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c.data()[10], std::byte{42});
}

TEST(Describe, OpNamesAndFlushDescriptions) {
  EXPECT_STREQ(to_string(op_code::read), "read");
  EXPECT_STREQ(to_string(op_code::writev), "writev");
  EXPECT_STREQ(to_string(op_code::fdatasync), "fdatasync");
  io_request r;
  r.prep_fdatasync(7);
  r.result = -EIO;
  const std::string d = describe_failure(r);
  EXPECT_THAT(d, AllOf(HasSubstr("fdatasync"), HasSubstr("fd 7"), HasSubstr("dmesg")));
  EXPECT_THAT(d, ::testing::Not(HasSubstr("offset"))) << "a flush has no offset";
  EXPECT_EQ(r.error(), std::error_code(EIO, std::system_category()));
}

}  // namespace
}  // namespace pageio
