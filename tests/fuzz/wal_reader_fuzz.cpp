// libFuzzer target: arbitrary bytes as a log directory's segment files, read
// by the recovery scan. It must never crash, hang or trip a sanitizer, and
// what it reports must be self-consistent.
//
// Input: byte 0 picks the number of segment files (1-3) and byte 1 the first
// sequence number; the rest is split evenly between the files.
#include <pageio/wal/reader.hpp>

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

const std::filesystem::path& work_dir() {
  static const std::filesystem::path dir = [] {
    char tmpl[] = "/tmp/pageio-wal-fuzz-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    if (d == nullptr) std::abort();
    return std::filesystem::path(d);
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pageio::wal;
  if (size < 2) return 0;
  const auto& dir = work_dir();
  for (const auto& e : std::filesystem::directory_iterator(dir)) std::filesystem::remove(e.path());
  const unsigned files = 1 + data[0] % 3;
  const std::uint64_t first = data[1] % 4;
  const std::size_t body = size - 2, chunk = body / files;
  for (unsigned i = 0; i < files; ++i) {
    const std::size_t off = 2 + i * chunk, len = i + 1 == files ? body - i * chunk : chunk;
    const auto path = dir / segment_file_name(first + i);
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (len > 0 && std::fwrite(data + off, 1, len, f) != len) std::abort();
    std::fclose(f);
  }
  lsn_t prev = 0;
  std::uint64_t seen = 0;
  const scan_result r = scan_log(dir, 0, [&](const record_view& v) {
    // Records come in order, each with its own LSN.
    if (prev != 0 && v.lsn != prev + 1) std::abort();
    prev = v.lsn;
    ++seen;
    volatile std::byte sink{};
    for (std::byte b : v.data) sink = b;
    return true;
  });
  if (seen != r.records) std::abort();
  if (r.records > 0 && r.last_lsn != prev) std::abort();
  return 0;
}
