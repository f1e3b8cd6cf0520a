// A put that splits its leaf while the leaf's parent has room for the new
// separator, done by the writer's own thread under tree_mu held shared, as
// a leaf write (leaf_write.cpp) is, instead of by the queue's leader under
// tree_mu exclusive. Splits are one put in sixteen or so under random
// inserts; each one through the leader stopped every reader and writer of
// the store, and with 64 writers a quarter of all context switches were
// threads waiting on tree_mu behind a split.
//
// Why this is safe (docs/kv.md, "Concurrency"):
//  - the parent and the leaf are latched exclusively, taken top-down while
//    latch-coupled walks (reads.cpp) take them the same way, so no walk
//    holds a child pointer from before the split and reaches the leaf
//    after it;
//  - the new page is allocated under alloc_mu, which every allocation under
//    tree_mu shared takes (the queue's leader allocates under tree_mu
//    exclusive, when no split runs), so the meta page and the free list
//    change in the order their records are appended;
//  - each page changed here is latched exclusively (the new page and the
//    meta or free-list page too) from before the append until it is marked
//    with the record's LSN, so every page's records are in the log in the
//    order its changes were made, and redo by page LSN repeats them;
//  - a checkpoint takes tree_mu exclusively, so no split is between its
//    append and its marks then.
#include "record.hpp"
#include "store_impl.hpp"

#include <cstring>
#include <shared_mutex>

namespace pageio::kv {

store::impl::leaf_write_result store::impl::try_leaf_split(std::string_view key, std::string_view value) {
  if (page::leaf_cell_size(key.size(), value.size(), false) > page::max_leaf_cell) return {leaf_write_result::queue};
  std::vector<std::byte> cell(page::leaf_cell_size(key.size(), value.size(), false));
  page::make_leaf_cell(cell.data(), key, std::as_bytes(std::span(value)));

  std::shared_lock tree(tree_mu);
  check_open();
  std::optional<latched_path> path = descend_path(key, /*may_read=*/true, latch_mode::split);
  if (!path || !path->parent) return {leaf_write_result::queue};  // the root is the leaf
  pagecache::page_ref& leaf = path->leaf;
  pagecache::page_ref& parent = path->parent;
  const auto leaf_pg = static_cast<std::uint32_t>(leaf.id().page);
  const auto parent_pg = static_cast<std::uint32_t>(parent.id().page);
  {
    const page::view v(leaf.data());
    bool eq = false;
    const std::size_t at = v.lower_bound(key, &eq);
    if (eq && page::parse_leaf_value(v.cell(at)).overflow) return {leaf_write_result::queue};  // a chain to free
    // Room again (another writer split it meanwhile): the plain leaf write
    // is for that, through the queue this once.
    if (v.free_bytes() >= cell.size() + 2) return {leaf_write_result::queue};
  }

  std::lock_guard alloc(alloc_mu);
  tree_writer tw(*pool, file, 2 * page::size,
                 [](tree_writer&) { throw std::logic_error("kv: a leaf split wrote overflow pages"); }, split_stock);
  try {
    tw.split_under(parent_pg, parent.data(), leaf_pg, leaf.data(), cell);
  } catch (const tree_writer::parent_full&) {
    return {leaf_write_result::queue};
  }
  tw.finish();
  // The other pages (the new one, the meta page, a free-list page), latched
  // before the append like the leaf and the parent.
  const auto& fresh = tw.fresh_pages();
  struct other {
    pagecache::page_ref ref;
    const tree_writer::page_bytes* bytes;
  };
  std::vector<other> others;
  std::vector<std::pair<std::byte*, const tree_writer::page_bytes*>> mine;
  for (const auto& [pg, bytes] : tw.final_pages()) {
    if (pg == leaf_pg) {
      mine.emplace_back(leaf.data(), bytes);
    } else if (pg == parent_pg) {
      mine.emplace_back(parent.data(), bytes);
    } else {
      const bool whole_new = std::find(fresh.begin(), fresh.end(), pg) != fresh.end();
      others.push_back({whole_new ? pool->fetch_new({file, pg}) : fetch(pg), bytes});
    }
  }
  std::vector<std::unique_lock<pagecache::page_latch>> latches;
  latches.reserve(others.size());
  for (auto& o : others) latches.emplace_back(o.ref.latch());
  buffer_guard wb(*wbuf, key);  // as in leaf_write.cpp
  if (wb.buffered()) tw.final_record().buffer_drop(key);
  tw.final_record().note(true, key, value.size());  // the leaf's put is inside its image
  const auto bytes = tw.final_record().finish();
  const lsn_t lsn = log->append(bytes);
  for (auto& [dst, src] : mine) std::memcpy(dst, src->data(), page::size);
  leaf.mark_dirty(lsn);
  parent.mark_dirty(lsn);
  for (auto& o : others) {
    std::memcpy(o.ref.data(), o.bytes->data(), page::size);
    o.ref.mark_dirty(lsn);
  }
  wb.drop();
  note_logged(bytes.size());
  return {leaf_write_result::done, lsn};
}

}  // namespace pageio::kv
