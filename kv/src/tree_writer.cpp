#include "tree_writer.hpp"

#include <pageio/kv/store.hpp>

#include <algorithm>
#include <cassert>
#include <string>

namespace pageio::kv {

namespace {

std::string page_error(std::uint32_t pg, const std::string& what) {
  return "page " + std::to_string(pg) + " of the data file: " + what;
}

}  // namespace

tree_writer::tree_writer(pagecache::buffer_pool& pool, pagecache::file_id file, std::size_t partial_bytes,
                         emit_fn emit_partial, page_stock& stock)
    : pool_(pool),
      stock_(&stock),
      file_(file),
      partial_bytes_(partial_bytes),
      emit_partial_(std::move(emit_partial)) {
  {
    // Read in place: the meta page is copied only once it changes.
    pagecache::page_ref m = pool_.fetch({file_, 0});
    meta_ = page::read_meta(m.data());
  }
  if (meta_.magic != page::meta_magic || meta_.version != page::meta_version) {
    throw corruption_error(page_error(0, "not a pageio::kv meta page"));
  }
}

tree_writer::~tree_writer() {
  if (stock_ == nullptr) return;  // moved from
  constexpr std::size_t keep = 64;
  for (auto& [pg, bytes] : shadows_) {
    if (stock_->size() >= keep) break;
    stock_->push_back(std::move(bytes));
  }
}

std::unique_ptr<tree_writer::page_bytes> tree_writer::new_page_bytes() {
  if (stock_->empty()) return std::make_unique<page_bytes>();
  auto b = std::move(stock_->back());
  stock_->pop_back();
  return b;
}

tree_writer::page_bytes& tree_writer::shadow(std::uint32_t pg) {
  auto it = shadows_.find(pg);
  if (it != shadows_.end()) return *it->second;
  auto copy = new_page_bytes();
  pagecache::page_ref ref = pool_.fetch({file_, pg});
  std::memcpy(copy->data(), ref.data(), page::size);
  return *shadows_.emplace(pg, std::move(copy)).first->second;
}

tree_writer::page_bytes& tree_writer::fresh(std::uint32_t pg) {
  auto& slot = shadows_[pg];
  if (!slot) slot = new_page_bytes();
  if (std::find(fresh_.begin(), fresh_.end(), pg) == fresh_.end()) fresh_.push_back(pg);
  std::memset(slot->data(), 0, page::size);
  return *slot;
}

void tree_writer::touched(std::uint32_t pg) {
  if (std::find(image_order_.begin(), image_order_.end(), pg) == image_order_.end()) image_order_.push_back(pg);
}

void tree_writer::meta_changed() {
  page::write_meta(shadow(0).data(), meta_);
  touched(0);
}

std::uint32_t tree_writer::allocate(bool may_take_trunk) {
  if (meta_.free_head != 0) {
    const std::uint32_t trunk = meta_.free_head;
    page::view t(shadow(trunk).data());
    if (t.kind() != page::type::trunk) throw corruption_error(page_error(trunk, "free-list page of the wrong kind"));
    if (t.nslots() > 0) {
      const std::uint16_t n = t.nslots();
      const std::uint32_t pg = page::ld32(t.bytes() + page::header_size + 4 * (n - 1));
      page::st16(t.bytes() + 2, static_cast<std::uint16_t>(n - 1));
      touched(trunk);
      --meta_.free_pages;
      meta_changed();
      return pg;
    }
    if (may_take_trunk) {
      meta_.free_head = t.right();
      --meta_.free_pages;
      meta_changed();
      return trunk;
    }
  }
  if (meta_.page_count == UINT32_MAX) throw std::length_error("the data file is full (2^32 pages)");
  const std::uint32_t pg = meta_.page_count++;
  meta_changed();
  return pg;
}

void tree_writer::release(std::uint32_t pg) {
  if (meta_.free_head != 0) {
    page::view t(shadow(meta_.free_head).data());
    if (t.nslots() < page::trunk_capacity) {
      const std::uint16_t n = t.nslots();
      page::st32(t.bytes() + page::header_size + 4 * n, pg);
      page::st16(t.bytes() + 2, static_cast<std::uint16_t>(n + 1));
      touched(meta_.free_head);
      ++meta_.free_pages;
      meta_changed();
      return;
    }
  }
  page::view t(fresh(pg).data());
  t.init(page::type::trunk, 0);
  t.set_right(meta_.free_head);
  touched(pg);
  meta_.free_head = pg;
  ++meta_.free_pages;
  meta_changed();
}

std::uint32_t tree_writer::write_overflow(std::string_view value) {
  // Pages are allocated front to back, each written whole; the chain is
  // linked forward, so the first page is known before the last is written.
  const std::size_t n = (value.size() + page::overflow_capacity - 1) / page::overflow_capacity;
  std::vector<std::uint32_t> pages(n);
  for (auto& pg : pages) pg = allocate(/*may_take_trunk=*/false);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t at = i * page::overflow_capacity;
    const std::size_t len = std::min(page::overflow_capacity, value.size() - at);
    page_bytes& b = fresh(pages[i]);
    page::view v(b.data());
    v.init(page::type::overflow, 0);
    v.set_right(i + 1 < n ? pages[i + 1] : 0);
    page::st32(b.data() + page::header_size, static_cast<std::uint32_t>(len));
    std::memcpy(b.data() + page::overflow_data_offset, value.data() + at, len);
    ovf_rec_.image(pages[i], b.data());
    ovf_pages_.push_back(pages[i]);
    if (ovf_rec_.size() + page::size + 8 > partial_bytes_) emit_partial();
  }
  return pages.front();
}

