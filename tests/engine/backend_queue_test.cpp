// Queueing, backpressure, cancellation, reaping and event-loop integration,
// the same on every backend.
#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <vector>

#include "backend_fixture.hpp"

namespace pageio::test {
namespace {

using BackendQueue = backend_test;
using namespace std::chrono_literals;

constexpr std::size_t kib = 1024;

// One request with the state a test needs to check it.
struct tracked {
  io_request req;
  io_backend* be = nullptr;
  int completions = 0;
  std::size_t in_kernel_at_completion = 0;
};

void on_tracked(io_request& r) noexcept {
  auto* t = static_cast<tracked*>(r.user_data);
  ++t->completions;
  t->in_kernel_at_completion = t->be->in_kernel();
}

TEST_P(BackendQueue, FarMoreRequestsThanQueueDepthAllComplete) {
  backend_options opts;
  opts.queue_depth = 4;
  ASSERT_NO_FATAL_FAILURE(remake(opts));
  constexpr std::size_t n = 500;
  file f = make_file("data", n * 4096, 1);
  aligned_buffer out(n * 4096);
  fill_pattern(out.data(), out.size(), 0, 2);

  std::vector<tracked> reqs(n);
  std::vector<io_request*> batch;
  for (std::size_t i = 0; i < n; ++i) {
    reqs[i].be = &be();
    reqs[i].req.prep_write(f.fd(), out.data() + i * 4096, 4096, i * 4096);
    reqs[i].req.user_data = &reqs[i];
    reqs[i].req.on_complete = on_tracked;
    batch.push_back(&reqs[i].req);
  }
  be().submit(batch);
  EXPECT_LE(be().in_kernel(), 4u);
  EXPECT_EQ(be().outstanding(), n) << "submit must keep every request, never drop one";
  be().drain();
  EXPECT_EQ(be().outstanding(), 0u);
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(reqs[i].completions, 1) << "write " << i;
    EXPECT_EQ(reqs[i].req.result, 4096) << "write " << i << ": " << describe_failure(reqs[i].req);
    EXPECT_LE(reqs[i].in_kernel_at_completion, 4u) << "more requests in the kernel than the queue depth";
  }

  // Read it all back the same way, reaping one at a time this time.
  aligned_buffer in(n * 4096);
  batch.clear();
  for (std::size_t i = 0; i < n; ++i) {
    reqs[i] = tracked{};
    reqs[i].be = &be();
    reqs[i].req.prep_read(f.fd(), in.data() + i * 4096, 4096, i * 4096);
    reqs[i].req.user_data = &reqs[i];
    reqs[i].req.on_complete = on_tracked;
    batch.push_back(&reqs[i].req);
  }
  be().submit(batch);
  std::size_t reaped = 0;
  while (reaped < n) {
    const std::size_t got = be().reap(1, 10s);
    ASSERT_GE(got, 1u) << "reap(1) returned nothing with " << be().outstanding() << " outstanding";
    reaped += got;
  }
  EXPECT_EQ(reaped, n);
  EXPECT_EQ(be().outstanding(), 0u);
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(reqs[i].completions, 1) << "read " << i;
    EXPECT_EQ(reqs[i].req.result, 4096) << "read " << i;
  }
  EXPECT_TRUE(has_pattern(in.data(), in.size(), 0, 2));
}

TEST_P(BackendQueue, SubmittingARequestListEmptiesIt) {
  file f = make_file("data", 64 * kib, 3);
  aligned_buffer in(64 * kib);
  std::array<tracked, 16> reqs{};
  request_list list;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    reqs[i].be = &be();
    reqs[i].req.prep_read(f.fd(), in.data() + i * 4096, 4096, i * 4096);
    reqs[i].req.user_data = &reqs[i];
    reqs[i].req.on_complete = on_tracked;
    list.push_back(reqs[i].req);
  }
  be().submit(list);
  EXPECT_TRUE(list.empty());
  be().drain();
  for (auto& t : reqs) {
    EXPECT_EQ(t.completions, 1);
    EXPECT_EQ(t.req.result, 4096);
  }
  EXPECT_TRUE(has_pattern(in.data(), in.size(), 0, 3));
}

