// `pageio-bench io --api asio` and `--api asio-file`: the workload of
// run_workload() written as Asio C++20 coroutines, one per request kept in
// flight, on a single-threaded io_context.
#pragma once

#include "workload.hpp"

#include <pageio/engine/backend.hpp>
#include <pageio/engine/file.hpp>

#include <memory>

namespace pageio::bench {

// Over a pageio backend, through pageio::asio_driver and pageio::async_file.
run_result run_asio_workload(const workload_params& p, std::unique_ptr<io_backend> backend, const file& f);

// Over Boost.Asio's own random_access_file (io_uring inside Asio), the
// reference for the pageio one. Throws usage_error when this build's Asio has
// no file support.
run_result run_asio_file_workload(const workload_params& p, const file& f);

}  // namespace pageio::bench
