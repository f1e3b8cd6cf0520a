// Byte counts on the command line: "4096", "4k", "4KiB", "1g", "1.5m".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pageio::bench {

// tools::parse_size (validators.hpp): binary suffixes (k = 1024, m, g, t),
// case-insensitive, with optional "b", "ib" or "iB". Throws usage_error
// naming `what` (the option) when `text` is not a size, or does not come to
// a whole number of bytes.
std::uint64_t parse_size(std::string_view text, std::string_view what);

// "4 KiB", "1 GiB", "1536 KiB", "512 B": exact, for messages and tables.
std::string format_size(std::uint64_t bytes);

}  // namespace pageio::bench