TEST_P(BackendQueue, ReapWaitsForNoMoreThanIsOutstanding) {
  file f = make_file("data", 16 * kib, 3);
  aligned_buffer in(16 * kib);
  std::array<tracked, 3> reqs{};
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    reqs[i].be = &be();
    reqs[i].req.prep_read(f.fd(), in.data() + i * 4096, 4096, i * 4096);
    reqs[i].req.user_data = &reqs[i];
    reqs[i].req.on_complete = on_tracked;
    be().submit(reqs[i].req);
  }
  // Asking for more than is outstanding must not wait forever.
  EXPECT_EQ(be().reap(10), 3u);
  EXPECT_EQ(be().outstanding(), 0u);
  EXPECT_EQ(be().reap(5), 0u) << "nothing outstanding: returns at once";
}

TEST_P(BackendQueue, ReapWithTimeoutReturnsWhenNothingCompletes) {
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(be().reap(1, 50ms), 0u);
  EXPECT_EQ(be().poll(), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

// A read of an empty pipe never completes by itself: it shows that reap()
// honours its timeout while a request is in the kernel, and that cancel()
// reaches a request the kernel holds. Only io_uring reads a pipe
// asynchronously; the other backends give their own immediate answers.
TEST_P(BackendQueue, ReadOfAnEmptyPipeTimesOutAndCancels) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::array<char, 512> buf{};
  completion_counter c;
  io_request r;
  r.prep_read(p[0], buf.data(), buf.size(), 0);
  r.user_data = &c;
  r.on_complete = count_completion;
  be().submit(r);

  if (be().name() == "sync") {
    EXPECT_EQ(be().reap(1, 1s), 1u);
    EXPECT_EQ(c.result, -ESPIPE) << "pread on a pipe";
  } else if (be().name() == "aio") {
    EXPECT_EQ(be().reap(1, 1s), 1u);
    EXPECT_EQ(c.result, -EOPNOTSUPP) << "aio refuses descriptors without O_DIRECT";
  } else {
    ASSERT_EQ(be().in_kernel(), 1u);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(be().reap(1, 100ms), 0u);
    const auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(waited, 90ms) << "reap returned before its timeout";
    EXPECT_LT(waited, 5s) << "reap ignored its timeout";
    EXPECT_EQ(c.count, 0);

    be().cancel(r);
    be().reap(1, 5s);
    if (c.count == 0) {
      // Not cancelled: let the read finish so that the test fails instead of hanging.
      ASSERT_EQ(::write(p[1], "x", 1), 1);
      be().drain();
      ADD_FAILURE() << "cancel() did not reach a read the kernel holds";
    }
    EXPECT_EQ(c.count, 1);
    EXPECT_EQ(c.result, -ECANCELED);
  }
  EXPECT_EQ(c.count, 1);
  EXPECT_EQ(be().outstanding(), 0u);
  ::close(p[0]);
  ::close(p[1]);
}

TEST_P(BackendQueue, CancelOfAQueuedRequestCompletesItWithEcanceledOnce) {
  backend_options opts;
  opts.queue_depth = 4;
  ASSERT_NO_FATAL_FAILURE(remake(opts));
  constexpr std::size_t n = 32;
  file f = make_file("data", n * 4096, 4);
  aligned_buffer in(n * 4096);
  std::vector<tracked> reqs(n);
  std::vector<io_request*> batch;
  for (std::size_t i = 0; i < n; ++i) {
    reqs[i].be = &be();
    reqs[i].req.prep_read(f.fd(), in.data() + i * 4096, 4096, i * 4096);
    reqs[i].req.user_data = &reqs[i];
    reqs[i].req.on_complete = on_tracked;
    batch.push_back(&reqs[i].req);
  }
  be().submit(batch);
  constexpr std::size_t victim = n - 3;
  io_request& v = reqs[victim].req;
  if (be().name() == "sync") {
    // The sync backend runs requests at submission: nothing is ever queued, so
    // cancel() is too late and the request completes normally.
    EXPECT_FALSE(be().cancel(v));
  } else {
    ASSERT_EQ(be().in_kernel(), 4u) << "with queue depth 4, request 29 of 32 waits in the backend's queue";
    EXPECT_TRUE(be().cancel(v));
    EXPECT_FALSE(be().cancel(v)) << "cancelling twice";
  }
  be().drain();
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(reqs[i].completions, 1) << "request " << i;
    if (i == victim && be().name() != "sync") {
      EXPECT_EQ(reqs[i].req.result, -ECANCELED);
      EXPECT_NE(describe_failure(reqs[i].req).find("cancel"), std::string::npos);
    } else {
      EXPECT_EQ(reqs[i].req.result, 4096) << "request " << i;
      EXPECT_TRUE(has_pattern(in.data() + i * 4096, 4096, i * 4096, 4));
    }
  }
  EXPECT_FALSE(be().cancel(v)) << "cancel after completion";
}

