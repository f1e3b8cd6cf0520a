// Where benchmark data lives, and the file every run reads and writes.
#pragma once

#include <cstdint>
#include <filesystem>

namespace pageio::bench {

// $PAGEIO_DATA_DIR, else ./pageio-data.
std::filesystem::path default_data_dir();

// Creates `dir` if needed. Throws std::runtime_error when files there cannot
// be opened with O_DIRECT (tmpfs), saying so: numbers measured on a RAM file
// system would say nothing about a disk.
void check_data_dir(const std::filesystem::path& dir);

// Whether `path` must be (re)written before it holds `size_bytes` of data.
bool test_file_needs_writing(const std::filesystem::path& path, std::uint64_t size_bytes);

// Creates or extends `path` to `size_bytes` by writing it (pageio::ensure_file_written);
// an existing file that is large enough is reused as it is. Shows progress on
// stderr when stderr is a terminal.
void prepare_test_file(const std::filesystem::path& path, std::uint64_t size_bytes);

}  // namespace pageio::bench
