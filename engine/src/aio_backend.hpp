// Linux native AIO through libaio.
#pragma once

#include <pageio/engine/backend.hpp>

namespace pageio::detail {

// Throws backend_unavailable when io_setup fails (no AIO in this kernel, or the
// system-wide limit fs.aio-max-nr is exhausted: the message names it).
std::unique_ptr<io_backend> make_aio_backend(const backend_options& opts);

}  // namespace pageio::detail