void tree_writer::emit_partial() {
  if (ovf_rec_.ops() == 0) return;
  ovf_rec_.set_partial();
  emit_partial_(*this);
  for (std::uint32_t pg : ovf_pages_) shadows_.erase(pg);
  ovf_pages_.clear();
  ovf_rec_.clear();
}

std::vector<std::pair<std::uint32_t, const tree_writer::page_bytes*>> tree_writer::partial_pages() const {
  std::vector<std::pair<std::uint32_t, const page_bytes*>> out;
  for (std::uint32_t pg : ovf_pages_) out.emplace_back(pg, shadows_.at(pg).get());
  return out;
}

void tree_writer::free_overflow(std::uint32_t first) {
  std::uint32_t pg = first;
  std::size_t guard = 0;
  while (pg != 0) {
    page::view v(shadow(pg).data());
    if (v.kind() != page::type::overflow) throw corruption_error(page_error(pg, "overflow page of the wrong kind"));
    if (++guard > (max_value_bytes / page::overflow_capacity) + 2) {
      throw corruption_error(page_error(first, "overflow chain longer than any value"));
    }
    to_release_.push_back(pg);
    pg = v.right();
  }
}

std::uint32_t tree_writer::find_leaf(std::string_view key, std::vector<std::uint32_t>* path) {
  std::uint32_t pg = meta_.root;
  for (std::uint32_t depth = 0;; ++depth) {
    if (depth > meta_.height) throw corruption_error(page_error(pg, "the tree is deeper than the meta page says"));
    // A page this change has not touched is read in place (writers are
    // serialized, so nothing changes it meanwhile); it is copied only if it
    // is to change (a split reaching it).
    pagecache::page_ref ref;
    const auto it = shadows_.find(pg);
    if (it == shadows_.end()) ref = pool_.fetch({file_, pg});
    const page::view v(it != shadows_.end() ? it->second->data() : ref.data());
    if (v.kind() == page::type::leaf) return pg;
    if (v.kind() != page::type::internal) throw corruption_error(page_error(pg, "expected a tree page"));
    path->push_back(pg);
    pg = v.child_for(key);
  }
}

