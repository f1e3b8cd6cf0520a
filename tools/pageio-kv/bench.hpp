// `pageio-kv bench`: db_bench's workloads, flag names and output, so that a
// RocksDB user reads the figures at a glance and `pageio-bench compare` can
// run both with the same flags.
//
//   pageio-kv bench --benchmarks=fillseq,readrandom --num=1000000 --threads=4 --cache_size=16777216
//
// Workloads (as in db_bench; each thread does --num operations, or --writes
// / --reads when given, or runs for --duration seconds):
//   fillseq        puts of keys 0..num-1 in order (a fresh store)
//   fillrandom     puts of random keys in [0, num) (a fresh store)
//   overwrite      puts of random keys in [0, num) into the existing store
//   readrandom     gets of random keys in [0, num); "(found of asked found)"
//   readseq        a scan of the whole store; operations = pairs read
//   seekrandom     a scan from a random key, one pair
//   readwhilewriting  --threads readers doing readrandom, one writer doing
//                  overwrite until they finish; the readers' figures
//   deleterandom   deletes of random keys in [0, num)
//
// Keys are --key_size bytes (the number, 8 bytes big-endian, then '0'
// padding, as db_bench makes them); values --value_size random bytes.
// Output per benchmark, db_bench's line:
//   fillrandom   :      12.345 micros/op 81004 ops/sec 1.234 seconds 100000 operations;    9.0 MB/s
// then "Percentiles: P50: .. P75: .. P99: .. P99.9: .. P99.99: .." (µs);
// --json prints one JSON object instead.
#pragma once

#include <cstdint>
#include <string>

namespace pageio::kv::tool {

struct bench_flags {
  std::string benchmarks = "fillrandom,readrandom";
  std::int64_t num = 1'000'000;
  std::int64_t reads = -1, writes = -1;  // -1: --num
  unsigned threads = 1;
  double duration = 0;                   // seconds; 0: no limit
  unsigned key_size = 16, value_size = 100;
  std::string sync = "0";                // db_bench spells booleans 0/1 or false/true
  std::int64_t cache_size = 8 << 20;     // db_bench's default block cache
  std::int64_t write_buffer_size = -1;   // kv::options::write_buffer_bytes; -1: the store's default
  std::string use_existing_db = "0";
  std::string db;                        // empty: <data dir>/kv-bench
  std::uint64_t seed = 0;                // 0: from the clock
  std::string backend = "default";       // the store's I/O backend (kv::options::backend)
  bool json = false;
};

// Runs the benchmarks; returns the exit status (usage errors throw
// std::invalid_argument).
int run_bench(const bench_flags& f);

}  // namespace pageio::kv::tool