TEST_P(BackendQueue, CancelOfInFlightRequestsCompletesEachOnce) {
  constexpr std::size_t n = 64;
  constexpr std::size_t len = 64 * kib;
  file f = make_file("data", n * len, 5);
  aligned_buffer in(n * len);
  std::vector<tracked> reqs(n);
  std::vector<io_request*> batch;
  for (std::size_t i = 0; i < n; ++i) {
    reqs[i].be = &be();
    reqs[i].req.prep_read(f.fd(), in.data() + i * len, len, i * len);
    reqs[i].req.user_data = &reqs[i];
    reqs[i].req.on_complete = on_tracked;
    batch.push_back(&reqs[i].req);
  }
  be().submit(batch);
  std::size_t confirmed = 0;
  for (auto& t : reqs) confirmed += be().cancel(t.req) ? 1 : 0;
  be().drain();
  std::size_t cancelled = 0;
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(reqs[i].completions, 1) << "request " << i;
    const auto res = reqs[i].req.result;
    if (res == -ECANCELED) {
      ++cancelled;
    } else {
      ASSERT_EQ(res, static_cast<std::int64_t>(len)) << "request " << i << ": " << describe_failure(reqs[i].req);
      EXPECT_TRUE(has_pattern(in.data() + i * len, len, i * len, 5));
    }
  }
  EXPECT_LE(confirmed, cancelled) << "cancel() returned true for a request that completed normally";
  EXPECT_EQ(be().outstanding(), 0u);
}

// The libaio + eventfd + epoll pattern: the loop sleeps in epoll_wait on the
// backend's eventfd and collects completions with poll(); it never blocks in reap().
struct epoll_loop {
  int ep = -1;
  explicit epoll_loop(int notify_fd) {
    ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = notify_fd;
    if (ep >= 0 && ::epoll_ctl(ep, EPOLL_CTL_ADD, notify_fd, &ev) != 0) {
      ::close(ep);
      ep = -1;
    }
  }
  ~epoll_loop() {
    if (ep >= 0) ::close(ep);
  }
  // Runs until `done()`; false if epoll went quiet for 5 s first.
  template <class Done>
  bool run(io_backend& be, Done done, int* wakeups) {
    while (!done()) {
      epoll_event ev{};
      const int n = ::epoll_wait(ep, &ev, 1, 5000);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      ++*wakeups;
      be.ack_notify();
      be.poll();
    }
    return true;
  }
};