void tree_writer::put(std::string_view key, std::string_view value) {
  const bool overflow = page::leaf_cell_size(key.size(), value.size(), false) > page::max_leaf_cell;
  std::vector<std::byte> cell(page::leaf_cell_size(key.size(), value.size(), overflow));
  if (overflow) {
    const std::uint32_t first = write_overflow(value);
    page::make_overflow_cell(cell.data(), key, value.size(), first);
  } else {
    page::make_leaf_cell(cell.data(), key, std::as_bytes(std::span(value)));
  }
  std::vector<std::uint32_t> path;
  const std::uint32_t leaf = find_leaf(key, &path);
  page::view v(shadow(leaf).data());
  bool eq = false;
  const std::size_t at = v.lower_bound(key, &eq);
  if (eq) {
    const page::leaf_value old = page::parse_leaf_value(v.cell(at));
    if (old.overflow) free_overflow(old.first_page);
  }
  if (v.upsert(cell)) {
    const bool imaged = std::find(image_order_.begin(), image_order_.end(), leaf) != image_order_.end();
    if (!imaged) {
      rec_.leaf_put(leaf, cell);
      if (std::find(logical_.begin(), logical_.end(), leaf) == logical_.end()) logical_.push_back(leaf);
    }
    return;
  }
  split_leaf(path, leaf, cell);
}

bool tree_writer::del(std::string_view key) {
  std::vector<std::uint32_t> path;
  const std::uint32_t leaf = find_leaf(key, &path);
  page::view v(shadow(leaf).data());
  bool eq = false;
  const std::size_t at = v.lower_bound(key, &eq);
  if (!eq) return false;
  const page::leaf_value old = page::parse_leaf_value(v.cell(at));
  if (old.overflow) free_overflow(old.first_page);
  v.erase(at);
  const bool imaged = std::find(image_order_.begin(), image_order_.end(), leaf) != image_order_.end();
  if (!imaged) {
    rec_.leaf_del(leaf, key);
    if (std::find(logical_.begin(), logical_.end(), leaf) == logical_.end()) logical_.push_back(leaf);
  }
  if (v.nslots() == 0) drop_empty_leaf(path, leaf);
  return true;
}

void tree_writer::drop_empty_leaf(const std::vector<std::uint32_t>& path, std::uint32_t leaf) {
  // Only a leaf with a left sibling under the same parent, and a parent that
  // keeps a key after losing this one's: the sibling's link then skips it,
  // and its key range joins the sibling's. Other empty leaves stay (they
  // take the next inserts in their range).
  if (path.empty()) return;  // the root
  const std::uint32_t parent = path.back();
  page::view p(shadow(parent).data());
  if (p.nslots() < 2) return;
  std::size_t i = 0;
  while (i < p.nslots() && p.child(i) != leaf) ++i;
  if (i == p.nslots()) return;  // it is child0
  const std::uint32_t left = i == 0 ? p.child0() : p.child(i - 1);
  page::view l(shadow(left).data());
  if (l.kind() != page::type::leaf || l.right() != leaf) return;  // not where the links say: leave it
  l.set_right(page::view(shadow(leaf).data()).right());
  p.erase(i);
  touched(left);
  touched(parent);
  to_release_.push_back(leaf);
}

