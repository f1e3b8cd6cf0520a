#include "record.hpp"

#include <chrono>
#include <cstring>

namespace pageio::kv::record {

builder::builder() { clear(); }

void builder::clear() {
  buf_.assign(header_size, std::byte{0});
  buf_[0] = std::byte{kind_changes};
  ops_ = 0;
}

namespace {
// One change with a u16-length payload: op, page, length, bytes.
void add_sized(std::vector<std::byte>& buf, op o, std::uint32_t pg, const void* bytes, std::size_t n) {
  const std::size_t at = buf.size();
  buf.resize(at + 7 + n);
  buf[at] = static_cast<std::byte>(o);
  page::st32(buf.data() + at + 1, pg);
  page::st16(buf.data() + at + 5, static_cast<std::uint16_t>(n));
  if (n != 0) std::memcpy(buf.data() + at + 7, bytes, n);
}
}  // namespace

void builder::leaf_put(std::uint32_t pg, std::span<const std::byte> cell) {
  add_sized(buf_, op::leaf_put, pg, cell.data(), cell.size());
  ++ops_;
}

void builder::leaf_del(std::uint32_t pg, std::string_view key) {
  add_sized(buf_, op::leaf_del, pg, key.data(), key.size());
  ++ops_;
}

void builder::internal_put(std::uint32_t pg, std::span<const std::byte> cell) {
  add_sized(buf_, op::internal_put, pg, cell.data(), cell.size());
  ++ops_;
}

void builder::leaf_cut(std::uint32_t pg, std::uint16_t keep, std::uint32_t right) {
  std::byte b[6];
  page::st16(b, keep);
  page::st32(b + 2, right);
  add_sized(buf_, op::leaf_cut, pg, b, sizeof b);
  ++ops_;
}

void builder::buffer_put(std::span<const std::byte> cell) {
  add_sized(buf_, op::buffer_put, 0, cell.data(), cell.size());
  ++ops_;
}

void builder::buffer_drop(std::string_view key) {
  add_sized(buf_, op::buffer_drop, 0, key.data(), key.size());
  ++ops_;
}

void builder::note(bool put, std::string_view key, std::uint64_t value_bytes) {
  std::byte body[note_header + page::max_key];
  body[0] = std::byte{put ? note_put : note_del};
  page::st64(body + 1, value_bytes);
  std::memcpy(body + note_header, key.data(), key.size());
  add_sized(buf_, op::note, 0, body, note_header + key.size());
  ++ops_;
}

namespace {
// The longest run of zero bytes in the page: [*from, *to).
void longest_zero_run(const std::byte* p, std::size_t* from, std::size_t* to) {
  // Eight bytes at a time over the zero stretches (a page is mostly one).
  auto zero8 = [p](std::size_t at) {
    std::uint64_t w;
    std::memcpy(&w, p + at, 8);
    return w == 0;
  };
  *from = *to = 0;
  std::size_t i = 0;
  while (i < page::size) {
    if (p[i] != std::byte{0}) {
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    while (j + 8 <= page::size && zero8(j)) j += 8;
    while (j < page::size && p[j] == std::byte{0}) ++j;
    if (j - i > *to - *from) *from = i, *to = j;
    i = j;
  }
}
}  // namespace

void builder::image(std::uint32_t pg, const std::byte* bytes) {
  std::size_t gap_from = 0, gap_to = 0;
  longest_zero_run(bytes, &gap_from, &gap_to);
  const std::size_t at = buf_.size();
  if (gap_to - gap_from <= 4) {
    buf_.resize(at + 5 + page::size);
    buf_[at] = static_cast<std::byte>(op::image);
    page::st32(buf_.data() + at + 1, pg);
    std::memcpy(buf_.data() + at + 5, bytes, page::size);
  } else {
    const std::size_t tail = page::size - gap_to;
    buf_.resize(at + 9 + gap_from + tail);
    buf_[at] = static_cast<std::byte>(op::image_gap);
    page::st32(buf_.data() + at + 1, pg);
    page::st16(buf_.data() + at + 5, static_cast<std::uint16_t>(gap_from));
    page::st16(buf_.data() + at + 7, static_cast<std::uint16_t>(gap_to));
    std::memcpy(buf_.data() + at + 9, bytes, gap_from);
    std::memcpy(buf_.data() + at + 9 + gap_from, bytes + gap_to, tail);
  }
  ++ops_;
}

std::span<const std::byte> builder::finish() {
  page::st32(buf_.data() + 4, ops_);
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  page::st64(buf_.data() + 8,
             static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now).count()));
  return buf_;
}

