// Errors of the log's file steps, converted once: a std::system_error from
// the file system keeps its code and gains what the log was doing.
#pragma once

#include <string>
#include <system_error>

namespace pageio::wal::detail {

// Call inside a catch block: rethrows the std::system_error in flight with
// "wal: <doing>: " before its message.
[[noreturn]] inline void rethrow_as(const std::string& doing) {
  try {
    throw;
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "wal: " + doing + ": " + e.what());
  }
}

}  // namespace pageio::wal::detail
