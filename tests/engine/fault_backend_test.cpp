// The fault-injecting wrapper over every backend: queued and random faults
// reach the right requests, refused submissions are retried rather than lost,
// delayed and reordered completions still complete every request once with
// the right data.
#include <pageio/engine/fault_backend.hpp>

#include <algorithm>
#include <cerrno>
#include <numeric>
#include <vector>

#include "backend_fixture.hpp"

namespace pageio::test {
namespace {

constexpr std::size_t page = 4096;

class fault_backend_test : public backend_test {
 protected:
  // Wraps the fixture's backend.
  fault_backend& wrap(const fault_options& opts = {}) {
    auto w = std::make_unique<fault_backend>(std::move(backend_), opts);
    fault_backend& ref = *w;
    backend_ = std::move(w);
    return ref;
  }
};

// Submits `reqs` in one batch and drains; returns the order they completed in.
std::vector<int> run_all(io_backend& be, std::vector<io_request>& reqs) {
  std::vector<int> order;
  struct ctx {
    std::vector<int>* order;
    int index;
  };
  std::vector<ctx> ctxs(reqs.size());
  std::vector<io_request*> batch;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    ctxs[i] = {&order, static_cast<int>(i)};
    reqs[i].user_data = &ctxs[i];
    reqs[i].on_complete = [](io_request& r) {
      auto* c = static_cast<ctx*>(r.user_data);
      c->order->push_back(c->index);
    };
    batch.push_back(&reqs[i]);
  }
  be.submit(std::span<io_request* const>(batch));
  be.drain();
  return order;
}

TEST_P(fault_backend_test, NamesItselfAfterTheBackendItWraps) {
  const std::string inner = be().name();
  fault_backend& f = wrap();
  EXPECT_EQ(f.name(), "fault+" + inner);
  EXPECT_EQ(f.caps().queue_depth, f.inner().caps().queue_depth);
}

TEST_P(fault_backend_test, QueuedFaultsHitTheNextOperationOfTheirKind) {
  fault_backend& f = wrap();
  file data = make_file("queued.dat", 8 * page, 3);
  aligned_buffer buf(page, page);
  f.fail_next(fault_target::write, ENOSPC);
  f.fail_next(fault_target::flush, EIO);

  io_request r;
  r.prep_read(data.fd(), buf.data(), page, 0);
  EXPECT_EQ(run_one(f, r), static_cast<std::int64_t>(page)) << "a read is not a write: untouched";
  EXPECT_TRUE(has_pattern(buf.data(), page, 0, 3));

  r.prep_write(data.fd(), buf.data(), page, page);
  EXPECT_EQ(run_one(f, r), -ENOSPC);
  r.prep_write(data.fd(), buf.data(), page, page);
  EXPECT_EQ(run_one(f, r), static_cast<std::int64_t>(page)) << "one fault queued, one write failed";

  r.prep_fdatasync(data.fd());
  EXPECT_EQ(run_one(f, r), -EIO);
  r.prep_fsync(data.fd());
  EXPECT_EQ(run_one(f, r), 0);

  // A dsync write is a write and a flush: a queued flush fault reaches it.
  f.fail_next(fault_target::flush, EIO);
  r.prep_write(data.fd(), buf.data(), page, 2 * page);
  r.flags = io_flags::dsync;
  EXPECT_EQ(run_one(f, r), -EIO);

  const auto c = f.injected();
  EXPECT_EQ(c.write_errors, 2u);  // the ENOSPC and the dsync write
  EXPECT_EQ(c.flush_errors, 1u);
  EXPECT_EQ(c.read_errors, 0u);
}

TEST_P(fault_backend_test, RandomFaultsFollowTheirRates) {
  fault_options o;
  o.seed = 42;
  o.read_eio = 1.0;
  fault_backend& f = wrap(o);
  file data = make_file("rates.dat", 16 * page, 5);
  aligned_buffer buf(16 * page, page);
  std::vector<io_request> reqs(16);
  for (std::size_t i = 0; i < reqs.size(); ++i) reqs[i].prep_read(data.fd(), buf.data() + i * page, page, i * page);
  run_all(f, reqs);
  for (const auto& r : reqs) EXPECT_EQ(r.result, -EIO);
  EXPECT_EQ(f.injected().read_errors, reqs.size());

  o.read_eio = 0;
  o.write_eio = 0.5;
  f.set_options(o);
  for (std::size_t i = 0; i < reqs.size(); ++i) reqs[i].prep_write(data.fd(), buf.data() + i * page, page, i * page);
  for (int round = 0; round < 8; ++round) run_all(f, reqs);
  const auto writes_failed = f.injected().write_errors;
  // 128 writes at rate 0.5: far from 0 and from 128 (binomial, p < 1e-20 outside 20..108).
  EXPECT_GT(writes_failed, 20u);
  EXPECT_LT(writes_failed, 108u);
}

TEST_P(fault_backend_test, RefusedSubmissionsAreRetriedNotLost) {
  fault_options o;
  o.seed = 7;
  o.submit_eagain = 0.5;
  fault_backend& f = wrap(o);
  file data = make_file("eagain.dat", 64 * page, 9);
  aligned_buffer buf(64 * page, page);
  std::vector<io_request> reqs(64);
  for (std::size_t i = 0; i < reqs.size(); ++i) reqs[i].prep_read(data.fd(), buf.data() + i * page, page, i * page);
  const auto order = run_all(f, reqs);
  EXPECT_EQ(order.size(), reqs.size());
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(reqs[i].result, static_cast<std::int64_t>(page)) << i;
    EXPECT_TRUE(has_pattern(buf.data() + i * page, page, i * page, 9)) << i;
  }
  EXPECT_GT(f.injected().eagain, 0u);
}

