#include "backend_fixture.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace pageio::test {

void fill_pattern(void* p, std::size_t n, std::uint64_t pos, std::uint32_t tag) noexcept {
  auto* b = static_cast<std::uint8_t*>(p);
  for (std::size_t i = 0; i < n; ++i) b[i] = pattern_byte(pos + i, tag);
}

::testing::AssertionResult has_pattern(const void* p, std::size_t n, std::uint64_t pos,
                                       std::uint32_t tag) {
  const auto* b = static_cast<const std::uint8_t*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    if (b[i] != pattern_byte(pos + i, tag)) {
      return ::testing::AssertionFailure()
             << "byte " << i << " (file offset " << pos + i << ") is " << int(b[i])
             << ", pattern " << tag << " has " << int(pattern_byte(pos + i, tag));
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult all_bytes_are(const void* p, std::size_t n, std::uint8_t value) {
  const auto* b = static_cast<const std::uint8_t*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    if (b[i] != value) {
      return ::testing::AssertionFailure()
             << "byte " << i << " is " << int(b[i]) << ", expected " << int(value);
    }
  }
  return ::testing::AssertionSuccess();
}

void count_completion(io_request& r) noexcept {
  auto* c = static_cast<completion_counter*>(r.user_data);
  ++c->count;
  c->result = r.result;
}

std::int64_t run_one(io_backend& be, io_request& r) {
  completion_counter c;
  r.user_data = &c;
  r.on_complete = count_completion;
  be.submit(r);
  be.drain();
  EXPECT_EQ(c.count, 1) << "completion of " << to_string(r.op) << " ran " << c.count << " times";
  EXPECT_EQ(be.outstanding(), 0u);
  return r.result;
}

void backend_test::SetUp() {
  try {
    backend_ = make_backend(GetParam());
  } catch (const backend_unavailable& e) {
    GTEST_SKIP() << "backend " << GetParam() << " cannot start here: " << e.what();
  }
  std::string why;
  dir_ = test_dir::create(&why);
  if (!dir_) GTEST_SKIP() << why;
}

void backend_test::remake(const backend_options& opts) {
  backend_.reset();
  backend_ = make_backend(GetParam(), opts);
  ASSERT_EQ(backend_->caps().queue_depth, opts.queue_depth);
}

file backend_test::make_file(const std::string& name, std::size_t size_bytes, std::uint32_t tag,
                             bool direct) {
  const auto path = dir() / name;
  {
    // Written through the page cache so that the content is independent of
    // the backend under test; fsync'd so that O_DIRECT readers see it on disk.
    const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) throw std::system_error(errno, std::system_category(), "create " + path.string());
    std::string data(size_bytes, '\0');
    fill_pattern(data.data(), data.size(), 0, tag);
    std::size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(done));
      if (n < 0) {
        const int err = errno;
        ::close(fd);
        throw std::system_error(err, std::system_category(), "write " + path.string());
      }
      done += static_cast<std::size_t>(n);
    }
    ::fsync(fd);
    ::close(fd);
  }
  open_options o;
  o.direct = direct;
  return file::open(path, o);
}

std::string backend_param_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

}  // namespace pageio::test
