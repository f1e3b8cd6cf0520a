// The write-ahead log's on-disk format, in one place. docs/wal-format.md
// describes the same layout in prose with the recovery rules; the writer and
// the reader static_assert the sizes below.
//
// A log is a directory of segment files, wal-<seq>.log, <seq> the segment's
// sequence number in 16 hex digits. Every segment has the same size, a whole
// number of 4 KiB pages. A segment recycled after a checkpoint is renamed to a
// new sequence number; its old pages then name the old one and read as never
// written.
//
// Page (4096 bytes, little-endian):
//   0   u32  magic       "PWAL" (0x4c415750)
//   4   u32  crc         CRC32C of bytes [8, 4096)
//   8   u8   version     2
//   9   u8   flags       1: the last page of its segment (the log goes on in
//                        the next segment; the rest of this one is unused)
//                        2: written while the previous group commit was not
//                        yet durable
//   10  u16  used        bytes of the payload area holding fragments
//   12  u32  index       this page's position in its segment
//   16  u64  segment     the sequence number of the segment it was written for
//   24  u32  batch_first index of the first page written together with this one
//   28  u32  batch_pages pages written together (one group commit)
//   32  u64  writer      the log instance that wrote it (random, never 0): one
//                        per opening of the log, so pages of two write
//                        histories of the same place never read as one batch
//   40  u32  prev_pages  with flag 2: the pages of the group commit written
//                        just before this one (not yet durable then), which
//                        ends where this one starts or ends its segment
//   44  u32  reserved    0
//   48  ...  payload     fragments, packed; the rest of the page is zero
//
// Fragment (24-byte header, then `length` bytes of the record):
//   0   u8   type        1 full, 2 first, 3 middle, 4 last
//   1   u8   reserved    0
//   2   u16  length      bytes of the record in this fragment
//   4   u32  record_size the whole record's size
//   8   u64  lsn         the record's log sequence number
//   16  u32  record_crc  CRC32C of the whole record
//   20  u32  reserved    0
//
// Invariants the reader relies on: LSNs start at 1 and grow by one per
// record, never reaching 2^64-1; a record never spans two group commits, and
// a group commit never spans two segments, so every batch and every segment
// starts with a full or first fragment; a page is written once per segment
// generation and writer (the tail of a batch is padded, never rewritten by
// the next one); segments are made full-size and their numbers have no gaps.
#pragma once

#include <pageio/engine/units.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>

namespace pageio::wal::format {

using pageio::page_size;
inline constexpr std::uint32_t page_magic = 0x4c415750;  // "PWAL" in little-endian byte order
inline constexpr std::uint8_t version = 2;
inline constexpr std::uint8_t flag_segment_end = 1;
// The group commit before this page's was not yet durable when this one was
// written (the writer keeps at most two in flight): if that one is found torn,
// this one was never acknowledged either.
inline constexpr std::uint8_t flag_follows_unacked = 2;

struct page_header {
  std::uint32_t magic;
  std::uint32_t crc;
  std::uint8_t version;
  std::uint8_t flags;
  std::uint16_t used;
  std::uint32_t index;
  std::uint64_t segment;
  std::uint32_t batch_first;
  std::uint32_t batch_pages;
  std::uint64_t writer;
  std::uint32_t prev_pages;
  std::uint32_t reserved;
};

enum class fragment_type : std::uint8_t { full = 1, first = 2, middle = 3, last = 4 };

struct fragment_header {
  std::uint8_t type;
  std::uint8_t reserved0;
  std::uint16_t length;
  std::uint32_t record_size;
  std::uint64_t lsn;
  std::uint32_t record_crc;
  std::uint32_t reserved1;
};

inline constexpr std::size_t page_header_size = 48;
inline constexpr std::size_t fragment_header_size = 24;
inline constexpr std::size_t payload_size = page_size - page_header_size;  // 4048
inline constexpr std::size_t crc_offset = 4;
inline constexpr std::size_t crc_covers_from = 8;
// Largest record: its size fits the u32 field, and a record must fit in one
// group commit, which the writer bounds separately (wal::options).
inline constexpr std::uint64_t max_record_size = 0xFFFFFFFFu;
// The largest LSN a record may carry (the reader refuses 2^64-1: the one
// after it would wrap to 0, which means "none").
inline constexpr std::uint64_t max_lsn = 0xFFFFFFFFFFFFFFFEull;

// The structs are copied to and from pages with memcpy.
static_assert(std::endian::native == std::endian::little, "the format is little-endian");
static_assert(sizeof(page_header) == page_header_size, "page header layout");
static_assert(sizeof(fragment_header) == fragment_header_size, "fragment header layout");
static_assert(payload_size == 4048);

// wal-<16 hex digits>.log
inline constexpr const char* segment_prefix = "wal-";
inline constexpr const char* segment_suffix = ".log";

}  // namespace pageio::wal::format
