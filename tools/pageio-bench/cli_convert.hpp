// From the options as typed (cli_options.hpp) to each workload's checked
// parameters: sizes parsed, defaults of the data directory filled in, and
// the checks that need two options at once.
#pragma once

#include "cache_bench.hpp"
#include "cli_options.hpp"
#include "compare.hpp"
#include "fio_runner.hpp"
#include "wal_bench.hpp"
#include "workload.hpp"

namespace pageio::bench {

// Throw usage_error when a value makes no sense.
workload_params to_workload(const io_cli& o);
fio_params to_fio(const io_cli& o);
wal_params to_wal(const wal_cli& o);
compare_options to_compare(const compare_cli& o);
cache_params to_cache(const cache_cli& o);

}  // namespace pageio::bench
