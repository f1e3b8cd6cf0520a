#include "test_dir.hpp"

#include <pageio/engine/file.hpp>

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <system_error>
#include <utility>

namespace pageio::test {

std::filesystem::path choose_direct_io_root(const std::filesystem::path& preferred,
                                            const std::filesystem::path& fallback,
                                            std::string* why, std::string* log) {
  std::string reason;
  if (supports_direct_io(preferred, &reason)) return preferred;
  std::string fallback_reason;
  if (supports_direct_io(fallback, &fallback_reason)) {
    if (log) {
      *log = preferred.string() + " has no O_DIRECT (" + reason + "); test files go to " +
             fallback.string() + " instead";
    }
    return fallback;
  }
  if (why) {
    *why = "no directory here supports O_DIRECT: " + reason + "; " + fallback_reason +
           " (set PAGEIO_TEST_DIR to a directory on ext4, xfs or btrfs)";
  }
  return {};
}

std::filesystem::path direct_io_root(std::string* why) {
  static std::once_flag once;
  static std::filesystem::path root;
  static std::string reason;
  std::call_once(once, [] {
    std::filesystem::path preferred;
    if (const char* env = std::getenv("PAGEIO_TEST_DIR"); env != nullptr && *env != '\0') {
      preferred = env;
    } else {
      preferred = std::filesystem::temp_directory_path();
    }
    std::string log;
    root = choose_direct_io_root(preferred, std::filesystem::current_path(), &reason, &log);
    if (!log.empty()) std::cerr << "[pageio-test] " << log << '\n';
  });
  if (root.empty() && why) *why = reason;
  return root;
}

std::optional<test_dir> test_dir::create(std::string* skip_reason) {
  const std::filesystem::path root = direct_io_root(skip_reason);
  if (root.empty()) return std::nullopt;
  std::string templ = (root / "pageio-test-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    throw std::system_error(errno, std::system_category(), "mkdtemp " + templ);
  }
  return test_dir(std::filesystem::path(templ));
}

test_dir::test_dir(test_dir&& o) noexcept : path_(std::exchange(o.path_, {})) {}

test_dir& test_dir::operator=(test_dir&& o) noexcept {
  std::swap(path_, o.path_);
  return *this;
}

test_dir::~test_dir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) std::cerr << "[pageio-test] could not remove " << path_ << ": " << ec.message() << '\n';
}

}  // namespace pageio::test
