// The buffer pool's benchmark file: pages in the pool's format
// (pageio/pagecache/page_format.hpp), so every read checks as it would in a
// store. The engine rows' test file holds raw bytes that no pool would accept.
#pragma once

#include <cstdint>
#include <filesystem>

namespace pageio::bench {

// `test_file` with ".pool" appended.
std::filesystem::path pool_file_for(const std::filesystem::path& test_file);

// Writes `path` as `size_bytes` of sealed pool pages (LSN 0, a pattern that
// names the page), unless it already holds them (its size, and its first and
// last pages check). Shows progress on stderr when stderr is a terminal.
void prepare_pool_file(const std::filesystem::path& path, std::uint64_t size_bytes);

}  // namespace pageio::bench
