#include "stats_json.hpp"

namespace pageio::kv::tool {

nlohmann::json stats_json(const statistics& s) {
  return {
      {"puts", s.puts},
      {"deletes", s.deletes},
      {"batches", s.batches},
      {"gets", s.gets},
      {"scans", s.scans},
      {"pages", s.pages},
      {"free_pages", s.free_pages},
      {"height", s.height},
      {"checkpoints", s.checkpoints},
      {"last_lsn", s.last_lsn},
      {"durable_lsn", s.durable_lsn},
      {"checkpoint_lsn", s.checkpoint_lsn},
      {"recovered_records", s.recovered_records},
      {"cache_hits", s.cache_hits},
      {"cache_misses", s.cache_misses},
      {"log_commits", s.log_commits},
      {"log_records", s.log_records},
      {"log_pages", s.log_pages},
      {"pages_written", s.pages_written},
      {"data_syncs", s.data_syncs},
      {"buffered_pairs", s.buffered_pairs},
      {"buffered_bytes", s.buffered_bytes},
      {"buffered_puts", s.buffered_puts},
      {"merged_pairs", s.merged_pairs},
      {"wal_archive", s.wal_archive},
      {"archived_segments", s.archived_segments},
      {"archived_lsn", s.archived_lsn},
      {"archive_failures", s.archive_failures},
      {"archive_error", s.archive_error},
  };
}

}  // namespace pageio::kv::tool
