// Plans one change of the tree (a put, a delete, or a batch of them) on
// private copies of the pages it touches ("shadows"), and writes the log
// record that describes it. Nothing in the pool changes here: the store
// appends the record, then copies the shadows into the pool under the tree
// latch. Writers are serialized around this (store::impl::writer_mu), and
// readers never change pages, so the pages read here are stable.
//
// Rules (docs/kv.md, "Logging"):
//  - a put or delete that stays inside its leaf is logged as leaf_put /
//    leaf_del (the cell, or the key), a separator that fits its parent as
//    internal_put, the left half of a leaf split as leaf_cut; anything else
//    (a split's new page, a split internal page, a new root, the meta
//    page, free-list pages, overflow pages) as page images;
//  - a page is allocated and its allocation (meta or free-list page) is
//    logged in the same record as the change that needs it;
//  - a value too large for one record is written to overflow pages in
//    "partial" records first; those pages stay on the free list on disk
//    until the last record, which takes them off and links them.
#pragma once

#include "page.hpp"
#include "record.hpp"

#include <pageio/pagecache/buffer_pool.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string_view>
#include <vector>

namespace pageio::kv {

class tree_writer {
 public:
  using page_bytes = std::array<std::byte, page::size>;
  // Emits a partial record (overflow pages of a large value) and returns
  // once the store has appended and applied it.
  using emit_fn = std::function<void(tree_writer&)>;

  // Page buffers kept between changes (4 KiB allocations go to malloc's
  // locked arena, not to its per-thread cache); used under writer_mu.
  using page_stock = std::vector<std::unique_ptr<page_bytes>>;

  // Overflow pages are logged in partial records of about `partial_bytes`.
  // Shadows come from and go back to `stock`.
  tree_writer(pagecache::buffer_pool& pool, pagecache::file_id file, std::size_t partial_bytes, emit_fn emit_partial,
              page_stock& stock);
  ~tree_writer();
  tree_writer(tree_writer&&) = default;

  // Plans one operation; returns false for a delete of an absent key.
  void put(std::string_view key, std::string_view value);
  bool del(std::string_view key);

  // A split of a full leaf whose parent has room for the new separator,
  // planned from the given copies of both pages (leaf_split.cpp holds their
  // latches meanwhile); the new page comes from the meta page or the free
  // list as for any change. Throws parent_full, nothing planned worth
  // keeping, when the parent would have to split too.
  struct parent_full {};
  void split_under(std::uint32_t parent, const std::byte* parent_bytes, std::uint32_t leaf,
                   const std::byte* leaf_bytes, std::span<const std::byte> cell);

  // After the last operation: the record to append, and the pages it
  // changes with their new contents, to copy into the pool once appended.
  // Returns false when nothing changed (every operation was a delete of an
  // absent key).
  bool finish();
  record::builder& final_record() noexcept { return rec_; }
  std::vector<std::pair<std::uint32_t, const page_bytes*>> final_pages() const;

  // For emit_partial: the partial record and its overflow pages.
  record::builder& partial_record() noexcept { return ovf_rec_; }
  std::vector<std::pair<std::uint32_t, const page_bytes*>> partial_pages() const;

  const page::meta_fields& meta() const noexcept { return meta_; }
  // Pages this change writes whole whatever they held (new pages, reused
  // free pages): the pool need not read them first (buffer_pool::fetch_new).
  const std::vector<std::uint32_t>& fresh_pages() const noexcept { return fresh_; }

 private:
  page_bytes& shadow(std::uint32_t pg);
  page_bytes& fresh(std::uint32_t pg);  // a page whose old content does not matter
  void touched(std::uint32_t pg);       // will be logged as an image
  std::uint32_t allocate(bool may_take_trunk);
  void release(std::uint32_t pg);
  void meta_changed();
  std::uint32_t write_overflow(std::string_view value);
  void free_overflow(std::uint32_t first);
  // Descends to the leaf for `key`, recording the path (root first).
  std::uint32_t find_leaf(std::string_view key, std::vector<std::uint32_t>* path);
  // `leaf` (reached through `path`) has no key left: unlink and free it when
  // it can go simply.
  void drop_empty_leaf(const std::vector<std::uint32_t>& path, std::uint32_t leaf);
  void split_leaf(std::vector<std::uint32_t>& path, std::uint32_t leaf, std::span<const std::byte> cell);
  void insert_in_parent(std::vector<std::uint32_t>& path, std::uint32_t left, std::string_view sep,
                        std::uint32_t right);
  void emit_partial();


  std::unique_ptr<page_bytes> new_page_bytes();

  pagecache::buffer_pool& pool_;
  page_stock* stock_;
  pagecache::file_id file_;
  std::size_t partial_bytes_;
  emit_fn emit_partial_;
  record::builder rec_;
  page::meta_fields meta_;
  bool meta_loaded_ = false;
  std::map<std::uint32_t, std::unique_ptr<page_bytes>> shadows_;
  std::vector<std::uint32_t> image_order_;  // pages to log as images, first touch order
  std::vector<std::uint32_t> logical_;      // pages changed by leaf_put / leaf_del only
  record::builder ovf_rec_;                 // overflow pages not yet emitted
  std::vector<std::uint32_t> ovf_pages_;
  // Pages freed by this batch: put on the free list when it is planned, so
  // that no page still in use on disk is reused before the last record.
  std::vector<std::uint32_t> to_release_;
  std::vector<std::uint32_t> fresh_;
  bool parent_must_fit_ = false;  // split_under
};

}  // namespace pageio::kv
