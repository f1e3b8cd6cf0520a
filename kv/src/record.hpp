// The store's log records (the payload of one wal::log record). One record
// holds every page change of one put, delete or batch, so a crash leaves all
// of it or none of it: the log writes a record whole or not at all. Redo
// applies a record's changes to a page only when the page's LSN (from the
// pool's page header) is below the record's, and the runtime applies them
// with the same code after appending, so redo repeats exactly what was done.
//
// Record (little-endian):
//   0   u8   kind       1: changes; 2: checkpoint (then u64 at 16: recovery
//                       may start there: every page change below it is in
//                       the data file, and every write-buffer pair's record
//                       is at or above it; and u64 at 24, at or above the
//                       first: every page change below this one is in the
//                       data file, so redo of pages may start there, the
//                       records between rebuilding the write buffer only.
//                       A record of 24 bytes has the first only.)
//   1   u8   flags      1: part of a larger put whose last record follows
//                       (overflow pages only; the pages stay free until then)
//                       2: a merge: moves write-buffer pairs into their
//                       leaves and changes nothing a reader sees (its
//                       leaf_puts are not the user's writes; redo ignores
//                       the flag)
//   2   u16  reserved   0
//   4   u32  op_count
//   8   u64  time_us    commit time, microseconds since the Unix epoch
//   16  ops, each:
//         u8 op, u32 page, then
//         op 1 leaf_put: u16 cell_len, the leaf cell (put in place of the
//                        cell with its key, or inserted in order)
//         op 2 leaf_del: u16 klen, the key
//         op 3 image:    page::size bytes, the page's new content
//         op 4 image_gap: u16 head, u16 tail, then bytes [0, head) and
//                        [tail, page::size) of the page's new content; the
//                        bytes between are zero (a page's free middle, or
//                        the unused end of a meta, trunk or overflow page)
//         op 5 internal_put: u16 cell_len, the internal cell (put in place
//                        of the cell with its key, or inserted in order)
//         op 6 leaf_cut: u16 6, u16 keep, u32 right: the leaf keeps its
//                        first `keep` cells (compacted, the free middle
//                        zeroed) and its right sibling becomes `right` (the
//                        left half of a split, whose right half is a new
//                        page logged as an image)
//         op 7 buffer_put:  u16 cell_len, a leaf cell (inline value): the pair
//                        goes to the write buffer, no page changes (page 0,
//                        unused; write_buffer.hpp)
//         op 8 buffer_drop: u16 klen, the key: its buffered pair, if any, is
//                        stale from here on (page 0, unused)
//         op 9 note:     u16 len, u8 what (1 put, 2 delete), u64 value
//                        bytes, the key: a put or delete of the user's, for
//                        readers of the log (pageio-wal dump --decode kv;
//                        page 0, unused; redo ignores it). A record planned
//                        by the tree writer (a split, a large value, a
//                        batch, the queue's groups) has one per put or
//                        delete that changed something, and then its
//                        leaf_puts and buffer_drops say nothing of the
//                        user's writes (some are merges); a record without
//                        notes is one write: its buffer_put, leaf_put or
//                        leaf_del, or a lone buffer_drop (a delete of a key
//                        only buffered).
#pragma once

#include "page.hpp"

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pageio::kv::record {

inline constexpr std::size_t header_size = 16;
inline constexpr std::uint8_t kind_changes = 1;
inline constexpr std::uint8_t kind_checkpoint = 2;
// A checkpoint record of the store a replica was replayed from, as the
// replica's log holds it (store::replay): the source's pages, not this
// store's, so recovery ignores it. Otherwise a checkpoint record.
inline constexpr std::uint8_t kind_foreign_checkpoint = 3;
inline constexpr std::uint8_t flag_partial = 1;
inline constexpr std::uint8_t flag_merge = 2;
inline constexpr std::uint8_t note_put = 1, note_del = 2;
inline constexpr std::size_t note_header = 9;  // what, value bytes

enum class op : std::uint8_t { leaf_put = 1, leaf_del = 2, image = 3, image_gap = 4, internal_put = 5, leaf_cut = 6, buffer_put = 7, buffer_drop = 8, note = 9 };
// Whether a change is to a page (redone by page LSN), or to the write buffer
// (redone always), or a note (never redone).
inline bool changes_page(op o) noexcept { return o != op::buffer_put && o != op::buffer_drop && o != op::note; }

// Builds a record.
class builder {
 public:
  builder();
  void set_partial() noexcept { buf_[1] |= std::byte{flag_partial}; }
  void set_merge() noexcept { buf_[1] |= std::byte{flag_merge}; }
  // A put (of a value of `value_bytes`) or delete of the user's: op note.
  void note(bool put, std::string_view key, std::uint64_t value_bytes);
  void leaf_put(std::uint32_t page, std::span<const std::byte> cell);
  void leaf_del(std::uint32_t page, std::string_view key);
  void internal_put(std::uint32_t page, std::span<const std::byte> cell);
  void leaf_cut(std::uint32_t page, std::uint16_t keep, std::uint32_t right);
  void buffer_put(std::span<const std::byte> cell);
  void buffer_drop(std::string_view key);
  // The page's new content: as image_gap around its longest run of zero
  // bytes, or whole when no run is worth it.
  void image(std::uint32_t page, const std::byte* bytes);
  std::size_t ops() const noexcept { return ops_; }
  std::size_t size() const noexcept { return buf_.size(); }
  // Stamps the time and returns the bytes.
  std::span<const std::byte> finish();
  void clear();

 private:
  std::vector<std::byte> buf_;
  std::uint32_t ops_ = 0;
};

// One decoded change.
struct change {
  op kind;
  std::uint32_t page;
  std::span<const std::byte> bytes;  // the cell, the key, or the image (its head, for image_gap)
  std::span<const std::byte> tail;   // image_gap: the bytes from tail_at to the page's end
  std::uint16_t tail_at = 0;
};

class malformed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct decoded {
  bool partial = false;
  bool merge = false;
  bool foreign_checkpoint = false;  // kind 3: checkpoint/pages_from are the source's
  std::uint64_t checkpoint = 0;  // a checkpoint record: where recovery may start (else 0)
  std::uint64_t pages_from = 0;  // a checkpoint record: where redo of pages may start
  std::uint64_t time_us = 0;
  std::vector<change> changes;
};
// Throws malformed, saying what is wrong.
decoded decode(std::span<const std::byte> rec);

// A checkpoint record: recovery may start at `redo_lsn`, redo of pages at
// `pages_from` (>= redo_lsn).
std::vector<std::byte> checkpoint_record(std::uint64_t redo_lsn, std::uint64_t pages_from);

// Applies one change to the page's bytes (page::size of them). Throws
// malformed when it cannot apply (a leaf_put that does not fit, a page of
// the wrong type): the log and the data file disagree.
void apply(const change& c, std::byte* page_bytes);

}  // namespace pageio::kv::record
