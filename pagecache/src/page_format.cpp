// The data page header: sealing a page before it is written, checking it
// after it is read (pageio/pagecache/page_format.hpp).

#include <pageio/engine/crc32c.hpp>
#include <pageio/pagecache/page_format.hpp>

#include <algorithm>
#include <bit>
#include <cstring>

namespace pageio::pagecache::format {

static_assert(std::endian::native == std::endian::little, "the page header is written in the CPU's byte order");

namespace {

constexpr std::size_t crc_from = offsetof(page_header, lsn);

std::uint32_t page_crc(const std::byte* page) noexcept { return crc32c(page + crc_from, page_size - crc_from); }

bool all_zero(const std::byte* p, std::size_t n) noexcept {
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i < n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    acc |= w;
  }
  return acc == 0;
}

}  // namespace

void seal_page(std::byte* page, std::uint64_t page_number, lsn_t lsn) noexcept {
  page_header h{};
  h.magic = page_magic;
  h.lsn = lsn;
  h.page = page_number;
  h.version = version;
  std::memcpy(page, &h, sizeof h);
  const std::uint32_t crc = page_crc(page);
  std::memcpy(page + offsetof(page_header, crc), &crc, sizeof crc);
}

page_state check_page(const std::byte* page, std::uint64_t page_number, lsn_t* lsn,
                      std::uint64_t* found_page) noexcept {
  page_header h;
  std::memcpy(&h, page, sizeof h);
  *lsn = 0;
  if (h.magic != page_magic) return all_zero(page, page_size) ? page_state::empty : page_state::bad_magic;
  if (h.crc != page_crc(page)) return page_state::bad_checksum;
  if (h.version != version) return page_state::bad_version;
  if (found_page != nullptr) *found_page = h.page;
  if (h.page != page_number) return page_state::wrong_page;
  *lsn = h.lsn;
  return page_state::valid;
}

const char* describe(page_state s) noexcept {
  switch (s) {
    case page_state::valid:
      return "is valid";
    case page_state::empty:
      return "was never written";
    case page_state::bad_checksum:
      return "failed its checksum (a torn write or damage on the device)";
    case page_state::bad_magic:
      return "is not a pageio data page (no page header, and not all zeros)";
    case page_state::bad_version:
      return "has a page format version this build does not read";
    case page_state::wrong_page:
      return "holds another page (a misdirected write, or a page copied from elsewhere)";
  }
  return "is in an unknown state";
}

}  // namespace pageio::pagecache::format
