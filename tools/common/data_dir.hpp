// Where the benchmarks put their files, and the two rules every tool that
// benchmarks keeps: only the default ./pageio-data is ever created (one
// level; a directory the user named must exist: no mkdir -p of a mistyped
// path), and a file system in RAM (tmpfs, ramfs) is refused, because its
// numbers would say nothing about a disk.
#pragma once

#include <filesystem>
#include <string_view>

namespace pageio::tools {

// $PAGEIO_DATA_DIR, else ./pageio-data.
std::filesystem::path default_data_dir();

// Makes sure `dir` is a directory: creates it only when it is the default
// ./pageio-data (and PAGEIO_DATA_DIR is unset) and `user_named` is false.
// Throws usage_error naming the directory and `options` (how the user
// points elsewhere, e.g. "--dir, --file or PAGEIO_DATA_DIR") otherwise.
void ensure_data_dir(const std::filesystem::path& dir, std::string_view options, bool user_named = false);

// Throws usage_error when `dir` is on a file system in RAM.
void refuse_memory_file_system(const std::filesystem::path& dir, std::string_view options);

}  // namespace pageio::tools
