// pageio-wal replay: point-in-time restore of a pageio::kv store. The
// records after a backup's end, read from archives and live logs, are
// replayed into the backup (kv::store opened as a replica: each appended to
// its log under the same LSN and redone into its pages) up to a target LSN
// or commit time. Resumable and idempotent: the store's own log says how
// far it got, and a run starts there.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pageio::wal::tool {

inline constexpr int exit_unreachable = 3;

struct replay_options {
  std::string into;                  // the store (a backup) to replay into
  std::vector<std::string> sources;  // archives and live log directories, in order
  std::uint64_t to_lsn = 0;          // 0: none
  std::uint64_t to_time_us = 0;      // 0: none (microseconds since the epoch, UTC)
  bool inclusive = true;             // the target record itself is applied
  bool dry_run = false;
  bool json = false;
  std::uint64_t cache_mib = 512;  // the store's cache while replaying: the fewer pages read twice, the faster
  // A warm standby: after the end of the logs, keep reading them every
  // poll_ms and apply what they gain, serving read-only shells on the store
  // meanwhile (<into>/standby.sock), until SIGINT or SIGTERM; then the
  // store is checkpointed and closed, consistent and resumable. No target.
  bool follow = false;
  std::uint64_t poll_ms = 200;
};

// Exit codes: 0 target reached (or, without one, the end of the logs), 1
// damage in the logs before the target (where), 2 usage, 3 the target is
// not reachable (the logs end before it, or a segment is missing before
// it): the store is left consistent at the last record applied. Following,
// 0 once stopped by a signal, 1 on damage that stays on a second read (a
// live log may be read while it is written), never 3: a gap is waited out
// (a segment still being shipped).
int replay(const replay_options& o);

// "2026-12-01T17:42:03Z", with up to six decimals of seconds, as dump
// prints it: microseconds since the epoch. Throws std::invalid_argument.
std::uint64_t parse_utc_time(const std::string& text);

}  // namespace pageio::wal::tool
