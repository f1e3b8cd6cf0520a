// Data round trips and result semantics, the same on every backend.
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "backend_fixture.hpp"

namespace pageio::test {
namespace {

using BackendIo = backend_test;

constexpr std::size_t kib = 1024;

TEST_P(BackendIo, WriteThenReadRoundTrip) {
  file f = make_file("data", 256 * kib, 1);
  aligned_buffer out(64 * kib);
  fill_pattern(out.data(), out.size(), 4096, 2);
  io_request w;
  w.prep_write(f.fd(), out.data(), out.size(), 4096);
  ASSERT_EQ(run_one(be(), w), static_cast<std::int64_t>(out.size()));

  aligned_buffer in(128 * kib);
  io_request r;
  r.prep_read(f.fd(), in.data(), in.size(), 0);
  ASSERT_EQ(run_one(be(), r), static_cast<std::int64_t>(in.size()));
  EXPECT_TRUE(has_pattern(in.data(), 4096, 0, 1)) << "the write spilled before its offset";
  EXPECT_TRUE(has_pattern(in.data() + 4096, 64 * kib, 4096, 2));
  EXPECT_TRUE(has_pattern(in.data() + 4096 + 64 * kib, in.size() - 4096 - 64 * kib,
                          4096 + 64 * kib, 1))
      << "the write spilled past its end";
}

TEST_P(BackendIo, WritevThenReadvRoundTrip) {
  file f = make_file("data", 64 * kib, 1);
  // Three segments, not contiguous in memory, of different sizes.
  aligned_buffer src(32 * kib);
  const std::array<iovec, 3> wv{{{src.data() + 0, 4096}, {src.data() + 8192, 8192}, {src.data() + 20480, 512}}};
  std::uint64_t pos = 8192;
  for (const iovec& v : wv) {
    fill_pattern(v.iov_base, v.iov_len, pos, 3);
    pos += v.iov_len;
  }
  io_request w;
  w.prep_writev(f.fd(), wv.data(), wv.size(), 8192);
  ASSERT_EQ(run_one(be(), w), 4096 + 8192 + 512);

  // Read back with a different segmentation, straddling the written range.
  aligned_buffer dst(64 * kib);
  std::memset(dst.data(), 0xEE, dst.size());
  const std::array<iovec, 4> rv{
      {{dst.data(), 1024}, {dst.data() + 4096, 8192}, {dst.data() + 16384, 3584}, {dst.data() + 24576, 4096}}};
  io_request r;
  r.prep_readv(f.fd(), rv.data(), rv.size(), 7168);
  ASSERT_EQ(run_one(be(), r), 1024 + 8192 + 3584 + 4096);
  // File bytes [7168, 8192) are the original, [8192, 20992) the written ones, then original.
  EXPECT_TRUE(has_pattern(dst.data(), 1024, 7168, 1));
  EXPECT_TRUE(has_pattern(dst.data() + 4096, 8192, 8192, 3));
  EXPECT_TRUE(has_pattern(dst.data() + 16384, 3584, 16384, 3));
  EXPECT_TRUE(has_pattern(dst.data() + 24576, 1024, 19968, 3));
  EXPECT_TRUE(has_pattern(dst.data() + 24576 + 1024, 3072, 20992, 1));
  EXPECT_TRUE(all_bytes_are(dst.data() + 1024, 4096 - 1024, 0xEE)) << "readv wrote between segments";
}

TEST_P(BackendIo, VectorsOfIovMaxElements) {
  constexpr std::size_t seg = 512;
  const std::size_t count = IOV_MAX;
  file f = make_file("data", count * seg + 8192, 1);
  // Writes from every other 512-byte slot of a buffer, reads into the others.
  aligned_buffer mem(2 * count * seg);
  std::vector<iovec> wv(count);
  std::vector<iovec> rv(count);
  for (std::size_t i = 0; i < count; ++i) {
    wv[i] = {mem.data() + 2 * i * seg, seg};
    rv[i] = {mem.data() + (2 * i + 1) * seg, seg};
    fill_pattern(wv[i].iov_base, seg, 4096 + i * seg, 12);
  }
  io_request w;
  w.prep_writev(f.fd(), wv.data(), static_cast<std::uint32_t>(count), 4096);
  ASSERT_EQ(run_one(be(), w), static_cast<std::int64_t>(count * seg)) << describe_failure(w);
  io_request r;
  r.prep_readv(f.fd(), rv.data(), static_cast<std::uint32_t>(count), 4096);
  ASSERT_EQ(run_one(be(), r), static_cast<std::int64_t>(count * seg)) << describe_failure(r);
  for (std::size_t i = 0; i < count; ++i) {
    ASSERT_TRUE(has_pattern(rv[i].iov_base, seg, 4096 + i * seg, 12)) << "element " << i;
  }
}

TEST_P(BackendIo, FdatasyncAndFsyncComplete) {
  file f = make_file("data", 16 * kib, 1);
  aligned_buffer out(4096);
  fill_pattern(out.data(), out.size(), 0, 9);
  io_request w;
  w.prep_write(f.fd(), out.data(), out.size(), 0);
  ASSERT_EQ(run_one(be(), w), 4096);
  io_request s;
  s.prep_fdatasync(f.fd());
  EXPECT_EQ(run_one(be(), s), 0) << describe_failure(s);
  s.prep_fsync(f.fd());
  EXPECT_EQ(run_one(be(), s), 0) << describe_failure(s);

  // Another descriptor, through the page cache, sees the data.
  const int fd2 = ::open(f.path().c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd2, 0);
  std::array<char, 4096> check{};
  EXPECT_EQ(::pread(fd2, check.data(), check.size(), 0), 4096);
  ::close(fd2);
  EXPECT_TRUE(has_pattern(check.data(), check.size(), 0, 9));
}

TEST_P(BackendIo, DsyncWriteIsOneRequest) {
  EXPECT_TRUE(be().caps().per_write_dsync);
  file f = make_file("data", 16 * kib, 1);
  aligned_buffer out(8192);
  fill_pattern(out.data(), out.size(), 4096, 4);
  io_request w;
  w.prep_write(f.fd(), out.data(), 4096, 4096);
  w.flags = io_flags::dsync;
  ASSERT_EQ(run_one(be(), w), 4096) << describe_failure(w);
  const iovec v{out.data() + 4096, 4096};
  io_request wv;
  wv.prep_writev(f.fd(), &v, 1, 8192);
  wv.flags = io_flags::dsync;
  ASSERT_EQ(run_one(be(), wv), 4096) << describe_failure(wv);

  aligned_buffer in(16 * kib);
  io_request r;
  r.prep_read(f.fd(), in.data(), in.size(), 0);
  ASSERT_EQ(run_one(be(), r), 16 * 1024);
  EXPECT_TRUE(has_pattern(in.data(), 4096, 0, 1));
  EXPECT_TRUE(has_pattern(in.data() + 4096, 8192, 4096, 4));
  EXPECT_TRUE(has_pattern(in.data() + 12288, 4096, 12288, 1));
}

TEST_P(BackendIo, DsyncOnAReadIsRejected) {
  file f = make_file("data", 4096, 1);
  aligned_buffer in(4096);
  io_request r;
  r.prep_read(f.fd(), in.data(), in.size(), 0);
  r.flags = io_flags::dsync;
  EXPECT_EQ(run_one(be(), r), -EINVAL);
}

TEST_P(BackendIo, ReadAcrossEndOfFileIsShort) {
  file f = make_file("data", 8192, 5);
  aligned_buffer in(16 * kib);
  std::memset(in.data(), 0xEE, in.size());
  io_request r;
  r.prep_read(f.fd(), in.data(), in.size(), 4096);
  ASSERT_EQ(run_one(be(), r), 4096);
  EXPECT_TRUE(has_pattern(in.data(), 4096, 4096, 5));
  // Bytes past the count are unspecified: under O_DIRECT the kernel may zero
  // whole blocks beyond end of file.
}

TEST_P(BackendIo, ReadvAcrossEndOfFileIsShort) {
  file f = make_file("data", 12 * kib, 5);
  aligned_buffer in(32 * kib);
  std::memset(in.data(), 0xEE, in.size());
  // End of file falls inside the second segment, 2 KiB into it.
  const std::array<iovec, 3> rv{{{in.data(), 4096}, {in.data() + 8192, 8192}, {in.data() + 20480, 4096}}};
  io_request r;
  r.prep_readv(f.fd(), rv.data(), rv.size(), 6144);
  ASSERT_EQ(run_one(be(), r), 6144);
  EXPECT_TRUE(has_pattern(in.data(), 4096, 6144, 5));
  EXPECT_TRUE(has_pattern(in.data() + 8192, 2048, 10240, 5));
  EXPECT_TRUE(all_bytes_are(in.data() + 4096, 4096, 0xEE)) << "readv wrote between segments";
}

TEST_P(BackendIo, ReadAcrossUnalignedEndOfFileIsShort) {
  // A file whose size is not a multiple of the block size (written without
  // O_DIRECT, by another program): pread under O_DIRECT returns the bytes up to
  // end of file, and so must every backend.
  file f = make_file("data", 5000, 6);
  aligned_buffer in(8192);
  ASSERT_EQ(::pread(f.fd(), in.data(), in.size(), 0), 5000) << "precondition: the kernel's pread";
  std::memset(in.data(), 0xEE, in.size());
  io_request r;
  r.prep_read(f.fd(), in.data(), in.size(), 0);
  EXPECT_EQ(run_one(be(), r), 5000) << describe_failure(r);
  EXPECT_TRUE(has_pattern(in.data(), 5000, 0, 6));
}

TEST_P(BackendIo, ReadEntirelyPastEndOfFileReturnsZero) {
  file f = make_file("data", 8192, 5);
  aligned_buffer in(8192);
  std::memset(in.data(), 0xEE, in.size());
  for (const std::uint64_t off : {std::uint64_t{8192}, std::uint64_t{65536}, std::uint64_t{1} << 40}) {
    io_request r;
    r.prep_read(f.fd(), in.data(), in.size(), off);
    EXPECT_EQ(run_one(be(), r), 0) << "at offset " << off;
    const iovec v{in.data(), 4096};
    io_request rv;
    rv.prep_readv(f.fd(), &v, 1, off);
    EXPECT_EQ(run_one(be(), rv), 0) << "readv at offset " << off;
  }
  EXPECT_TRUE(all_bytes_are(in.data(), in.size(), 0xEE));
}

TEST_P(BackendIo, ReadOfAnEmptyFileReturnsZero) {
  file f = make_file("empty", 0);
  aligned_buffer in(4096);
  io_request r;
  r.prep_read(f.fd(), in.data(), in.size(), 0);
  EXPECT_EQ(run_one(be(), r), 0);
}

TEST_P(BackendIo, WritePastEndOfFileExtendsIt) {
  file f = make_file("data", 4096, 1);
  aligned_buffer out(4096);
  fill_pattern(out.data(), out.size(), 12288, 7);
  io_request w;
  w.prep_write(f.fd(), out.data(), out.size(), 12288);
  ASSERT_EQ(run_one(be(), w), 4096);
  EXPECT_EQ(f.size(), 16u * 1024);
  aligned_buffer in(16 * kib);
  std::memset(in.data(), 0xEE, in.size());
  io_request r;
  r.prep_read(f.fd(), in.data(), in.size(), 0);
  ASSERT_EQ(run_one(be(), r), 16 * 1024);
  EXPECT_TRUE(has_pattern(in.data(), 4096, 0, 1));
  EXPECT_TRUE(all_bytes_are(in.data() + 4096, 8192, 0)) << "the hole must read as zeros";
  EXPECT_TRUE(has_pattern(in.data() + 12288, 4096, 12288, 7));
}

TEST_P(BackendIo, ZeroLengthTransfersReturnZero) {
  file f = make_file("data", 8192, 1);
  aligned_buffer buf(4096);
  io_request r;
  r.prep_read(f.fd(), buf.data(), 0, 0);
  EXPECT_EQ(run_one(be(), r), 0);
  io_request w;
  w.prep_write(f.fd(), buf.data(), 0, 4096);
  EXPECT_EQ(run_one(be(), w), 0);
  io_request rv;
  rv.prep_readv(f.fd(), nullptr, 0, 0);
  EXPECT_EQ(run_one(be(), rv), 0);
  const iovec empty{buf.data(), 0};
  io_request wv;
  wv.prep_writev(f.fd(), &empty, 1, 0);
  EXPECT_EQ(run_one(be(), wv), 0);
  // Zero-length writes past end of file do not extend it.
  io_request far;
  far.prep_write(f.fd(), buf.data(), 0, 1 << 20);
  EXPECT_EQ(run_one(be(), far), 0);
  EXPECT_EQ(f.size(), 8192u);
}

TEST_P(BackendIo, RequestCanBeReusedAfterCompletion) {
  file f = make_file("data", 64 * kib, 8);
  aligned_buffer in(4096);
  io_request r;
  for (std::uint64_t off = 0; off < 64 * kib; off += 4096) {
    r.prep_read(f.fd(), in.data(), in.size(), off);
    ASSERT_EQ(run_one(be(), r), 4096);
    ASSERT_TRUE(has_pattern(in.data(), 4096, off, 8));
  }
}

PAGEIO_INSTANTIATE_ON_ALL_BACKENDS(BackendIo);

}  // namespace
}  // namespace pageio::test