TEST_P(BackendQueue, NotifyFdDrivesCompletionsThroughEpoll) {
  backend_options opts;
  opts.queue_depth = 8;
  ASSERT_NO_FATAL_FAILURE(remake(opts));
  const int nfd = be().notify_fd();
  ASSERT_GE(nfd, 0);
  EXPECT_EQ(be().notify_fd(), nfd) << "one eventfd per backend";
  epoll_loop loop(nfd);
  ASSERT_GE(loop.ep, 0);

  constexpr std::size_t n = 64;
  file f = make_file("data", 2 * n * 4096, 6);
  aligned_buffer out(n * 4096);
  aligned_buffer in(n * 4096);
  fill_pattern(out.data(), out.size(), n * 4096, 7);
  std::vector<tracked> reqs(2 * n);
  std::vector<io_request*> batch;
  for (std::size_t i = 0; i < n; ++i) {
    // Reads of the first half, writes of the second: both kinds signal.
    reqs[i].req.prep_read(f.fd(), in.data() + i * 4096, 4096, i * 4096);
    reqs[n + i].req.prep_write(f.fd(), out.data() + i * 4096, 4096, (n + i) * 4096);
  }
  for (auto& t : reqs) {
    t.be = &be();
    t.req.user_data = &t;
    t.req.on_complete = on_tracked;
    batch.push_back(&t.req);
  }
  be().submit(batch);
  int wakeups = 0;
  const bool finished = loop.run(be(), [&] { return be().outstanding() == 0; }, &wakeups);
  ASSERT_TRUE(finished) << "the eventfd stayed quiet with " << be().outstanding()
                        << " requests outstanding (" << be().in_kernel() << " in the kernel)";
  EXPECT_GE(wakeups, 1);
  for (auto& t : reqs) {
    EXPECT_EQ(t.completions, 1);
    EXPECT_EQ(t.req.result, 4096) << describe_failure(t.req);
  }
  EXPECT_TRUE(has_pattern(in.data(), in.size(), 0, 6));

  // Once everything is collected, the eventfd goes quiet. (The kernel may
  // signal a moment after posting a completion that was already collected:
  // give such a late signal time to land before acknowledging.)
  epoll_event ev{};
  ::epoll_wait(loop.ep, &ev, 1, 20);
  be().ack_notify();
  EXPECT_EQ(be().poll(), 0u);
  EXPECT_EQ(::epoll_wait(loop.ep, &ev, 1, 0), 0) << "the eventfd stays readable with nothing to collect";
}

// notify_fd() is created on first call; an event loop may ask for it only
// after the first requests went out. Those must wake it too.
TEST_P(BackendQueue, NotifyFdCreatedAfterSubmissionStillWakesTheLoop) {
  constexpr std::size_t n = 16;
  file f = make_file("data", n * 64 * kib, 11);
  aligned_buffer in(n * 64 * kib);
  std::vector<tracked> reqs(n);
  std::vector<io_request*> batch;
  for (std::size_t i = 0; i < n; ++i) {
    reqs[i].be = &be();
    reqs[i].req.prep_read(f.fd(), in.data() + i * 64 * kib, 64 * kib, i * 64 * kib);
    reqs[i].req.user_data = &reqs[i];
    reqs[i].req.on_complete = on_tracked;
    batch.push_back(&reqs[i].req);
  }
  be().submit(batch);
  epoll_loop loop(be().notify_fd());
  ASSERT_GE(loop.ep, 0);
  int wakeups = 0;
  const bool finished = loop.run(be(), [&] { return be().outstanding() == 0; }, &wakeups);
  if (!finished) be().drain();  // so that the failure below is reported, not a hang
  ASSERT_TRUE(finished) << "the eventfd stayed quiet for requests submitted before it was created";
  for (auto& t : reqs) {
    EXPECT_EQ(t.completions, 1);
    EXPECT_EQ(t.req.result, static_cast<std::int64_t>(64 * kib));
  }
  EXPECT_TRUE(has_pattern(in.data(), in.size(), 0, 11));
}

// A chain of sequential reads, each submitted from the previous one's completion.
struct read_chain {
  io_backend* be = nullptr;
  io_request req;
  int fd = -1;
  std::byte* dst = nullptr;
  std::size_t block = 0;
  std::size_t steps = 0;
  std::size_t next = 0;
  int completions = 0;
  bool failed = false;
};

