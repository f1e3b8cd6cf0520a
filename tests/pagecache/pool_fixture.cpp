#include "pool_fixture.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <atomic>
#include <optional>
#include <system_error>
#include <thread>

namespace pageio::pagecache::test {

namespace {

std::uint64_t body_seed(std::uint32_t file_tag, std::uint64_t page, std::uint64_t version) {
  std::uint64_t x = (page + 1) * 0x9E3779B97F4A7C15ULL ^ (version + 7) * 0xC2B2AE3D27D4EB4FULL ^
                    (std::uint64_t{file_tag} + 3) * 0x165667B19E3779F9ULL;
  x ^= x >> 31;
  return x | 1;
}

void fill_body(std::byte* p, std::uint32_t file_tag, std::uint64_t page, std::uint64_t version) {
  std::uint64_t x = body_seed(file_tag, page, version);
  for (std::size_t i = sizeof(page_stamp); i + 8 <= usable_size; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(p + i, &x, 8);
  }
}

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::system_category(), what);
}

}  // namespace

void stamp_page(std::byte* p, std::uint32_t file_tag, std::uint64_t page, std::uint64_t version, lsn_t lsn) {
  page_stamp s;
  s.magic = stamp_magic;
  s.page = page;
  s.version = version;
  s.lsn = lsn;
  std::memcpy(p, &s, sizeof s);
  fill_body(p, file_tag, page, version);
}

page_stamp read_stamp(const std::byte* p) {
  page_stamp s;
  std::memcpy(&s, p, sizeof s);
  return s;
}

::testing::AssertionResult page_holds(const std::byte* p, std::uint32_t file_tag, std::uint64_t page,
                                      std::uint64_t version) {
  const page_stamp s = read_stamp(p);
  if (s.magic != stamp_magic || s.page != page || s.version != version) {
    return ::testing::AssertionFailure() << "expected page " << page << " version " << version << " (file tag "
                                         << file_tag << "), found magic " << std::hex << s.magic << std::dec
                                         << " page " << s.page << " version " << s.version;
  }
  alignas(8) std::byte want[usable_size];
  fill_body(want, file_tag, page, version);
  for (std::size_t i = sizeof(page_stamp); i < usable_size; ++i) {
    if (p[i] != want[i]) {
      return ::testing::AssertionFailure() << "page " << page << " version " << version
                                           << " has the right header but differs at byte " << i << " (torn?)";
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult all_zero(const std::byte* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] != std::byte{0}) {
      return ::testing::AssertionFailure() << "byte " << i << " is " << static_cast<int>(p[i]) << ", not zero";
    }
  }
  return ::testing::AssertionSuccess();
}

void write_file(const std::filesystem::path& path, std::uint32_t file_tag, std::uint64_t pages,
                std::uint64_t version) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno("open " + path.string());
  std::vector<std::byte> buf(page_size);
  for (std::uint64_t p = 0; p < pages; ++p) {
    stamp_page(buf.data() + format::header_size, file_tag, p, version);
    format::seal_page(buf.data(), p, 0);
    if (::pwrite(fd, buf.data(), page_size, static_cast<off_t>(p * page_size)) != static_cast<ssize_t>(page_size)) {
      const int e = errno;
      ::close(fd);
      errno = e;
      throw_errno("pwrite " + path.string());
    }
  }
  if (::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    throw_errno("fsync " + path.string());
  }
  ::close(fd);
}

const std::byte* on_disk(const std::vector<std::byte>& file, std::uint64_t page) {
  return file.data() + page * page_size + format::header_size;
}

std::vector<std::byte> read_whole_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("open " + path.string());
  std::vector<std::byte> out;
  std::byte chunk[1 << 16];
  for (;;) {
    const ssize_t n = ::pread(fd, chunk, sizeof chunk, static_cast<off_t>(out.size()));
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      errno = e;
      throw_errno("pread " + path.string());
    }
    if (n == 0) break;
    out.insert(out.end(), chunk, chunk + n);
  }
  ::close(fd);
  return out;
}

std::unique_ptr<io_backend> fault_switch::wrap(std::unique_ptr<io_backend> inner) {
  std::lock_guard lock(mu_);
  auto f = std::make_unique<fault_backend>(std::move(inner), opts_);
  live_.push_back(f.get());
  return f;
}

void fault_switch::set(const fault_options& o) {
  std::lock_guard lock(mu_);
  opts_ = o;
  for (fault_backend* f : live_) f->set_options(o);
}

fault_backend::counters fault_switch::injected() const {
  std::lock_guard lock(mu_);
  fault_backend::counters sum;
  for (const fault_backend* f : live_) {
    const auto c = f->injected();
    sum.read_errors += c.read_errors;
    sum.write_errors += c.write_errors;
    sum.flush_errors += c.flush_errors;
    sum.eagain += c.eagain;
    sum.delayed += c.delayed;
  }
  return sum;
}

void pool_test::SetUp() {
  std::string why;
  dir_ = test_dir::create(&why);
  if (!dir_) GTEST_SKIP() << why;
  try {
    make_backend(backend_name());
  } catch (const backend_unavailable& e) {
    GTEST_SKIP() << backend_name() << " cannot start here: " << e.what();
  }
}

std::unique_ptr<io_backend> pool_test::make_plain_backend() const {
  backend_options bo;
  bo.queue_depth = 64;
  return make_backend(backend_name(), bo);
}

options pool_test::probed_options() {
  options o;
  o.backend = backend_name();
  o.make_backend = [name = backend_name(), probe = probe_, faults = faults_]() -> std::unique_ptr<io_backend> {
    backend_options bo;
    bo.queue_depth = 64;
    return std::make_unique<probe_backend>(faults->wrap(make_backend(name, bo)), probe);
  };
  return o;
}

std::string backend_param_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

bool returns_within(std::function<void()> fn, std::chrono::milliseconds limit) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> f = done->get_future();
  std::thread t([fn = std::move(fn), done]() mutable {
    try {
      fn();
      done->set_value();
    } catch (...) {
      done->set_exception(std::current_exception());
    }
  });
  if (f.wait_for(limit) != std::future_status::ready) {
    t.detach();
    return false;
  }
  t.join();
  f.get();
  return true;
}

std::size_t run_threads(int n, const std::function<void(int)>& fn, const std::function<bool()>& failed,
                        std::chrono::milliseconds limit) {
  std::vector<std::shared_ptr<std::atomic<bool>>> done;
  std::vector<std::thread> ts;
  for (int t = 0; t < n; ++t) {
    done.push_back(std::make_shared<std::atomic<bool>>(false));
    ts.emplace_back([fn, d = done.back(), t] {
      fn(t);
      d->store(true);
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::optional<std::chrono::steady_clock::time_point> failed_at;
  auto all_done = [&] {
    for (const auto& d : done) {
      if (!d->load()) return false;
    }
    return true;
  };
  while (!all_done()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    if (!failed_at && failed()) failed_at = now;
    if (failed_at && now - *failed_at > std::chrono::seconds(5)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::size_t stuck = 0;
  for (int t = 0; t < n; ++t) {
    if (done[t]->load()) {
      ts[t].join();
    } else {
      ts[t].detach();
      ++stuck;
    }
  }
  return stuck;
}

void keep_forever(std::shared_ptr<void> p) {
  static std::mutex mu;
  static auto* kept = new std::vector<std::shared_ptr<void>>();  // never destroyed: a stuck thread may use it
  std::lock_guard lock(mu);
  kept->push_back(std::move(p));
}

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline) return cond();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace pageio::pagecache::test
