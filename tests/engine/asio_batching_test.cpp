// pageio::asio_driver sends the requests that the handlers of one wake-up
// start as one submission to its backend, whatever the backend's
// callback_batch: one trip to the kernel for a whole wave of completions.
// The backend here counts what each of its kernel cycles is handed.
#include <pageio/engine/asio.hpp>
#include <pageio/engine/aligned_buffer.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "support/test_dir.hpp"

namespace pageio::test {
namespace {

namespace asio = boost::asio;

constexpr std::size_t page = 4096;

// Runs each request with pread at submission, as the sync backend does, and
// records how many requests every kernel cycle took.
class counting_backend final : public io_backend {
 public:
  explicit counting_backend(std::vector<std::size_t>* cycles)
      : io_backend(capabilities{.name = "counting", .queue_depth = 64}, backend_options{},
                   /*default_callback_batch=*/1),
        cycles_(cycles) {}
  ~counting_backend() override { abandon_all(); }

 protected:
  void kernel_cycle(std::size_t, std::chrono::nanoseconds, bool) override {
    std::size_t n = 0;
    while (io_request* r = pop_queued()) {
      ++n;
      entered_kernel(*r, 0);
      const segment s = next_segment(*r);
      const ssize_t got = ::pread(r->fd, s.buf, s.length, static_cast<off_t>(s.offset));
      kernel_done(*r, got >= 0 ? got : -errno);
    }
    if (n > 0) cycles_->push_back(n);
  }

 private:
  std::vector<std::size_t>* cycles_;
};

class asio_batching_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
    fd_ = ::open((dir_->path() / "data").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd_, 0);
    std::vector<std::byte> bytes(16 * page);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(i / page + 1);
    ASSERT_EQ(::pwrite(fd_, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    driver_ = std::make_unique<asio_driver>(ctx_, std::make_unique<counting_backend>(&cycles_));
  }
  void TearDown() override {
    driver_.reset();
    cycles_.clear();
    if (fd_ >= 0) ::close(fd_);
  }

  std::vector<std::size_t> cycles_;
  std::optional<test_dir> dir_;
  int fd_ = -1;
  asio::io_context ctx_;
  std::unique_ptr<asio_driver> driver_;
};

TEST_F(asio_batching_test, WhatTheHandlersOfOneWakeUpStartIsOneSubmission) {
  constexpr int chains = 8;
  constexpr int rounds = 5;
  async_file f(*driver_, fd_);
  aligned_buffer bufs(chains * page, page);
  int finished = 0;
  bool all_right = true;
  // Each chain reads its page, checks it and starts the next read from its
  // handler, `rounds` times over.
  std::vector<std::function<void(int)>> step(chains);
  for (int c = 0; c < chains; ++c) {
    step[c] = [&, c](int left) {
      std::byte* dst = bufs.data() + c * page;
      f.async_read_at(static_cast<std::uint64_t>(c) * page, asio::buffer(dst, page),
                      [&, c, left, dst](std::error_code ec, std::size_t n) {
                        all_right = all_right && !ec && n == page && dst[0] == static_cast<std::byte>(c + 1);
                        if (left > 0) {
                          step[c](left - 1);
                        } else {
                          ++finished;
                        }
                      });
    };
  }
  for (int c = 0; c < chains; ++c) step[c](rounds);
  ctx_.run();
  EXPECT_TRUE(all_right);
  EXPECT_EQ(finished, chains);
  // The first 8 were started outside any handler (one posted flush); each
  // wave after that was started by the 8 handlers of one wake-up.
  ASSERT_EQ(cycles_.size(), static_cast<std::size_t>(rounds + 1));
  for (std::size_t n : cycles_) EXPECT_EQ(n, static_cast<std::size_t>(chains));
}

TEST_F(asio_batching_test, AReadStartedAndCancelledInOneHandlerNeverReachesTheBackend) {
  async_file f(*driver_, fd_);
  aligned_buffer buf(2 * page, page);
  asio::cancellation_signal cancel;
  std::error_code second_ec;
  bool second_ran = false;
  f.async_read_at(0, asio::buffer(buf.data(), page), [&](std::error_code ec, std::size_t) {
    ASSERT_FALSE(ec);
    f.async_read_at(page, asio::buffer(buf.data() + page, page),
                    asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code e, std::size_t) {
                      second_ec = e;
                      second_ran = true;
                    }));
    cancel.emit(asio::cancellation_type::all);
  });
  ctx_.run();
  ASSERT_TRUE(second_ran);
  EXPECT_EQ(second_ec, std::errc::operation_canceled);
  // Only the first read was ever handed to the backend.
  ASSERT_EQ(cycles_.size(), 1u);
  EXPECT_EQ(cycles_[0], 1u);
  EXPECT_EQ(driver_->outstanding(), 0u);
}

}  // namespace
}  // namespace pageio::test