namespace {

// Cells of a page plus one, in key order (the new one replaces an equal key).
std::vector<std::vector<std::byte>> cells_with(const page::view& v, std::span<const std::byte> extra,
                                               std::string_view extra_key) {
  std::vector<std::vector<std::byte>> out;
  bool placed = false;
  for (std::size_t i = 0; i < v.nslots(); ++i) {
    const std::string_view k = v.key(i);
    if (!placed && k >= extra_key) {
      out.emplace_back(extra.begin(), extra.end());
      placed = true;
      if (k == extra_key) continue;
    }
    const auto c = v.cell(i);
    out.emplace_back(c.begin(), c.end());
  }
  if (!placed) out.emplace_back(extra.begin(), extra.end());
  return out;
}

// Where to cut `cells` so that both halves hold about the same bytes, each
// at least one cell.
std::size_t split_point(const std::vector<std::vector<std::byte>>& cells) {
  std::size_t total = 0;
  for (const auto& c : cells) total += c.size() + 2;
  std::size_t left = 0, i = 0;
  while (i + 1 < cells.size() && left + (cells[i].size() + 2) / 2 < total / 2) left += cells[i++].size() + 2;
  return std::clamp<std::size_t>(i, 1, cells.size() - 1);
}

std::string_view leaf_key(const std::vector<std::byte>& c) {
  return {reinterpret_cast<const char*>(c.data() + page::leaf_cell_header), page::ld16(c.data())};
}
std::string_view internal_key(const std::vector<std::byte>& c) {
  return {reinterpret_cast<const char*>(c.data() + page::internal_cell_header), page::ld16(c.data())};
}

}  // namespace

void tree_writer::split_under(std::uint32_t parent, const std::byte* parent_bytes, std::uint32_t leaf,
                              const std::byte* leaf_bytes, std::span<const std::byte> cell) {
  for (const auto& [pg, bytes] : {std::pair{parent, parent_bytes}, std::pair{leaf, leaf_bytes}}) {
    auto& slot = shadows_[pg];
    if (!slot) slot = new_page_bytes();
    std::memcpy(slot->data(), bytes, page::size);
  }
  std::vector<std::uint32_t> path{parent};
  parent_must_fit_ = true;
  split_leaf(path, leaf, cell);
}

void tree_writer::split_leaf(std::vector<std::uint32_t>& path, std::uint32_t leaf, std::span<const std::byte> cell) {
  const std::string_view key(reinterpret_cast<const char*>(cell.data() + page::leaf_cell_header),
                             page::ld16(cell.data()));
  auto cells = cells_with(page::view(shadow(leaf).data()), cell, key);
  // A key past the end of the last leaf (a sequential load): the full page
  // stays full and the new key starts the next one, as SQLite's
  // balance_quick does, rather than leaving two half-empty pages behind.
  const bool appending = page::view(shadow(leaf).data()).right() == 0 &&
                         leaf_key(cells.back()) == key && cells.size() >= 2;
  const std::size_t m = appending ? cells.size() - 1 : split_point(cells);
  const std::uint32_t right = allocate(/*may_take_trunk=*/true);
  page::view l(shadow(leaf).data());
  const std::uint32_t old_right = l.right();
  page::view r(fresh(right).data());
  r.init(page::type::leaf, 0);
  for (std::size_t i = m; i < cells.size(); ++i) {
    const bool ok = r.insert_at(i - m, cells[i]);
    assert(ok);
    (void)ok;
  }
  r.set_right(old_right);
  touched(right);
  // The left half is the leaf's first cells, and the new one if it falls
  // there: logged as a cut and a put (about 20 bytes and the cell), not as
  // an image, with the same page::view code the redo runs.
  bool eq = false;
  const std::size_t at = l.lower_bound(key, &eq);
  const bool new_on_left = at < m;
  const std::size_t keep = new_on_left && !eq ? m - 1 : m;
  l.truncate(keep);
  l.set_right(right);
  if (new_on_left) {
    const bool ok = l.upsert(cell);
    assert(ok);
    (void)ok;
  }
  const bool imaged = std::find(image_order_.begin(), image_order_.end(), leaf) != image_order_.end();
  if (!imaged) {
    rec_.leaf_cut(leaf, static_cast<std::uint16_t>(keep), right);
    if (new_on_left) rec_.leaf_put(leaf, cell);
    if (std::find(logical_.begin(), logical_.end(), leaf) == logical_.end()) logical_.push_back(leaf);
  }
  const std::string sep(leaf_key(cells[m]));
  insert_in_parent(path, leaf, sep, right);
}

