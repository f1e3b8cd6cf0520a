// io_uring through liburing.
#pragma once

#include <pageio/engine/backend.hpp>

namespace pageio::detail {

// Throws backend_unavailable when the ring cannot be set up (kernel without
// io_uring, disabled by kernel.io_uring_disabled or seccomp, out of memory).
std::unique_ptr<io_backend> make_uring_backend(const backend_options& opts);

}  // namespace pageio::detail
