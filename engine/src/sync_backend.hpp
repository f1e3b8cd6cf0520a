// The reference backend: each request runs as pread/pwrite/... at submission.
#pragma once

#include <pageio/engine/backend.hpp>

namespace pageio::detail {

std::unique_ptr<io_backend> make_sync_backend(const backend_options& opts);

}  // namespace pageio::detail
