// Misuse gets a clear error, never a crash or silent corruption, on every backend.
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <vector>
#include <cerrno>
#include <cstring>
#include <string>

#include "backend_fixture.hpp"

namespace pageio::test {
namespace {

using BackendErrors = backend_test;
using ::testing::HasSubstr;

constexpr std::size_t kib = 1024;

// One misfit under O_DIRECT: what the request gets wrong.
struct misfit {
  const char* what;
  std::size_t buf_shift;
  std::uint64_t offset;
  std::size_t length;
};

class BackendMisaligned : public backend_test {
 protected:
  void SetUp() override {
    backend_test::SetUp();
    if (IsSkipped()) return;
    f_ = make_file("data", 64 * kib, 1);
    align_ = f_.alignment();
    ASSERT_GT(align_.memory, 1u);
    ASSERT_GT(align_.offset, 1u);
    buf_ = aligned_buffer(32 * kib, 4096);
  }

  // What the kernel itself says to the misfit, through pread: the reference.
  int kernel_answer(const misfit& m) {
    const ssize_t n = ::pread(f_.fd(), buf_.data() + m.buf_shift, m.length, static_cast<off_t>(m.offset));
    return n < 0 ? -errno : 0;
  }

  file f_;
  dio_alignment align_;
  aligned_buffer buf_;
};

std::array<misfit, 3> misfits(const dio_alignment& a) {
  return {{{"buffer address", 1, 4096, 4096},
           {"offset", 0, 4096 + a.offset / 2, 4096},
           {"length", 0, 4096, 4096 + a.offset / 2}}};
}

TEST_P(BackendMisaligned, ReadCompletesWithEinvalAndAClearDescription) {
  for (const misfit& m : misfits(align_)) {
    SCOPED_TRACE(m.what);
    if (kernel_answer(m) != -EINVAL) {
      GTEST_SKIP() << "this file system accepts a misaligned " << m.what << " under O_DIRECT";
    }
    io_request r;
    r.prep_read(f_.fd(), buf_.data() + m.buf_shift, m.length, m.offset);
    EXPECT_EQ(run_one(be(), r), -EINVAL);
    const std::string d = describe_failure(r);
    EXPECT_THAT(d, HasSubstr("offset " + std::to_string(m.offset)));
    EXPECT_THAT(d, HasSubstr("O_DIRECT"));
    EXPECT_THAT(d, HasSubstr("query_dio_alignment")) << "says where to find the alignment";
    // file::check_io names the culprit before anything is submitted.
    std::string why;
    EXPECT_EQ(f_.check_io(buf_.data() + m.buf_shift, m.length, m.offset, &why),
              std::make_error_code(std::errc::invalid_argument));
    EXPECT_THAT(why, HasSubstr(m.what));
  }
}

TEST_P(BackendMisaligned, WriteCompletesWithEinvalAndChangesNothing) {
  for (const misfit& m : misfits(align_)) {
    SCOPED_TRACE(m.what);
    if (kernel_answer(m) != -EINVAL) {
      GTEST_SKIP() << "this file system accepts a misaligned " << m.what << " under O_DIRECT";
    }
    fill_pattern(buf_.data(), buf_.size(), 0, 99);
    io_request w;
    w.prep_write(f_.fd(), buf_.data() + m.buf_shift, m.length, m.offset);
    EXPECT_EQ(run_one(be(), w), -EINVAL);
    EXPECT_THAT(describe_failure(w), HasSubstr("offset " + std::to_string(m.offset)));
  }
  aligned_buffer in(64 * kib);
  io_request r;
  r.prep_read(f_.fd(), in.data(), in.size(), 0);
  ASSERT_EQ(run_one(be(), r), 64 * 1024);
  EXPECT_TRUE(has_pattern(in.data(), in.size(), 0, 1)) << "a rejected write changed the file";
}

TEST_P(BackendMisaligned, MisalignedVectorElementCompletesWithEinval) {
  const misfit m{"iovec element", 0, 0, 4096 + align_.offset / 2};
  if (kernel_answer(m) != -EINVAL) GTEST_SKIP() << "this file system accepts misaligned lengths";
  const std::array<iovec, 2> v{{{buf_.data(), 4096 + align_.offset / 2}, {buf_.data() + 16384, align_.offset / 2}}};
  io_request r;
  r.prep_readv(f_.fd(), v.data(), v.size(), 0);
  EXPECT_EQ(run_one(be(), r), -EINVAL);
}

TEST_P(BackendMisaligned, OneBadRequestDoesNotHoldBackTheBatch) {
  if (kernel_answer(misfits(align_)[1]) != -EINVAL) GTEST_SKIP() << "misaligned offsets are accepted here";
  aligned_buffer in(8 * 4096);
  std::array<io_request, 8> reqs;
  std::array<completion_counter, 8> counts{};
  std::array<io_request*, 8> batch{};
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    const std::uint64_t off = i == 3 ? 3 * 4096 + align_.offset / 2 : i * 4096;
    reqs[i].prep_read(f_.fd(), in.data() + i * 4096, 4096, off);
    reqs[i].user_data = &counts[i];
    reqs[i].on_complete = count_completion;
    batch[i] = &reqs[i];
  }
  be().submit(batch);
  be().drain();
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(counts[i].count, 1) << "request " << i;
    if (i == 3) {
      EXPECT_EQ(reqs[i].result, -EINVAL);
    } else {
      EXPECT_EQ(reqs[i].result, 4096) << "request " << i << ": " << describe_failure(reqs[i]);
      EXPECT_TRUE(has_pattern(in.data() + i * 4096, 4096, i * 4096, 1));
    }
  }
}

