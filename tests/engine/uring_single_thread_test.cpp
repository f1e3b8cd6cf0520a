// backend_options::uring_single_thread: one thread owns the ring; others get
// a clear error, and destroying it elsewhere neither hangs nor leaks.
#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/backend.hpp>
#include <pageio/engine/file.hpp>

#include <sys/epoll.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "../support/test_dir.hpp"

namespace pageio::test {
namespace {

using ::testing::HasSubstr;

class UringSingleThread : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_options o;
    o.queue_depth = 8;
    o.uring_single_thread = true;
    try {
      be_ = make_backend("uring", o);
    } catch (const backend_unavailable& e) {
      GTEST_SKIP() << "uring cannot start here: " << e.what();
    }
    std::string why;
    dir_ = test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
    ensure_file_written(dir_->path() / "data", 64 * 1024);
    f_ = file::open(dir_->path() / "data");
  }

  int read_one(std::uint64_t offset) {
    io_request r;
    r.prep_read(f_.fd(), buf_.data(), 4096, offset);
    int runs = 0;
    r.user_data = &runs;
    r.on_complete = [](io_request& q) { ++*static_cast<int*>(q.user_data); };
    be_->submit(r);
    be_->drain();
    EXPECT_EQ(runs, 1);
    EXPECT_EQ(r.result, 4096) << describe_failure(r);
    return runs;
  }

  std::unique_ptr<io_backend> be_;
  std::optional<test_dir> dir_;
  file f_;
  aligned_buffer buf_{4096};
};

TEST_F(UringSingleThread, ResubmissionsArePacedByDefaultOnlyInSingleThreadMode) {
  // The measured default (docs/engine.md): half a microsecond between the
  // kernel trips of callback resubmissions; a ring shared between threads
  // keeps its batched resubmissions unpaced.
  EXPECT_EQ(be_->resubmit_gap(), std::chrono::nanoseconds(500));
  backend_options o;
  o.queue_depth = 8;
  o.uring_single_thread = false;
  EXPECT_EQ(make_backend("uring", o)->resubmit_gap(), std::chrono::nanoseconds::zero());
  o.resubmit_gap = std::chrono::microseconds(2);
  EXPECT_EQ(make_backend("uring", o)->resubmit_gap(), std::chrono::microseconds(2));
}

TEST_F(UringSingleThread, AnotherThreadGetsAClearErrorAndLosesNothing) {
  read_one(0);  // this thread drives it first: it owns it
  io_request r;
  r.prep_read(f_.fd(), buf_.data(), 4096, 4096);
  std::thread([&] {
    try {
      be_->submit(r);
      ADD_FAILURE() << "a second thread drove a single-thread uring backend";
    } catch (const std::logic_error& e) {
      EXPECT_THAT(e.what(), HasSubstr("uring_single_thread"));
    }
  }).join();
  // The refused request is still queued, not lost: the owner sends it.
  EXPECT_EQ(be_->outstanding(), 1u);
  be_->drain();
  EXPECT_EQ(r.result, 4096) << describe_failure(r);
  EXPECT_EQ(be_->outstanding(), 0u);
}

TEST_F(UringSingleThread, BuiltOnOneThreadDrivenByAnother) {
  std::thread([&] {
    read_one(0);
    read_one(8192);
    be_.reset();  // destroyed by its owner
  }).join();
}

TEST_F(UringSingleThread, CompletionsWakeAnEpollLoop) {
  const int efd = be_->notify_fd();
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev), 0);

  constexpr int n = 8;
  aligned_buffer bufs(n * 4096);
  io_request reqs[n];
  int done = 0;
  for (int i = 0; i < n; ++i) {
    reqs[i].prep_read(f_.fd(), bufs.data() + i * 4096, 4096, i * 4096);
    reqs[i].user_data = &done;
    reqs[i].on_complete = [](io_request& q) { ++*static_cast<int*>(q.user_data); };
    be_->submit(reqs[i]);
  }
  // Only epoll waits here: deferred completion work must still reach the eventfd.
  for (int rounds = 0; done < n && rounds < 1000; ++rounds) {
    epoll_event out{};
    const int k = ::epoll_wait(ep, &out, 1, 5000);
    ASSERT_EQ(k, 1) << "no wake-up within 5 s with " << n - done << " reads outstanding";
    be_->ack_notify();
    be_->poll();
  }
  EXPECT_EQ(done, n);
  for (auto& r : reqs) EXPECT_EQ(r.result, 4096) << describe_failure(r);
  ::close(ep);
}

TEST_F(UringSingleThread, DestroyedByAnotherThreadWithIoInFlight) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  io_request r;
  char c;
  r.prep_read(fds[0], &c, 1, 0);  // an empty pipe: stays in the kernel
  bool ran = false;
  r.user_data = &ran;
  r.on_complete = [](io_request& q) { *static_cast<bool*>(q.user_data) = true; };
  std::thread([&] { be_->submit(r); }).join();
  EXPECT_EQ(be_->in_kernel(), 1u);
  be_.reset();  // not the owner: must neither hang nor touch `r` afterwards
  EXPECT_FALSE(ran);
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace pageio::test
