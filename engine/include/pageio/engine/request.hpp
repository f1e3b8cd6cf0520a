// The unit of work every backend executes: a caller-owned I/O request.
#pragma once

#include <pageio/engine/error.hpp>

#include <sys/uio.h>

#include <boost/intrusive/list.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>

namespace pageio {

enum class op_code : std::uint8_t { read, write, readv, writev, fdatasync, fsync };

const char* to_string(op_code op) noexcept;

// Per-request flags. They combine with `|`; has(set, flag) tests one.
enum class io_flags : std::uint32_t {
  none = 0,
  // A write that is durable when it completes (RWF_DSYNC): write and flush in one request.
  dsync = 1u << 0,
  // `buf` lies in the buffer the caller registered as `buf_index` with
  // register_buffers(); backends that support it skip pinning pages per I/O.
  fixed_buffer = 1u << 1,
};

constexpr io_flags operator|(io_flags a, io_flags b) noexcept {
  return static_cast<io_flags>(static_cast<std::uint32_t>(a) | static_cast<std::uint32_t>(b));
}
constexpr io_flags operator&(io_flags a, io_flags b) noexcept {
  return static_cast<io_flags>(static_cast<std::uint32_t>(a) & static_cast<std::uint32_t>(b));
}
constexpr io_flags& operator|=(io_flags& a, io_flags b) noexcept { return a = a | b; }
constexpr bool has(io_flags set, io_flags flag) noexcept { return (set & flag) != io_flags::none; }

struct io_request;
// Runs exactly once per submission, on the thread that calls reap()/poll().
// The request is no longer owned by the backend when this runs: the callback
// may resubmit it or destroy it.
using completion_fn = void (*)(io_request&);

// A caller-owned I/O request.
//
// Lifetime rule: the request, its buffer and its iovec array must stay alive and
// unmodified from submit() until its completion callback has run. The backend
// links it into its own queues through a hook inside it, so submitting
// allocates nothing.
//
// Result semantics are those of pread/pwrite retried until done: `result` is the
// number of bytes transferred, or -errno. A count shorter than requested happens
// only at end of file (reads). Every backend gives the same result for the same
// request; the sync backend is the reference.
struct io_request {
  op_code op = op_code::read;
  io_flags flags = io_flags::none;
  int fd = -1;
  // read/write: the buffer and its length.
  void* buf = nullptr;
  std::size_t length = 0;
  // readv/writev: the vector (caller-owned, at most IOV_MAX entries).
  const iovec* iov = nullptr;
  std::uint32_t iov_count = 0;
  // Index of the registered buffer that `buf` lies in (with io_flags::fixed_buffer).
  std::uint32_t buf_index = 0;
  std::uint64_t offset = 0;

  // Output: bytes transferred or -errno; valid inside the completion callback.
  std::int64_t result = 0;

  completion_fn on_complete = nullptr;
  void* user_data = nullptr;

  // --- convenience -------------------------------------------------------
  bool failed() const noexcept { return result < 0; }
  std::error_code error() const noexcept { return result_code(result); }
  // Bytes this request asks to move (0 for flushes).
  std::size_t total_bytes() const noexcept;

  void prep_read(int file, void* buffer, std::size_t len, std::uint64_t off) noexcept {
    set_rw(op_code::read, file, buffer, len, off);
  }
  void prep_write(int file, const void* buffer, std::size_t len, std::uint64_t off) noexcept {
    set_rw(op_code::write, file, const_cast<void*>(buffer), len, off);
  }
  void prep_readv(int file, const iovec* vec, std::uint32_t count, std::uint64_t off) noexcept {
    set_v(op_code::readv, file, vec, count, off);
  }
  void prep_writev(int file, const iovec* vec, std::uint32_t count, std::uint64_t off) noexcept {
    set_v(op_code::writev, file, vec, count, off);
  }
  void prep_fdatasync(int file) noexcept { set_rw(op_code::fdatasync, file, nullptr, 0, 0); }
  void prep_fsync(int file) noexcept { set_rw(op_code::fsync, file, nullptr, 0, 0); }


 private:
  friend class io_backend;
  // Owned by the backend while submitted (io_backend's bookkeeping).
  enum class state : std::uint8_t { idle, queued, in_kernel, completing };
  boost::intrusive::list_member_hook<> hook_;
  struct backend_state {
    std::size_t progress = 0;  // bytes already transferred by earlier partial rounds
    std::uint32_t slot = 0;    // backend-specific slot while in the kernel
    state st = state::idle;
    bool cancel_requested = false;
  } internal_;

 public:
  // A list of requests, linked through the request itself: submitting one
  // allocates nothing.
  using list = boost::intrusive::list<
      io_request, boost::intrusive::member_hook<io_request, boost::intrusive::list_member_hook<>, &io_request::hook_>>;

 private:
  void set_rw(op_code o, int file, void* buffer, std::size_t len, std::uint64_t off) noexcept {
    op = o;
    fd = file;
    buf = buffer;
    length = len;
    iov = nullptr;
    iov_count = 0;
    offset = off;
    result = 0;
  }
  void set_v(op_code o, int file, const iovec* vec, std::uint32_t count, std::uint64_t off) noexcept {
    op = o;
    fd = file;
    buf = nullptr;
    length = 0;
    iov = vec;
    iov_count = count;
    offset = off;
    result = 0;
  }
};

using request_list = io_request::list;

// A human-readable account of a failed request: the operation, fd, offset,
// length, the error, and what the caller can do about it.
std::string describe_failure(const io_request& r);

}  // namespace pageio
