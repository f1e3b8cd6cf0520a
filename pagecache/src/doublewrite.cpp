// The double-write area: its header, and the repair of torn pages when a
// data file is opened (doublewrite.hpp).

#include "doublewrite.hpp"

#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/crc32c.hpp>

#include <cstring>
#include <system_error>

namespace pageio::pagecache::doublewrite {

namespace {

std::uint32_t header_crc(const std::byte* h) noexcept { return crc32c(h + 8, page_size - 8); }

template <typename T>
T load(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename T>
void store(std::byte* p, T v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

void check(const io_request& r, std::size_t want, const std::string& what) {
  if (r.result < 0) throw std::system_error(r.error(), what);
  if (static_cast<std::size_t>(r.result) != want) {
    throw std::system_error(std::make_error_code(std::errc::io_error),
                            what + ": short transfer, " + std::to_string(r.result) + " of " + std::to_string(want) +
                                " bytes");
  }
}

}  // namespace

std::filesystem::path path_for(const std::filesystem::path& data_file) {
  std::filesystem::path p = data_file;
  p += ".dwb";
  return p;
}

void make_header(std::byte* header, std::uint64_t batch, std::span<const std::uint64_t> pages) noexcept {
  std::memset(header, 0, page_size);
  store<std::uint32_t>(header, magic);
  store<std::uint64_t>(header + 8, batch);
  store<std::uint32_t>(header + 16, static_cast<std::uint32_t>(pages.size()));
  for (std::size_t i = 0; i < pages.size(); ++i) store<std::uint64_t>(header + header_fixed + 8 * i, pages[i]);
  store<std::uint32_t>(header + 4, header_crc(header));
}

recovery recover(const pageio::file& data, const pageio::file& dw, file_system& fs, const run_fn& run) {
  recovery out;
  aligned_buffer header(page_size, page_size);
  aligned_buffer image(page_size, page_size), current(page_size, page_size);
  std::vector<io_request> reqs(1);
  for (std::size_t slot = 0; slot < max_slots; ++slot) {
    const std::uint64_t at = slot * slot_pages * page_size;
    // The first slot empty, short, cleared, or torn while being written:
    // its batch never reached the data file, and nothing is to be cleared.
    // A later one: the batch ended before it.
    const bool whole = fs.read(dw, header.data(), page_size, at) == page_size;
    const std::uint32_t count = load<std::uint32_t>(header.data() + 16);
    if (!whole || load<std::uint32_t>(header.data()) != magic ||
        load<std::uint32_t>(header.data() + 4) != header_crc(header.data()) || count > max_pages) {
      if (slot == 0) return out;
      break;
    }
    const std::uint64_t batch = load<std::uint64_t>(header.data() + 8);
    // Past the first slot, only the same batch's: a slot an earlier, longer
    // batch left there holds images older than what is in place.
    if (slot == 0) {
      out.batch = batch;
    } else if (batch != out.batch) {
      break;
    }
    for (std::uint32_t i = 0; i < count; ++i) {
      const std::uint64_t page = load<std::uint64_t>(header.data() + header_fixed + 8 * i);
      if (page > (std::uint64_t{1} << 51) - 1) continue;
      if (fs.read(dw, image.data(), page_size, at + (1 + std::uint64_t{i}) * page_size) < page_size) break;
      lsn_t lsn = 0;
      if (format::check_page(image.data(), page, &lsn) != format::page_state::valid) continue;
      ++out.images;
      const std::size_t got = fs.read(data, current.data(), page_size, page * page_size);
      if (got < page_size) std::memset(current.data() + got, 0, page_size - got);
      const format::page_state st = format::check_page(current.data(), page, &lsn);
      if (st == format::page_state::valid || st == format::page_state::empty) continue;  // its old or its new version
      reqs[0] = io_request{};
      reqs[0].prep_write(data.fd(), image.data(), page_size, page * page_size);
      run(reqs);
      check(reqs[0], page_size,
            "pagecache: repairing page " + std::to_string(page) + " of " + data.path().string() + " from " +
                dw.path().string());
      out.repaired.push_back(page);
    }
    if (count < max_pages) break;  // the batch's last slot
  }
  if (!out.repaired.empty()) {
    reqs[0] = io_request{};
    reqs[0].prep_fdatasync(data.fd());
    run(reqs);
    if (reqs[0].result < 0) {
      throw std::system_error(reqs[0].error(), "pagecache: fdatasync of " + data.path().string() +
                                                   " after repairing torn pages from " + dw.path().string());
    }
  }
  clear(dw, run);
  return out;
}

void clear(const pageio::file& dw, const run_fn& run) {
  // Every slot's header the file holds: batch numbers start again at each
  // opening, so a slot left from before could pass for the next batch's.
  aligned_buffer zero(page_size, page_size);
  const std::uint64_t size = dw.size();
  std::vector<io_request> reqs;
  for (std::size_t slot = 0; slot < max_slots; ++slot) {
    const std::uint64_t at = slot * slot_pages * page_size;
    if (slot > 0 && at + page_size > size) break;
    reqs.emplace_back();
    reqs.back().prep_write(dw.fd(), zero.data(), page_size, at);
  }
  run(reqs);
  for (const io_request& r : reqs) check(r, page_size, "pagecache: clearing the double-write area " + dw.path().string());
  reqs.assign(1, io_request{});
  reqs[0].prep_fdatasync(dw.fd());
  run(reqs);
  if (reqs[0].result < 0) {
    throw std::system_error(reqs[0].error(), "pagecache: fdatasync of the double-write area " + dw.path().string());
  }
}

}  // namespace pageio::pagecache::doublewrite