TEST_P(BackendErrors, ClosedFdCompletesWithEbadf) {
  file f = make_file("data", 8192, 1);
  const int fd = ::dup(f.fd());
  ASSERT_GE(fd, 0);
  aligned_buffer buf(4096);
  // Used once while open, so that a backend that caches per-fd facts has one.
  io_request r;
  r.prep_read(fd, buf.data(), buf.size(), 0);
  ASSERT_EQ(run_one(be(), r), 4096);
  ASSERT_EQ(::close(fd), 0);

  r.prep_read(fd, buf.data(), buf.size(), 0);
  EXPECT_EQ(run_one(be(), r), -EBADF);
  EXPECT_THAT(describe_failure(r), HasSubstr("closed"));
  io_request w;
  w.prep_write(fd, buf.data(), buf.size(), 0);
  EXPECT_EQ(run_one(be(), w), -EBADF);
  const iovec v{buf.data(), buf.size()};
  io_request wv;
  wv.prep_writev(fd, &v, 1, 0);
  EXPECT_EQ(run_one(be(), wv), -EBADF);
  io_request s;
  s.prep_fdatasync(fd);
  EXPECT_EQ(run_one(be(), s), -EBADF);
  s.prep_fsync(fd);
  EXPECT_EQ(run_one(be(), s), -EBADF);
  EXPECT_THAT(describe_failure(s), HasSubstr("fsync"));
}

TEST_P(BackendErrors, NegativeFdCompletesWithEbadf) {
  aligned_buffer buf(4096);
  io_request r;
  r.prep_read(-1, buf.data(), buf.size(), 0);
  EXPECT_EQ(run_one(be(), r), -EBADF);
}

TEST_P(BackendErrors, WriteToAReadOnlyFdCompletesWithEbadf) {
  make_file("data", 8192, 1);
  open_options o;
  o.writable = false;
  file ro = file::open(dir() / "data", o);
  aligned_buffer buf(4096);
  io_request w;
  w.prep_write(ro.fd(), buf.data(), buf.size(), 0);
  EXPECT_EQ(run_one(be(), w), -EBADF);
}

