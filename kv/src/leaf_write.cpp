// A put or delete that stays inside its leaf, done by the writer's own thread
// without the writers' queue: under tree_mu held shared (no split, merge or
// new root meanwhile: those hold it exclusively) and the leaf's latch held
// exclusively, it plans the change on a copy of the leaf, appends a one-change
// record, copies the leaf back and marks it dirty with the record's LSN, then
// waits for the log as any committer does, sharing its group commits. Many
// writers on different leaves thus run at once; the queue's leader (store.cpp)
// is left the changes that reach beyond one leaf.
//
// Why this is safe (docs/kv.md, "Concurrency"):
//  - a page's records are appended in the order its changes are made (the
//    latch is held from the append to the mark), so redo by page LSN repeats
//    them in order; a change of another leaf is independent of this one;
//  - the change is applied to the page only after its record was appended:
//    if the append fails, the page is as it was;
//  - the record's change applied to the leaf's bytes before it gives exactly
//    the bytes written here (the same page::view code runs in redo);
//  - a checkpoint takes tree_mu exclusively to read its redo LSN, so no
//    writer is between an append and its mark then.
#include "record.hpp"
#include "store_impl.hpp"

#include <cstring>
#include <shared_mutex>

namespace pageio::kv {

store::impl::leaf_write_result store::impl::try_leaf_write(std::string_view key, std::string_view value, int kind,
                                                          bool may_read, bool may_buffer) {
  const bool put = kind == 0;
  std::vector<std::byte> cell;
  if (put) {
    if (page::leaf_cell_size(key.size(), value.size(), false) > page::max_leaf_cell) return {leaf_write_result::queue};
    cell.resize(page::leaf_cell_size(key.size(), value.size(), false));
    page::make_leaf_cell(cell.data(), key, std::as_bytes(std::span(value)));
  }
  std::shared_lock tree(tree_mu);
  check_open();
  std::optional<latched_path> path = descend_path(key, may_read, latch_mode::write);
  if (!path) return {leaf_write_result::not_cached};
  pagecache::page_ref& leaf = path->leaf;  // latched exclusively
  if (put && may_buffer && !leaf.dirty() && wbuf->room_hint(key.size(), value.size())) {
    return {leaf_write_result::not_cached};
  }
  std::array<std::byte, page::size> copy;
  std::memcpy(copy.data(), leaf.data(), page::size);
  page::view v(copy.data());
  bool eq = false;
  const std::size_t at = v.lower_bound(key, &eq);
  if (eq && page::parse_leaf_value(v.cell(at)).overflow) return {leaf_write_result::queue};  // a chain to free
  const auto pg = static_cast<std::uint32_t>(leaf.id().page);
  // The key's buffered pair, if any, is stale after this change: dropped in
  // the same record. The buffer's lock is held across the append either way,
  // so that no buffered put of the key falls between the look-up and the
  // append (buffered_writes.cpp).
  buffer_guard wb(*wbuf, key);
  record::builder rec;
  if (put) {
    if (!v.upsert(cell)) return {leaf_write_result::queue};  // a split
    rec.leaf_put(pg, cell);
  } else if (eq) {
    if (v.nslots() == 1) return {leaf_write_result::queue};  // the leaf empties: it may be freed
    v.erase(at);
    rec.leaf_del(pg, key);
  } else if (!wb.buffered()) {
    return {leaf_write_result::done, 0};  // nothing to delete
  }
  if (wb.buffered()) rec.buffer_drop(key);
  const auto bytes = rec.finish();
  const lsn_t lsn = log->append(bytes);
  if (put || eq) {
    std::memcpy(leaf.data(), copy.data(), page::size);
    leaf.mark_dirty(lsn);
  }
  wb.drop();
  note_logged(bytes.size());
  return {leaf_write_result::done, lsn};
}

}  // namespace pageio::kv