void on_chain(io_request& r) noexcept {
  auto* c = static_cast<read_chain*>(r.user_data);
  ++c->completions;
  if (r.result != static_cast<std::int64_t>(c->block)) {
    c->failed = true;
    return;
  }
  if (++c->next == c->steps) return;
  r.prep_read(c->fd, c->dst + c->next * c->block, c->block, c->next * c->block);
  c->be->submit(r);  // resubmits the request whose completion is running
}

TEST_P(BackendQueue, CompletionCallbackCanResubmit) {
  constexpr std::size_t steps = 32;
  file f = make_file("data", steps * 4096, 8);
  aligned_buffer in(steps * 4096);
  // Two independent chains running side by side.
  std::array<read_chain, 2> chains{};
  for (auto& c : chains) {
    c.be = &be();
    c.fd = f.fd();
    c.block = 4096;
    c.steps = steps;
    c.req.user_data = &c;
    c.req.on_complete = on_chain;
  }
  aligned_buffer in2(steps * 4096);
  chains[0].dst = in.data();
  chains[1].dst = in2.data();
  for (auto& c : chains) {
    c.req.prep_read(c.fd, c.dst, c.block, 0);
    be().submit(c.req);
  }
  std::size_t rounds = 0;
  while (be().outstanding() > 0 && rounds < 10 * steps) {
    be().reap(1, 5s);
    ++rounds;
  }
  for (auto& c : chains) {
    EXPECT_FALSE(c.failed) << describe_failure(c.req);
    EXPECT_EQ(c.completions, static_cast<int>(steps));
    EXPECT_EQ(c.next, steps);
  }
  EXPECT_EQ(be().outstanding(), 0u);
  EXPECT_TRUE(has_pattern(in.data(), in.size(), 0, 8));
  EXPECT_TRUE(has_pattern(in2.data(), in2.size(), 0, 8));
}

TEST_P(BackendQueue, ResubmitGapSpacesOutResubmissionsFromCallbacks) {
  // A gap far longer than a 4 KiB read, so that the lower bound it implies
  // cannot be met by the reads alone.
  constexpr auto gap = 3ms;
  backend_options opts;
  opts.queue_depth = 8;
  opts.callback_batch = 1;  // every resubmission is its own trip to the kernel
  opts.resubmit_gap = gap;
  ASSERT_NO_FATAL_FAILURE(remake(opts));
  EXPECT_EQ(be().resubmit_gap(), gap);
  constexpr std::size_t steps = 4;
  file f = make_file("data", steps * 4096, 12);
  std::array<aligned_buffer, 3> dst{aligned_buffer(steps * 4096), aligned_buffer(steps * 4096),
                                    aligned_buffer(steps * 4096)};
  std::array<read_chain, 3> chains{};
  for (std::size_t i = 0; i < chains.size(); ++i) {
    read_chain& c = chains[i];
    c.be = &be();
    c.fd = f.fd();
    c.block = 4096;
    c.steps = steps;
    c.dst = dst[i].data();
    c.req.user_data = &c;
    c.req.on_complete = on_chain;
    c.req.prep_read(c.fd, c.dst, c.block, 0);
  }
  const auto start = std::chrono::steady_clock::now();
  for (auto& c : chains) be().submit(c.req);  // not from a callback: no gap
  std::size_t rounds = 0;
  while (be().outstanding() > 0 && rounds < 100) {
    be().reap(1, 5s);
    ++rounds;
  }
  const auto took = std::chrono::steady_clock::now() - start;
  for (std::size_t i = 0; i < chains.size(); ++i) {
    EXPECT_FALSE(chains[i].failed) << describe_failure(chains[i].req);
    EXPECT_EQ(chains[i].completions, static_cast<int>(steps));
    EXPECT_TRUE(has_pattern(dst[i].data(), dst[i].size(), 0, 12));
  }
  // 3 chains x 3 resubmissions, each trip to the kernel at least `gap` after
  // the one before: at least 8 gaps, whatever the device's speed.
  const std::size_t resubmissions = chains.size() * (steps - 1);
  EXPECT_GE(took, (resubmissions - 1) * gap)
      << "resubmissions were not spaced out: " << std::chrono::duration<double, std::milli>(took).count()
      << " ms for " << resubmissions;
}

