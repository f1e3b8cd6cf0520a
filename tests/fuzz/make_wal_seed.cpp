// Writes seed inputs for wal_reader_fuzz: real logs made by the writer, in
// the fuzz target's input layout.
//
//   make_wal_seed OUT_DIR
#include <pageio/wal/log.hpp>
#include <pageio/wal/reader.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  namespace fs = std::filesystem;
  const fs::path out = argv[1];
  fs::create_directories(out);
  int seed_no = 0;
  for (const std::size_t record : {std::size_t{10}, std::size_t{300}, std::size_t{5000}}) {
    const fs::path log_dir = out / "tmp-log";
    fs::remove_all(log_dir);
    {
      pageio::wal::options o;
      o.dir = log_dir;
      o.backend = "sync";
      o.segment_bytes = 4 * 4096;
      pageio::wal::log w(o);
      std::vector<std::byte> rec(record, std::byte{0x42});
      for (int i = 0; i < 6; ++i) w.commit(rec);
    }
    // Byte 0 = segment count - 1 (as the target reads it), byte 1 = first sequence number (1).
    std::vector<char> input = {static_cast<char>(2), static_cast<char>(1)};
    for (std::uint64_t seq = 1; seq <= 3; ++seq) {
      std::ifstream in(log_dir / pageio::wal::segment_file_name(seq), std::ios::binary);
      std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      bytes.resize(4 * 4096);  // equal chunks, as the target splits them
      input.insert(input.end(), bytes.begin(), bytes.end());
    }
    std::ofstream(out / ("seed-" + std::to_string(seed_no++)), std::ios::binary)
        .write(input.data(), static_cast<std::streamsize>(input.size()));
    fs::remove_all(log_dir);
  }
  return 0;
}
