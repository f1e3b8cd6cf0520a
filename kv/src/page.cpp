#include "page.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>

namespace pageio::kv::page {

static_assert(std::endian::native == std::endian::little, "the page format is little-endian, as is this code");

namespace {

std::size_t cell_size_at(const std::byte* p, std::uint16_t off, type t) noexcept {
  const std::uint16_t klen = ld16(p + off);
  if (t == type::internal) return internal_cell_header + klen;
  const bool ovf = (static_cast<std::uint8_t>(p[off + 2]) & cell_overflow) != 0;
  return leaf_cell_header + klen + (ovf ? 4 : ld32(p + off + 3));
}

int compare_keys(std::string_view a, std::string_view b) noexcept { return a.compare(b); }

}  // namespace

void view::init(page::type t, std::uint8_t lvl) noexcept {
  std::memset(p_, 0, size);
  p_[0] = static_cast<std::byte>(t);
  p_[1] = static_cast<std::byte>(lvl);
  st16(p_ + 4, static_cast<std::uint16_t>(size));
}

std::string_view view::key(std::size_t i) const noexcept {
  const std::uint16_t off = slot(i);
  const std::uint16_t klen = ld16(p_ + off);
  const std::size_t hdr = kind() == type::internal ? internal_cell_header : leaf_cell_header;
  return {reinterpret_cast<const char*>(p_ + off + hdr), klen};
}

std::span<const std::byte> view::cell(std::size_t i) const noexcept {
  const std::uint16_t off = slot(i);
  return {p_ + off, cell_size_at(p_, off, kind())};
}

std::size_t view::lower_bound(std::string_view k, bool* equal) const noexcept {
  std::size_t lo = 0, hi = nslots();
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    if (compare_keys(key(mid), k) < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (equal) *equal = lo < nslots() && key(lo) == k;
  return lo;
}

std::uint32_t view::child_for(std::string_view k) const noexcept {
  bool eq = false;
  const std::size_t i = lower_bound(k, &eq);
  // Cell i's key is the first >= k: equal keys belong to cell i's child,
  // smaller ones to the cell before (or child0).
  if (eq) return child(i);
  return i == 0 ? child0() : child(i - 1);
}

std::size_t view::free_bytes() const noexcept {
  const std::size_t slots_end = header_size + 2 * static_cast<std::size_t>(nslots());
  return cell_top() - slots_end + frag();
}

void view::compact() noexcept {
  // Rewrites the cells packed against the end, in slot order.
  std::array<std::byte, size> copy;
  std::memcpy(copy.data(), p_, size);
  std::size_t top = size;
  const std::size_t n = nslots();
  const type t = kind();
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint16_t off = ld16(copy.data() + header_size + 2 * i);
    const std::size_t len = cell_size_at(copy.data(), off, t);
    top -= len;
    std::memcpy(p_ + top, copy.data() + off, len);
    st16(p_ + header_size + 2 * i, static_cast<std::uint16_t>(top));
  }
  st16(p_ + 4, static_cast<std::uint16_t>(top));
  st16(p_ + 6, 0);
}

bool view::insert_at(std::size_t at, std::span<const std::byte> c) noexcept {
  const std::size_t n = nslots();
  if (free_bytes() < c.size() + 2) return false;
  const std::size_t slots_end = header_size + 2 * n;
  if (cell_top() - slots_end < c.size() + 2) compact();
  const std::size_t top = cell_top() - c.size();
  std::memcpy(p_ + top, c.data(), c.size());
  std::byte* slots = p_ + header_size;
  std::memmove(slots + 2 * (at + 1), slots + 2 * at, 2 * (n - at));
  st16(slots + 2 * at, static_cast<std::uint16_t>(top));
  st16(p_ + 2, static_cast<std::uint16_t>(n + 1));
  st16(p_ + 4, static_cast<std::uint16_t>(top));
  return true;
}

void view::truncate(std::size_t keep) noexcept {
  assert(keep <= nslots());
  st16(p_ + 2, static_cast<std::uint16_t>(keep));
  compact();
  zero_gap();
}

void view::zero_gap() noexcept {
  const std::size_t from = header_size + 2 * std::size_t{nslots()};
  if (from < cell_top()) std::memset(p_ + from, 0, cell_top() - from);
}

void view::erase(std::size_t i) noexcept {
  const std::size_t n = nslots();
  assert(i < n);
  const std::uint16_t off = slot(i);
  const std::size_t len = cell_size_at(p_, off, kind());
  if (off == cell_top()) {
    st16(p_ + 4, static_cast<std::uint16_t>(off + len));
  } else {
    st16(p_ + 6, static_cast<std::uint16_t>(frag() + len));
  }
  std::byte* slots = p_ + header_size;
  std::memmove(slots + 2 * i, slots + 2 * (i + 1), 2 * (n - i - 1));
  st16(p_ + 2, static_cast<std::uint16_t>(n - 1));
  if (n == 1) {
    st16(p_ + 4, static_cast<std::uint16_t>(size));
    st16(p_ + 6, 0);
  }
}

bool view::upsert(std::span<const std::byte> c) noexcept {
  const std::uint16_t klen = ld16(c.data());
  const std::size_t hdr = kind() == type::internal ? internal_cell_header : leaf_cell_header;
  const std::string_view k(reinterpret_cast<const char*>(c.data() + hdr), klen);
  bool eq = false;
  const std::size_t at = lower_bound(k, &eq);
  if (eq) {
    const std::size_t old = cell(at).size();
    // Replacing frees the old cell first; check the room before touching it.
    if (free_bytes() + old + 2 < c.size() + 2) return false;
    erase(at);
  }
  const bool ok = insert_at(at, c);
  assert(ok);
  return ok;
}

bool view::erase_key(std::string_view k) noexcept {
  bool eq = false;
  const std::size_t at = lower_bound(k, &eq);
  if (!eq) return false;
  erase(at);
  return true;
}

std::size_t leaf_cell_size(std::size_t klen, std::size_t vlen, bool overflow) noexcept {
  return leaf_cell_header + klen + (overflow ? 4 : vlen);
}

void make_leaf_cell(std::byte* out, std::string_view key, std::span<const std::byte> value) noexcept {
  st16(out, static_cast<std::uint16_t>(key.size()));
  out[2] = std::byte{0};
  st32(out + 3, static_cast<std::uint32_t>(value.size()));
  std::memcpy(out + leaf_cell_header, key.data(), key.size());
  if (!value.empty()) std::memcpy(out + leaf_cell_header + key.size(), value.data(), value.size());
}

void make_overflow_cell(std::byte* out, std::string_view key, std::uint64_t vlen, std::uint32_t first) noexcept {
  st16(out, static_cast<std::uint16_t>(key.size()));
  out[2] = std::byte{cell_overflow};
  st32(out + 3, static_cast<std::uint32_t>(vlen));
  std::memcpy(out + leaf_cell_header, key.data(), key.size());
  st32(out + leaf_cell_header + key.size(), first);
}

void make_internal_cell(std::byte* out, std::string_view key, std::uint32_t child) noexcept {
  st16(out, static_cast<std::uint16_t>(key.size()));
  st32(out + 2, child);
  std::memcpy(out + internal_cell_header, key.data(), key.size());
}

leaf_value parse_leaf_value(std::span<const std::byte> c) noexcept {
  leaf_value v;
  const std::uint16_t klen = ld16(c.data());
  v.overflow = (static_cast<std::uint8_t>(c[2]) & cell_overflow) != 0;
  v.length = ld32(c.data() + 3);
  const std::byte* after_key = c.data() + leaf_cell_header + klen;
  if (v.overflow) {
    v.first_page = ld32(after_key);
  } else {
    v.inline_bytes = {after_key, static_cast<std::size_t>(v.length)};
  }
  return v;
}

meta_fields read_meta(const std::byte* p) noexcept {
  meta_fields m;
  const std::byte* q = p + header_size;
  m.magic = ld64(q);
  m.version = ld32(q + 8);
  m.root = ld32(q + 12);
  m.page_count = ld32(q + 16);
  m.free_head = ld32(q + 20);
  m.free_pages = ld32(q + 24);
  m.height = ld32(q + 28);
  return m;
}

void write_meta(std::byte* p, const meta_fields& m) noexcept {
  std::memset(p, 0, size);
  p[0] = static_cast<std::byte>(type::meta);
  std::byte* q = p + header_size;
  st64(q, m.magic);
  st32(q + 8, m.version);
  st32(q + 12, m.root);
  st32(q + 16, m.page_count);
  st32(q + 20, m.free_head);
  st32(q + 24, m.free_pages);
  st32(q + 28, m.height);
}

}  // namespace pageio::kv::page