// libaio runs buffered I/O synchronously inside io_submit, so the aio backend
// refuses descriptors without O_DIRECT unless told otherwise; the others take them.
TEST_P(BackendErrors, BufferedDescriptor) {
  file f = make_file("data", 16 * kib, 2, /*direct=*/false);
  ASSERT_FALSE(f.direct());
  aligned_buffer buf(4096);
  io_request r;
  r.prep_read(f.fd(), buf.data(), buf.size(), 4096);
  if (be().name() == "aio") {
    EXPECT_EQ(run_one(be(), r), -EOPNOTSUPP);
    EXPECT_THAT(describe_failure(r), HasSubstr("not support"));
    backend_options opts;
    opts.allow_buffered = true;
    ASSERT_NO_FATAL_FAILURE(remake(opts));
  }
  EXPECT_EQ(run_one(be(), r), 4096) << describe_failure(r);
  EXPECT_TRUE(has_pattern(buf.data(), buf.size(), 4096, 2));
  // Buffered I/O has no alignment rule.
  std::array<char, 100> small{};
  r.prep_read(f.fd(), small.data(), small.size(), 3);
  EXPECT_EQ(run_one(be(), r), 100);
  EXPECT_TRUE(has_pattern(small.data(), small.size(), 3, 2));
}

// A descriptor number closed and reused for another file, announced with
// forget_fd(), is taken for what it now is.
TEST_P(BackendErrors, ReusedDescriptorNumberAfterForgetFd) {
  file buffered = make_file("buffered", 8192, 3, /*direct=*/false);
  file direct = make_file("direct", 8192, 4);
  aligned_buffer buf(4096);
  io_request r;
  r.prep_read(buffered.fd(), buf.data(), buf.size(), 0);
  EXPECT_EQ(run_one(be(), r), be().name() == "aio" ? -EOPNOTSUPP : 4096);

  const int number = buffered.fd();
  ASSERT_EQ(::dup2(direct.fd(), number), number) << "the number now names the O_DIRECT file";
  be().forget_fd(number);
  r.prep_read(number, buf.data(), buf.size(), 4096);
  EXPECT_EQ(run_one(be(), r), 4096) << describe_failure(r);
  EXPECT_TRUE(has_pattern(buf.data(), buf.size(), 4096, 4));
}

TEST_P(BackendErrors, FixedBufferFlagOnAVectorOpIsRejected) {
  file f = make_file("data", 8192, 1);
  aligned_buffer buf(4096);
  const iovec v{buf.data(), buf.size()};
  io_request r;
  r.prep_readv(f.fd(), &v, 1, 0);
  r.flags = io_flags::fixed_buffer;
  EXPECT_EQ(run_one(be(), r), -EINVAL);
}

TEST_P(BackendErrors, BadIovecArraysAreRejected) {
  file f = make_file("data", 8192, 1);
  aligned_buffer buf(4096);
  std::vector<iovec> many(IOV_MAX + 1, iovec{buf.data(), 512});
  io_request r;
  r.prep_readv(f.fd(), many.data(), static_cast<std::uint32_t>(many.size()), 0);
  EXPECT_EQ(run_one(be(), r), -EINVAL) << "more than IOV_MAX elements";
  r.prep_readv(f.fd(), nullptr, 2, 0);
  EXPECT_EQ(run_one(be(), r), -EFAULT) << "a count without an array";
}

TEST_P(BackendErrors, OffsetBeyondTheLargestFileIsRejected) {
  file f = make_file("data", 8192, 1);
  aligned_buffer buf(4096);
  io_request r;
  r.prep_read(f.fd(), buf.data(), buf.size(), std::uint64_t{1} << 63);
  EXPECT_EQ(run_one(be(), r), -EINVAL);
}

TEST_P(BackendErrors, DescribeFailureOfASuccess) {
  file f = make_file("data", 8192, 1);
  aligned_buffer buf(4096);
  io_request r;
  r.prep_read(f.fd(), buf.data(), buf.size(), 4096);
  ASSERT_EQ(run_one(be(), r), 4096);
  EXPECT_THAT(describe_failure(r), HasSubstr("succeeded"));
  EXPECT_FALSE(r.failed());
  EXPECT_FALSE(r.error());
}

PAGEIO_INSTANTIATE_ON_ALL_BACKENDS(BackendMisaligned);
PAGEIO_INSTANTIATE_ON_ALL_BACKENDS(BackendErrors);

}  // namespace
}  // namespace pageio::test
