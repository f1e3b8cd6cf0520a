// A data page on disk, as the buffer pool writes and checks it. The pool owns
// the first 32 bytes of every page (the header below); the caller owns the
// rest, `usable_size` bytes, which page_ref::data() points to. docs/pagecache.md
// describes the same layout with the rules around it.
//
// Page (4096 bytes, little-endian):
//   0   u32  magic     "PPG1" (0x31475050)
//   4   u32  crc       CRC32C of bytes [8, 4096)
//   8   u64  lsn       the last log record the page reflects (0: none); redo
//                      skips a record whose LSN is not above it
//   16  u64  page      the page number it was written for: a page written to
//                      the wrong place, or copied from elsewhere, shows
//   24  u16  version   1
//   26  u16  flags     0
//   28  u32  reserved  0
//   32  ...  the caller's bytes (usable_size)
//
// A page whose 4096 bytes are all zero was never written (or lies past the
// end of its file): it reads as a new page, all zeros, LSN 0. Anything else
// that does not check is corruption: a torn write (this disk writes 512-byte
// sectors atomically, not pages), damage on the device, or a misplaced write.
#pragma once

#include <pageio/engine/units.hpp>

#include <cstddef>
#include <cstdint>

namespace pageio::pagecache {

using pageio::lsn_t;
using pageio::page_size;

namespace format {

inline constexpr std::uint32_t page_magic = 0x31475050;  // "PPG1" in little-endian byte order
inline constexpr std::uint16_t version = 1;

struct page_header {
  std::uint32_t magic;
  std::uint32_t crc;
  std::uint64_t lsn;
  std::uint64_t page;
  std::uint16_t version;
  std::uint16_t flags;
  std::uint32_t reserved;
};
static_assert(sizeof(page_header) == 32, "the page header is 32 bytes on disk");
static_assert(offsetof(page_header, crc) == 4 && offsetof(page_header, lsn) == 8 &&
                  offsetof(page_header, page) == 16 && offsetof(page_header, version) == 24,
              "the page header's layout is the on-disk format");

inline constexpr std::size_t header_size = sizeof(page_header);
// The bytes of a page the caller may use.
inline constexpr std::size_t usable_size = page_size - header_size;

// Fills in the header of the page_size bytes at `page` (the caller's bytes
// are left as they are) and its checksum, last.
void seal_page(std::byte* page, std::uint64_t page_number, lsn_t lsn) noexcept;

enum class page_state {
  valid,        // the header checks; *lsn is the page's LSN
  empty,        // all zeros: never written
  bad_checksum, // torn or damaged
  bad_magic,    // not a page of this format, and not all zeros
  bad_version,  // a format version this build does not read
  wrong_page,   // a valid page, but written for another page number
};

// Checks the page_size bytes at `page`, read from page `page_number`. Sets
// *lsn for a valid page (0 for an empty one) and *found_page for a valid or
// wrong_page one.
page_state check_page(const std::byte* page, std::uint64_t page_number, lsn_t* lsn,
                      std::uint64_t* found_page = nullptr) noexcept;

// "failed its checksum", "is not a pageio data page", ... (for messages).
const char* describe(page_state s) noexcept;

}  // namespace format
}  // namespace pageio::pagecache