decoded decode(std::span<const std::byte> rec) {
  if (rec.size() < header_size) throw malformed("record shorter than its 16-byte header");
  if (rec[0] == std::byte{kind_checkpoint} || rec[0] == std::byte{kind_foreign_checkpoint}) {
    if (rec.size() != header_size + 8 && rec.size() != header_size + 16) {
      throw malformed("a checkpoint record of " + std::to_string(rec.size()) + " bytes");
    }
    decoded d;
    d.foreign_checkpoint = rec[0] == std::byte{kind_foreign_checkpoint};
    d.time_us = page::ld64(rec.data() + 8);
    d.checkpoint = page::ld64(rec.data() + header_size);
    d.pages_from = rec.size() == header_size + 16 ? page::ld64(rec.data() + header_size + 8) : d.checkpoint;
    if (d.pages_from < d.checkpoint) {
      throw malformed("a checkpoint record whose page redo (" + std::to_string(d.pages_from) +
                      ") starts before its recovery (" + std::to_string(d.checkpoint) + ")");
    }
    return d;
  }
  if (rec[0] != std::byte{kind_changes}) {
    throw malformed("unknown record kind " + std::to_string(static_cast<unsigned>(rec[0])));
  }
  decoded d;
  d.partial = (static_cast<std::uint8_t>(rec[1]) & flag_partial) != 0;
  d.merge = (static_cast<std::uint8_t>(rec[1]) & flag_merge) != 0;
  const std::uint32_t n = page::ld32(rec.data() + 4);
  d.time_us = page::ld64(rec.data() + 8);
  std::size_t at = header_size;
  d.changes.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    if (rec.size() - at < 5) throw malformed("change " + std::to_string(i) + " cut short");
    change c{static_cast<op>(rec[at]), page::ld32(rec.data() + at + 1), {}, {}, 0};
    at += 5;
    std::size_t len = 0;
    switch (c.kind) {
      case op::leaf_put:
      case op::leaf_del:
      case op::internal_put:
      case op::leaf_cut:
      case op::buffer_put:
      case op::buffer_drop:
      case op::note:
        if (rec.size() - at < 2) throw malformed("change " + std::to_string(i) + " cut short");
        len = page::ld16(rec.data() + at);
        at += 2;
        if (c.kind == op::note && (len <= note_header || len > note_header + page::max_key)) {
          throw malformed("change " + std::to_string(i) + ": a note of " + std::to_string(len) + " bytes");
        }
        if (c.kind == op::leaf_cut && len != 6) {
          throw malformed("change " + std::to_string(i) + ": a leaf cut of " + std::to_string(len) + " bytes, not 6");
        }
        break;
      case op::image:
        len = page::size;
        break;
      case op::image_gap: {
        if (rec.size() - at < 4) throw malformed("change " + std::to_string(i) + " cut short");
        const std::size_t head = page::ld16(rec.data() + at), tail_at = page::ld16(rec.data() + at + 2);
        at += 4;
        if (head > tail_at || tail_at > page::size) {
          throw malformed("change " + std::to_string(i) + ": an image whose zero gap [" + std::to_string(head) + ", " +
                          std::to_string(tail_at) + ") does not fit a page");
        }
        if (rec.size() - at < head + (page::size - tail_at)) {
          throw malformed("change " + std::to_string(i) + " cut short");
        }
        c.tail_at = static_cast<std::uint16_t>(tail_at);
        c.tail = rec.subspan(at + head, page::size - tail_at);
        len = head;
        break;
      }
      default:
        throw malformed("change " + std::to_string(i) + ": unknown operation " +
                        std::to_string(static_cast<unsigned>(c.kind)));
    }
    if (rec.size() - at < len) throw malformed("change " + std::to_string(i) + " cut short");
    c.bytes = rec.subspan(at, len);
    at += len + c.tail.size();
    d.changes.push_back(c);
  }
  if (at != rec.size()) throw malformed("bytes after the last change");
  return d;
}

std::vector<std::byte> checkpoint_record(std::uint64_t redo_lsn, std::uint64_t pages_from) {
  std::vector<std::byte> r(header_size + 16, std::byte{0});
  r[0] = std::byte{kind_checkpoint};
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  page::st64(r.data() + 8,
             static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now).count()));
  page::st64(r.data() + header_size, redo_lsn);
  page::st64(r.data() + header_size + 8, pages_from);
  return r;
}

void apply(const change& c, std::byte* bytes) {
  page::view v(bytes);
  switch (c.kind) {
    case op::image:
      std::memcpy(bytes, c.bytes.data(), page::size);
      return;
    case op::image_gap:
      std::memcpy(bytes, c.bytes.data(), c.bytes.size());
      std::memset(bytes + c.bytes.size(), 0, c.tail_at - c.bytes.size());
      std::memcpy(bytes + c.tail_at, c.tail.data(), c.tail.size());
      return;
    case op::internal_put:
      if (v.kind() != page::type::internal) {
        throw malformed("separator put into page " + std::to_string(c.page) + ", which is not an internal page");
      }
      if (!v.upsert(c.bytes)) throw malformed("separator put into page " + std::to_string(c.page) + " does not fit");
      return;
    case op::leaf_put:
      if (v.kind() != page::type::leaf) {
        throw malformed("put into page " + std::to_string(c.page) + ", which is not a leaf");
      }
      if (!v.upsert(c.bytes)) throw malformed("put into page " + std::to_string(c.page) + " does not fit");
      return;
    case op::leaf_cut: {
      if (v.kind() != page::type::leaf) {
        throw malformed("split of page " + std::to_string(c.page) + ", which is not a leaf");
      }
      const std::uint16_t keep = page::ld16(c.bytes.data());
      if (keep > v.nslots()) {
        throw malformed("split of page " + std::to_string(c.page) + " keeping " + std::to_string(keep) + " of its " +
                        std::to_string(v.nslots()) + " cells");
      }
      v.truncate(keep);
      v.set_right(page::ld32(c.bytes.data() + 2));
      return;
    }
    case op::buffer_put:
    case op::buffer_drop:
      throw malformed("a write-buffer change applied to page " + std::to_string(c.page));
    case op::note:
      throw malformed("a note applied to page " + std::to_string(c.page));
    case op::leaf_del: {
      if (v.kind() != page::type::leaf) {
        throw malformed("delete from page " + std::to_string(c.page) + ", which is not a leaf");
      }
      const std::string_view k(reinterpret_cast<const char*>(c.bytes.data()), c.bytes.size());
      if (!v.erase_key(k)) throw malformed("delete from page " + std::to_string(c.page) + " of a key it lacks");
      return;
    }
  }
}

}  // namespace pageio::kv::record
