// The store's page layout: what kv writes in the caller's part of a pool page
// (pagecache::format::usable_size bytes, after the pool's 32-byte header with
// the page LSN and checksum). docs/kv.md describes the same layout with the
// rules around it. Everything is little-endian.
//
// Every page (offsets within the usable bytes):
//   0   u8   type      0 never written, 1 meta, 2 leaf, 3 internal, 4 overflow, 5 free trunk
//   1   u8   level     0 for a leaf; an internal page's height above the leaves
//   2   u16  nslots    cells (leaf, internal) or page numbers (trunk)
//   4   u16  cell_top  lowest byte used by cells; cells grow down from the end
//   6   u16  frag      bytes inside [cell_top, end) that no cell uses any more
//   8   u32  right     leaf: right sibling; overflow: next page; trunk: next trunk; 0 none
//   12  u32  child0    internal: the child for keys below the first cell's key
//   16  u16  slots[nslots]  offsets of the cells, in key order
//
// Leaf cell:     u16 klen, u8 flags (1: value in overflow pages), u32 vlen
//                (the value's length), key, then the value (inline) or u32
//                first overflow page.
// Internal cell: u16 klen, u32 child (keys >= this key, below the next cell's), key.
// Overflow page: header, then at 16 u32 used bytes, at 20 the data.
// Free trunk:    header, then at 16 u32 page numbers (nslots of them).
// Meta (page 0): header, then at 16 the meta_fields below.
#pragma once

#include <pageio/pagecache/page_format.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