TEST(ResubmitGap, OnlyASingleThreadUringRingPacesByDefault) {
  // docs/engine.md: only a single-thread uring ring paces by default (its
  // own test); sync has no device queue to keep steady, and aio's paced
  // reaping already spaces its resubmissions.
  backend_options o;
  o.queue_depth = 8;
  EXPECT_EQ(make_backend("sync", o)->resubmit_gap(), std::chrono::nanoseconds::zero());
  try {
    EXPECT_EQ(make_backend("aio", o)->resubmit_gap(), std::chrono::nanoseconds::zero());
  } catch (const backend_unavailable& e) {
    GTEST_SKIP() << "aio cannot start here: " << e.what();
  }
}

TEST_P(BackendQueue, ResubmitGapZeroTurnsPacingOff) {
  backend_options opts;
  opts.resubmit_gap = std::chrono::nanoseconds::zero();
  ASSERT_NO_FATAL_FAILURE(remake(opts));
  EXPECT_EQ(be().resubmit_gap(), std::chrono::nanoseconds::zero());
}

TEST_P(BackendQueue, ResubmissionFromACallbackSignalsTheNotifyFd) {
  const int nfd = be().notify_fd();
  epoll_loop loop(nfd);
  ASSERT_GE(loop.ep, 0);
  constexpr std::size_t steps = 16;
  file f = make_file("data", steps * 4096, 9);
  aligned_buffer in(steps * 4096);
  read_chain c;
  c.be = &be();
  c.fd = f.fd();
  c.block = 4096;
  c.steps = steps;
  c.dst = in.data();
  c.req.user_data = &c;
  c.req.on_complete = on_chain;
  c.req.prep_read(c.fd, c.dst, c.block, 0);
  be().submit(c.req);
  int wakeups = 0;
  const bool finished = loop.run(be(), [&] { return be().outstanding() == 0; }, &wakeups);
  ASSERT_TRUE(finished) << "the eventfd stayed quiet after step " << c.next << " of " << steps
                        << " with " << be().outstanding() << " outstanding";
  EXPECT_FALSE(c.failed) << describe_failure(c.req);
  EXPECT_EQ(c.completions, static_cast<int>(steps));
  EXPECT_TRUE(has_pattern(in.data(), in.size(), 0, 9));
}

TEST_P(BackendQueue, DestroyingABackendWithRequestsOutstandingIsSafe) {
  file f = make_file("data", 64 * 4096, 10);
  aligned_buffer in(64 * 4096);
  std::vector<tracked> reqs(64);
  {
    backend_options opts;
    opts.queue_depth = 8;
    ASSERT_NO_FATAL_FAILURE(remake(opts));
    for (std::size_t i = 0; i < reqs.size(); ++i) {
      reqs[i].be = &be();
      reqs[i].req.prep_read(f.fd(), in.data() + i * 4096, 4096, i * 4096);
      reqs[i].req.user_data = &reqs[i];
      reqs[i].req.on_complete = on_tracked;
      be().submit(reqs[i].req);
    }
    backend_.reset();  // waits for the kernel-held ones, runs no completion
  }
  for (auto& t : reqs) EXPECT_EQ(t.completions, 0);
  // Every request can be submitted again, to a new backend, and completes once.
  ASSERT_NO_FATAL_FAILURE(remake(backend_options{}));
  for (auto& t : reqs) {
    t.be = &be();
    be().submit(t.req);
  }
  be().drain();
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(reqs[i].completions, 1) << "request " << i;
    EXPECT_EQ(reqs[i].req.result, 4096) << "request " << i;
  }
}

PAGEIO_INSTANTIATE_ON_ALL_BACKENDS(BackendQueue);

}  // namespace
}  // namespace pageio::test
