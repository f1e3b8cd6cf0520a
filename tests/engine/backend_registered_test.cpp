// Registered files and buffers: a speed-up on io_uring, a no-op elsewhere,
// and the same data either way.
#include <sys/uio.h>

#include <array>
#include <cstring>

#include "backend_fixture.hpp"

namespace pageio::test {
namespace {

using BackendRegistered = backend_test;

constexpr std::size_t kib = 1024;

TEST_P(BackendRegistered, CapabilitiesSayWhatIsRegistered) {
  const bool uring = be().name() == "uring";
  EXPECT_EQ(be().caps().registered_files, uring);
  EXPECT_EQ(be().caps().registered_buffers, uring);
}

TEST_P(BackendRegistered, RegisteredFilesGiveTheSameData) {
  file a = make_file("a", 64 * kib, 1);
  file b = make_file("b", 64 * kib, 2);
  const std::array<int, 2> fds{a.fd(), b.fd()};
  be().register_files(fds);

  aligned_buffer out(16 * kib);
  fill_pattern(out.data(), out.size(), 8192, 3);
  io_request w;
  w.prep_write(b.fd(), out.data(), out.size(), 8192);
  ASSERT_EQ(run_one(be(), w), 16 * 1024) << describe_failure(w);
  const iovec v{out.data(), 4096};
  io_request wv;
  wv.prep_writev(a.fd(), &v, 1, 0);
  ASSERT_EQ(run_one(be(), wv), 4096) << describe_failure(wv);
  io_request s;
  s.prep_fdatasync(b.fd());
  EXPECT_EQ(run_one(be(), s), 0) << describe_failure(s);

  aligned_buffer in_a(64 * kib);
  aligned_buffer in_b(64 * kib);
  io_request ra;
  ra.prep_read(a.fd(), in_a.data(), in_a.size(), 0);
  io_request rb;
  rb.prep_read(b.fd(), in_b.data(), in_b.size(), 0);
  ASSERT_EQ(run_one(be(), ra), 64 * 1024);
  ASSERT_EQ(run_one(be(), rb), 64 * 1024);
  EXPECT_TRUE(has_pattern(in_a.data(), 4096, 8192, 3));
  EXPECT_TRUE(has_pattern(in_a.data() + 4096, 60 * kib, 4096, 1));
  EXPECT_TRUE(has_pattern(in_b.data(), 8192, 0, 2));
  EXPECT_TRUE(has_pattern(in_b.data() + 8192, 16 * kib, 8192, 3));
  EXPECT_TRUE(has_pattern(in_b.data() + 24 * kib, 40 * kib, 24 * kib, 2));

  // After unregistering, the same requests go by plain descriptor.
  be().unregister_files();
  std::memset(in_b.data(), 0, in_b.size());
  ASSERT_EQ(run_one(be(), rb), 64 * 1024);
  EXPECT_TRUE(has_pattern(in_b.data() + 8192, 16 * kib, 8192, 3));
}

TEST_P(BackendRegistered, RegisteredBuffersGiveTheSameData) {
  file f = make_file("data", 256 * kib, 4);
  aligned_buffer reg0(128 * kib);
  aligned_buffer reg1(128 * kib);
  const std::array<iovec, 2> bufs{{{reg0.data(), reg0.size()}, {reg1.data(), reg1.size()}}};
  be().register_buffers(bufs);

  // Read into the middle of registered buffer 0.
  io_request r;
  r.prep_read(f.fd(), reg0.data() + 8192, 64 * kib, 32 * kib);
  r.flags = io_flags::fixed_buffer;
  r.buf_index = 0;
  ASSERT_EQ(run_one(be(), r), 64 * 1024) << describe_failure(r);
  EXPECT_TRUE(has_pattern(reg0.data() + 8192, 64 * kib, 32 * kib, 4));

  // Write from registered buffer 1, with a dsync write among them.
  fill_pattern(reg1.data(), reg1.size(), 0, 5);
  io_request w;
  w.prep_write(f.fd(), reg1.data() + 4096, 32 * kib, 4096);
  w.flags = io_flags::fixed_buffer | io_flags::dsync;
  w.buf_index = 1;
  ASSERT_EQ(run_one(be(), w), 32 * 1024) << describe_failure(w);

  // A plain read sees what the fixed write wrote; a fixed read sees the same.
  aligned_buffer plain(64 * kib);
  io_request pr;
  pr.prep_read(f.fd(), plain.data(), plain.size(), 0);
  ASSERT_EQ(run_one(be(), pr), 64 * 1024);
  EXPECT_TRUE(has_pattern(plain.data(), 4096, 0, 4));
  EXPECT_TRUE(has_pattern(plain.data() + 4096, 32 * kib, 4096, 5));
  EXPECT_TRUE(has_pattern(plain.data() + 36 * kib, 28 * kib, 36 * kib, 4));
  io_request fr;
  fr.prep_read(f.fd(), reg0.data(), 64 * kib, 0);
  fr.flags = io_flags::fixed_buffer;
  fr.buf_index = 0;
  ASSERT_EQ(run_one(be(), fr), 64 * 1024);
  EXPECT_EQ(std::memcmp(reg0.data(), plain.data(), 64 * kib), 0);

  // A fixed read across end of file is short, like any other.
  io_request tail;
  tail.prep_read(f.fd(), reg1.data(), 64 * kib, 224 * kib);
  tail.flags = io_flags::fixed_buffer;
  tail.buf_index = 1;
  EXPECT_EQ(run_one(be(), tail), 32 * 1024);
  EXPECT_TRUE(has_pattern(reg1.data(), 32 * kib, 224 * kib, 4));
  be().unregister_buffers();
}

TEST_P(BackendRegistered, RegisteredFilesAndBuffersTogetherUnderLoad) {
  backend_options opts;
  opts.queue_depth = 8;
  ASSERT_NO_FATAL_FAILURE(remake(opts));
  constexpr std::size_t n = 64;
  file f = make_file("data", n * 4096, 6);
  const int fd = f.fd();
  be().register_files({&fd, 1});
  aligned_buffer reg(n * 4096);
  const iovec whole{reg.data(), reg.size()};
  be().register_buffers({&whole, 1});
  std::array<io_request, n> reqs;
  std::array<completion_counter, n> counts{};
  std::array<io_request*, n> batch{};
  for (std::size_t i = 0; i < n; ++i) {
    // Reverse order into the buffer, so that a wrong address shows.
    reqs[i].prep_read(fd, reg.data() + (n - 1 - i) * 4096, 4096, i * 4096);
    reqs[i].flags = io_flags::fixed_buffer;
    reqs[i].user_data = &counts[i];
    reqs[i].on_complete = count_completion;
    batch[i] = &reqs[i];
  }
  be().submit(batch);
  be().drain();
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(counts[i].count, 1);
    ASSERT_EQ(reqs[i].result, 4096) << describe_failure(reqs[i]);
    EXPECT_TRUE(has_pattern(reg.data() + (n - 1 - i) * 4096, 4096, i * 4096, 6)) << "request " << i;
  }
  be().unregister_buffers();
  be().unregister_files();
}

PAGEIO_INSTANTIATE_ON_ALL_BACKENDS(BackendRegistered);

}  // namespace
}  // namespace pageio::test