namespace pageio::kv::page {

inline constexpr std::size_t size = pagecache::format::usable_size;  // 4064
inline constexpr std::size_t header_size = 16;
inline constexpr std::size_t max_key = 1024;
// A leaf cell larger than this keeps its value in overflow pages; three
// such cells and their slots always fit in a page, so a split of a full
// page always leaves two non-empty halves.
inline constexpr std::size_t max_leaf_cell = 1200;
inline constexpr std::size_t leaf_cell_header = 7;
inline constexpr std::size_t internal_cell_header = 6;
inline constexpr std::size_t overflow_data_offset = 20;
inline constexpr std::size_t overflow_capacity = size - overflow_data_offset;
inline constexpr std::size_t trunk_capacity = (size - header_size) / 4;
static_assert(3 * (max_leaf_cell + 2) <= size - header_size, "three of the largest leaf cells fit a page");
static_assert(3 * (internal_cell_header + max_key + 2) <= size - header_size,
              "three of the largest internal cells fit a page");
static_assert(leaf_cell_header + max_key + 4 <= max_leaf_cell, "a largest key with an overflow reference fits");

enum class type : std::uint8_t { never_written = 0, meta = 1, leaf = 2, internal = 3, overflow = 4, trunk = 5 };

inline constexpr std::uint8_t cell_overflow = 1;

// Plain little-endian loads and stores (this code runs on little-endian
// machines only; see the static_assert in page.cpp).
inline std::uint16_t ld16(const std::byte* p) noexcept {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline std::uint32_t ld32(const std::byte* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline std::uint64_t ld64(const std::byte* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline void st16(std::byte* p, std::uint16_t v) noexcept { std::memcpy(p, &v, 2); }
inline void st32(std::byte* p, std::uint32_t v) noexcept { std::memcpy(p, &v, 4); }
inline void st64(std::byte* p, std::uint64_t v) noexcept { std::memcpy(p, &v, 8); }

// A view of one page's bytes (size of them), read and changed in place.
class view {
 public:
  explicit view(std::byte* p) noexcept : p_(p) {}
  std::byte* bytes() const noexcept { return p_; }

  page::type kind() const noexcept { return static_cast<page::type>(p_[0]); }
  std::uint8_t level() const noexcept { return static_cast<std::uint8_t>(p_[1]); }
  std::uint16_t nslots() const noexcept { return ld16(p_ + 2); }
  std::uint16_t cell_top() const noexcept { return ld16(p_ + 4); }
  std::uint16_t frag() const noexcept { return ld16(p_ + 6); }
  std::uint32_t right() const noexcept { return ld32(p_ + 8); }
  std::uint32_t child0() const noexcept { return ld32(p_ + 12); }
  void set_right(std::uint32_t v) noexcept { st32(p_ + 8, v); }
  void set_child0(std::uint32_t v) noexcept { st32(p_ + 12, v); }

  // Makes the page an empty leaf or internal page (level > 0).
  void init(page::type t, std::uint8_t level) noexcept;

  std::uint16_t slot(std::size_t i) const noexcept { return ld16(p_ + header_size + 2 * i); }
  std::string_view key(std::size_t i) const noexcept;
  // The cell's bytes.
  std::span<const std::byte> cell(std::size_t i) const noexcept;
  // Internal page: the child of cell i.
  std::uint32_t child(std::size_t i) const noexcept { return ld32(p_ + slot(i) + 2); }
  void set_child(std::size_t i, std::uint32_t c) noexcept { st32(p_ + slot(i) + 2, c); }

  // The first slot whose key is >= `k`, and whether it is equal.
  std::size_t lower_bound(std::string_view k, bool* equal) const noexcept;
  // Internal page: the child whose range holds `k`.
  std::uint32_t child_for(std::string_view k) const noexcept;

  // Bytes free for cells and slots, compaction included.
  std::size_t free_bytes() const noexcept;
  // Puts `cell` (a leaf or internal cell) in place of the cell with the same
  // key, or inserts it in order. False (page unchanged) when it does not fit.
  bool upsert(std::span<const std::byte> cell) noexcept;
  // Inserts `cell` at slot `at` (the caller keeps key order). False when it
  // does not fit.
  bool insert_at(std::size_t at, std::span<const std::byte> cell) noexcept;
  // Removes the cell at slot i.
  void erase(std::size_t i) noexcept;
  // Leaf or internal page: zeroes the free bytes between the slots and the
  // cells (which may hold old cells' bytes), so that its logged image can
  // leave them out (record::builder::image).
  void zero_gap() noexcept;
  // Removes the cell with key `k`; false if there is none.
  bool erase_key(std::string_view k) noexcept;
  // Keeps the first `keep` cells (at most nslots()), packed against the end
  // with the free middle zeroed: the left half of a split.
  void truncate(std::size_t keep) noexcept;

 private:
  void compact() noexcept;
  std::byte* p_;
};

// Cell builders. `out` must hold the cell (leaf_cell_size / internal_cell_size).
std::size_t leaf_cell_size(std::size_t klen, std::size_t vlen, bool overflow) noexcept;
void make_leaf_cell(std::byte* out, std::string_view key, std::span<const std::byte> value) noexcept;
void make_overflow_cell(std::byte* out, std::string_view key, std::uint64_t vlen, std::uint32_t first) noexcept;
inline std::size_t internal_cell_size(std::size_t klen) noexcept { return internal_cell_header + klen; }
void make_internal_cell(std::byte* out, std::string_view key, std::uint32_t child) noexcept;

// A leaf cell's parts.
struct leaf_value {
  bool overflow = false;
  std::uint64_t length = 0;
  std::span<const std::byte> inline_bytes;  // inline values
  std::uint32_t first_page = 0;             // overflow values
};
leaf_value parse_leaf_value(std::span<const std::byte> cell) noexcept;

// The meta page (page 0).
inline constexpr std::uint64_t meta_magic = 0x31564b4f49474150ull;  // "PAGIOKV1"
inline constexpr std::uint32_t meta_version = 1;
struct meta_fields {
  std::uint64_t magic = meta_magic;
  std::uint32_t version = meta_version;
  std::uint32_t root = 0;
  std::uint32_t page_count = 0;  // pages in use or free: the next new page is this one
  std::uint32_t free_head = 0;   // first free trunk, 0 none
  std::uint32_t free_pages = 0;  // pages on the free list, trunks included
  std::uint32_t height = 1;      // levels, leaves included
};
meta_fields read_meta(const std::byte* p) noexcept;
void write_meta(std::byte* p, const meta_fields& m) noexcept;

}  // namespace pageio::kv::page
