// A small data file for the micro-benchmarks, on a real disk, removed at exit.
#pragma once

#include <cstdint>
#include <filesystem>

namespace pageio::micro {

// A fresh directory holding one fully written file of `size_bytes`. The
// directory is under $TMPDIR or /tmp when that is a disk file system with
// O_DIRECT, else under the current directory (tmpfs would measure RAM, not the
// device). Removes itself on destruction.
class scratch_file {
 public:
  explicit scratch_file(std::uint64_t size_bytes);
  ~scratch_file();
  scratch_file(const scratch_file&) = delete;
  scratch_file& operator=(const scratch_file&) = delete;

  const std::filesystem::path& path() const noexcept { return file_; }
  std::uint64_t size_bytes() const noexcept { return size_; }

 private:
  std::filesystem::path dir_;
  std::filesystem::path file_;
  std::uint64_t size_;
};

}  // namespace pageio::micro
