// pageio's errors: one error category with the failures that are pageio's
// own, and one way from an errno to a std::error_code.
//
//   try { db.put(k, v); }
//   catch (const pageio::error& e) {
//     if (e.code() == pageio::errc::corruption) ...   // where: e.what()
//     e.cause();                                     // the OS error under it, if any (EIO, ENOSPC)
//   }
//
// Errors that are the operating system's (a read that failed with EIO, a
// full disk, a missing directory) stay std::system_error in
// std::system_category() with their errno; an I/O request's result (bytes,
// or -errno) becomes one with result_code().
#pragma once

#include <cstdint>
#include <string>
#include <system_error>
#include <type_traits>

namespace pageio {

enum class errc {
  corruption = 1,  // data on disk fails its check: a page's checksum, a log record, a tree's order
  pool_exhausted,  // every frame of a buffer pool stayed pinned for its pin_wait (see pagecache::options)
  log_failed,      // the write-ahead log failed (a write or flush error): nothing more is acknowledged
  closed,          // the object was closed (or is closing) before the call
  locked,          // another process (or object) holds the store or file
};

// The category of errc: name() is "pageio".
const std::error_category& error_category() noexcept;
std::error_code make_error_code(errc e) noexcept;

// An errno value (positive) as an error code in std::system_category().
inline std::error_code errno_code(int err) noexcept { return {err, std::system_category()}; }
// An I/O request's result as an error code: empty for a byte count (>= 0),
// the errno for -errno.
inline std::error_code result_code(std::int64_t result) noexcept {
  return result < 0 ? errno_code(static_cast<int>(-result)) : std::error_code();
}

// A pageio failure: code() in error_category(), what() says where (file,
// page, offset, LSN) and what the user can do; cause() is the operating
// system's error under it, when there is one.
class error : public std::system_error {
 public:
  error(errc code, const std::string& what, std::error_code cause = {})
      : std::system_error(make_error_code(code), what), cause_(cause) {}
  std::error_code cause() const noexcept { return cause_; }

 private:
  std::error_code cause_;
};

}  // namespace pageio

template <>
struct std::is_error_code_enum<pageio::errc> : std::true_type {};