TEST_P(fault_backend_test, DelayedAndReorderedCompletionsStillCompleteOnce) {
  fault_options o;
  o.seed = 3;
  o.reorder = true;
  o.max_added_latency = std::chrono::microseconds(500);
  fault_backend& f = wrap(o);
  file data = make_file("reorder.dat", 64 * page, 12);
  aligned_buffer buf(64 * page, page);
  std::vector<io_request> reqs(64);
  for (std::size_t i = 0; i < reqs.size(); ++i) reqs[i].prep_read(data.fd(), buf.data() + i * page, page, i * page);
  const auto order = run_all(f, reqs);
  ASSERT_EQ(order.size(), reqs.size());
  std::vector<int> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int> expected(reqs.size());
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(sorted, expected) << "every request completes exactly once";
  EXPECT_NE(order, expected) << "64 completions with random delays came back in submission order";
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_TRUE(has_pattern(buf.data() + i * page, page, i * page, 12)) << i;
  }
  EXPECT_EQ(f.injected().delayed, reqs.size());
}

TEST_P(fault_backend_test, CancellingAQueuedRequestThroughTheWrapper) {
  backend_options bo;
  bo.queue_depth = 1;
  remake(bo);
  fault_backend& f = wrap();
  file data = make_file("cancel.dat", 4 * page, 2);
  aligned_buffer buf(2 * page, page);
  std::vector<io_request> reqs(2);
  reqs[0].prep_read(data.fd(), buf.data(), page, 0);
  reqs[1].prep_read(data.fd(), buf.data() + page, page, page);
  int done = 0;
  for (auto& r : reqs) {
    r.user_data = &done;
    r.on_complete = [](io_request& x) { ++*static_cast<int*>(x.user_data); };
    f.submit(r);
  }
  EXPECT_TRUE(f.cancel(reqs[1])) << "the second waits in the wrapper's queue (depth 1)";
  f.drain();
  EXPECT_EQ(done, 2);
  EXPECT_EQ(reqs[0].result, static_cast<std::int64_t>(page));
  EXPECT_EQ(reqs[1].result, -ECANCELED);
}

TEST_P(fault_backend_test, HasNoEventfdAndSaysSo) {
  fault_backend& f = wrap();
  try {
    (void)f.notify_fd();
    FAIL() << "notify_fd() should refuse";
  } catch (const std::logic_error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("reap()"));
  }
}

TEST_P(fault_backend_test, DestroyedWithRequestsInFlight) {
  fault_options o;
  o.max_added_latency = std::chrono::microseconds(2000);
  fault_backend& f = wrap(o);
  file data = make_file("inflight.dat", 32 * page, 4);
  aligned_buffer buf(32 * page, page);
  std::vector<io_request> reqs(32);
  std::vector<io_request*> batch;
  int completions = 0;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    reqs[i].prep_read(data.fd(), buf.data() + i * page, page, i * page);
    reqs[i].user_data = &completions;
    reqs[i].on_complete = [](io_request& x) { ++*static_cast<int*>(x.user_data); };
    batch.push_back(&reqs[i]);
  }
  f.submit(std::span<io_request* const>(batch));
  EXPECT_EQ(f.outstanding(), reqs.size());
  // Waits for the inner backend to let go of the buffers; completions are
  // dropped, as io_backend's destructor says (ASan checks the rest).
  backend_.reset();
  EXPECT_EQ(completions, 0);
}

PAGEIO_INSTANTIATE_ON_ALL_BACKENDS(fault_backend_test);

}  // namespace
}  // namespace pageio::test
