// Sums the crash model's reports over a crash test's points.
#pragma once

#include <pageio/engine/crash_backend.hpp>

namespace pageio::test {

inline void add_report(crash_report& total, const crash_report& r) {
  total.dropped += r.dropped;
  total.applied += r.applied;
  total.torn += r.torn;
  total.files += r.files;
  total.names_undone += r.names_undone;
  total.names_kept += r.names_kept;
  total.sizes_reverted += r.sizes_reverted;
  total.sizes_kept += r.sizes_kept;
}

}  // namespace pageio::test