void tree_writer::insert_in_parent(std::vector<std::uint32_t>& path, std::uint32_t left, std::string_view sep,
                                   std::uint32_t right) {
  std::vector<std::byte> cell(page::internal_cell_size(sep.size()));
  page::make_internal_cell(cell.data(), sep, right);
  if (path.empty()) {
    // `left` was the root: a new root above it.
    const std::uint32_t root = allocate(/*may_take_trunk=*/true);
    page::view nr(fresh(root).data());
    nr.init(page::type::internal, static_cast<std::uint8_t>(std::min<std::uint32_t>(meta_.height, 255)));
    nr.set_child0(left);
    const bool ok = nr.insert_at(0, cell);
    assert(ok);
    (void)ok;
    touched(root);
    meta_.root = root;
    ++meta_.height;
    meta_changed();
    return;
  }
  const std::uint32_t parent = path.back();
  path.pop_back();
  page::view p(shadow(parent).data());
  if (parent_must_fit_ && p.free_bytes() < cell.size() + 2) throw parent_full{};
  if (p.upsert(cell)) {
    // Logged as the separator alone, unless the page goes as an image anyway.
    const bool imaged = std::find(image_order_.begin(), image_order_.end(), parent) != image_order_.end();
    if (!imaged) {
      rec_.internal_put(parent, cell);
      if (std::find(logical_.begin(), logical_.end(), parent) == logical_.end()) logical_.push_back(parent);
    }
    return;
  }
  auto cells = cells_with(p, cell, sep);
  const std::size_t m = split_point(cells);
  const std::uint32_t new_right = allocate(/*may_take_trunk=*/true);
  const std::uint8_t level = p.level();
  const std::uint32_t child0 = p.child0();
  p.init(page::type::internal, level);
  p.set_child0(child0);
  page::view r(fresh(new_right).data());
  r.init(page::type::internal, level);
  // Cell m moves up: its key separates the halves, its child becomes the
  // right page's child0.
  r.set_child0(page::ld32(cells[m].data() + 2));
  for (std::size_t i = 0; i < m; ++i) {
    const bool ok = p.insert_at(i, cells[i]);
    assert(ok);
    (void)ok;
  }
  for (std::size_t i = m + 1; i < cells.size(); ++i) {
    const bool ok = r.insert_at(i - m - 1, cells[i]);
    assert(ok);
    (void)ok;
  }
  touched(parent);
  touched(new_right);
  const std::string up(internal_key(cells[m]));
  insert_in_parent(path, parent, up, new_right);
}

bool tree_writer::finish() {
  // Overflow pages still unlogged go out first: a page this batch both
  // wrote as overflow and then freed (a value overwritten within the batch)
  // is then a plain page again when it is released.
  emit_partial();
  // Frees what the batch let go of, now that nothing more is allocated.
  for (std::uint32_t pg : to_release_) release(pg);
  to_release_.clear();
  for (std::uint32_t pg : image_order_) {
    std::byte* bytes = shadows_.at(pg)->data();
    page::view v(bytes);
    if (v.kind() == page::type::leaf || v.kind() == page::type::internal) v.zero_gap();
    rec_.image(pg, bytes);
  }
  return rec_.ops() > 0;
}

std::vector<std::pair<std::uint32_t, const tree_writer::page_bytes*>> tree_writer::final_pages() const {
  std::vector<std::pair<std::uint32_t, const page_bytes*>> out;
  for (std::uint32_t pg : logical_) out.emplace_back(pg, shadows_.at(pg).get());
  for (std::uint32_t pg : image_order_) {
    if (std::find(logical_.begin(), logical_.end(), pg) == logical_.end()) out.emplace_back(pg, shadows_.at(pg).get());
  }
  return out;
}

}  // namespace pageio::kv
