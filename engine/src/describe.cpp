// Turning a failed request into a message an operator can act on.
#include <pageio/engine/request.hpp>

#include <cerrno>
#include <cstring>

namespace pageio {

const char* to_string(op_code op) noexcept {
  switch (op) {
    case op_code::read: return "read";
    case op_code::write: return "write";
    case op_code::readv: return "readv";
    case op_code::writev: return "writev";
    case op_code::fdatasync: return "fdatasync";
    case op_code::fsync: return "fsync";
  }
  return "unknown op";
}

namespace {

const char* hint(int err) {
  switch (err) {
    case EINVAL:
      return "under O_DIRECT the buffer address, offset and length must be multiples of the "
             "file's direct-I/O alignment (pageio::query_dio_alignment); also check the flags";
    case EBADF: return "the file descriptor is closed, or not open for this operation";
    case ENOSPC: return "the file system is full; free space and retry (nothing past the error was written)";
    case EDQUOT: return "the disk quota is exhausted";
    case EIO: return "the device reported an I/O error; the data in this range is suspect (see dmesg)";
    case EFAULT: return "the buffer address is not valid memory";
    case ECANCELED: return "the request was cancelled before it finished";
    case EAGAIN: return "the kernel is out of resources for now; retry later";
    case EOPNOTSUPP: return "the file system or backend does not support this operation";
    case EROFS: return "the file system is read-only";
    case EFBIG: return "the offset is beyond the largest file this file system allows";
    default: return nullptr;
  }
}

}  // namespace

std::string describe_failure(const io_request& r) {
  std::string s = to_string(r.op);
  if (r.op != op_code::fdatasync && r.op != op_code::fsync) {
    s += " of " + std::to_string(r.total_bytes()) + " bytes at offset " + std::to_string(r.offset);
  }
  s += " on fd " + std::to_string(r.fd);
  if (r.result >= 0) return s + " succeeded (" + std::to_string(r.result) + " bytes)";
  const int err = static_cast<int>(-r.result);
  s += " failed: ";
  s += std::strerror(err);
  if (const char* h = hint(err)) {
    s += " — ";
    s += h;
  }
  return s;
}

}  // namespace pageio
