// CRC32C for the log: the engine's (pageio/engine/crc32c.hpp), which the
// page cache's page header uses too.
#pragma once

#include <pageio/engine/crc32c.hpp>

namespace pageio::wal {

using pageio::crc32c;
using pageio::crc32c_hardware;
using pageio::crc32c_hardware_available;
using pageio::crc32c_portable;

}  // namespace pageio::wal
