// The units every layer shares: the log's record numbers and the page.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pageio {

// A log sequence number: the write-ahead log numbers its records 1, 2, 3,
// ...; 0 means none. A page's LSN is that of the last record that changed it.
using lsn_t = std::uint64_t;

// The page: of the log's segments, of the buffer pool's frames and data
// files, and of the key-value store's tree.
inline constexpr std::size_t page_size = 4096;

}  // namespace pageio
