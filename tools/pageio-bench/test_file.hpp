// Where benchmark data lives, and the file every run reads and writes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace pageio::bench {

// $PAGEIO_DATA_DIR, else ./pageio-data.
std::filesystem::path default_data_dir();

// Throws usage_error when `dir` is on a RAM file system (tmpfs, ramfs), then
// ensure_data_dir(dir), then throws std::runtime_error when it cannot open
// files with O_DIRECT, saying so: numbers measured there would say nothing
// about a disk (the rules: tools/common/data_dir.hpp).
void check_data_dir(const std::filesystem::path& dir);
// `dir` exists, or is the default ./pageio-data, which it creates (one
// level); any other missing directory is a usage_error: nothing is made.
void ensure_data_dir(const std::filesystem::path& dir);

// Whether `path` must be (re)written before it holds `size_bytes` of data.
bool test_file_needs_writing(const std::filesystem::path& path, std::uint64_t size_bytes);

// Checks its directory with check_data_dir(), then creates or extends `path`
// to `size_bytes` by writing it (pageio::ensure_file_written);
// an existing file that is large enough is reused as it is. Shows progress on
// stderr when stderr is a terminal.
void prepare_test_file(const std::filesystem::path& path, std::uint64_t size_bytes);

// Reads the whole file once with O_DIRECT, in order, 1 MiB at a time, and
// returns the seconds it took. On a virtual disk the host caches the image:
// a file not read for a while read at ~7k random IOPS, and at ~69k right
// after one such pass (docs/profile.md), and a run that read it first would
// warm it for the next. After one pass every run finds it cached alike.
// Shows progress on stderr when stderr is a terminal.
double read_through(const std::filesystem::path& path);

// read_through(path) before a section's runs, printing on stdout how long it
// took ("<prefix><name> read through once ...") or why it failed; the runs
// go on either way. Returns the seconds, or NaN with the reason in *failure.
double read_through_before_runs(const std::filesystem::path& path, std::string_view prefix, std::string_view name,
                                std::string* failure);

}  // namespace pageio::bench
