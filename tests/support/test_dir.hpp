// Scratch directories for tests, on a file system that supports O_DIRECT.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace pageio::test {

// Where test directories go: $PAGEIO_TEST_DIR if set, else the system temporary
// directory, provided O_DIRECT works there; otherwise the current working
// directory (the build directory under ctest), with a line on stderr saying so.
// Empty when no candidate supports O_DIRECT; `why` then says why. Probed once
// per process.
std::filesystem::path direct_io_root(std::string* why = nullptr);

// The choice direct_io_root() makes, for an explicit list of candidates (first
// that supports O_DIRECT wins). `log` receives a line for every candidate passed over.
std::filesystem::path choose_direct_io_root(const std::filesystem::path& preferred,
                                            const std::filesystem::path& fallback,
                                            std::string* why, std::string* log);

// A fresh, uniquely named directory under direct_io_root(), removed with its
// contents on destruction. Move-only.
class test_dir {
 public:
  // Empty (and `skip_reason` set) when no file system here supports O_DIRECT.
  // Throws std::system_error if the directory cannot be created.
  static std::optional<test_dir> create(std::string* skip_reason);

  test_dir(test_dir&& o) noexcept;
  test_dir& operator=(test_dir&& o) noexcept;
  test_dir(const test_dir&) = delete;
  test_dir& operator=(const test_dir&) = delete;
  ~test_dir();

  const std::filesystem::path& path() const noexcept { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  explicit test_dir(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

}  // namespace pageio::test
