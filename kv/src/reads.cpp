// Point reads and range scans. A reader holds tree_mu shared while it walks
// from the root to a leaf, and the leaf's latch shared while it copies out
// what it needs; it never waits for the log. Pages change under tree_mu held
// exclusively, except a leaf changed in place by a write that stays in it
// (leaf_write.cpp), under tree_mu shared and the leaf's latch.
#include "store_impl.hpp"

#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

namespace pageio::kv {

namespace {

std::string where(const store::impl& s, std::uint32_t pg) {
  return "page " + std::to_string(pg) + " of " + (s.opts.dir / "data").string();
}

}  // namespace

std::optional<store::impl::leaf_ref> store::impl::descend(std::string_view key, bool may_read) {
  auto path = descend_path(key, may_read, latch_mode::read);
  if (!path) return std::nullopt;
  return leaf_ref{std::move(path->leaf), std::move(path->leaf_shared)};
}

std::optional<store::impl::latched_path> store::impl::descend_path(std::string_view key, bool may_read,
                                                                     latch_mode mode,
                                                                     std::optional<std::string>* high) {
  // Latch coupling: a page's latch is taken before its parent's is let go,
  // so a walk never sees a child from before a split its parent is from
  // after (splits of a leaf under a parent with room happen under tree_mu
  // shared, with the parent's and the leaf's latches exclusive:
  // leaf_split.cpp). Latches are taken top-down only.
  latched_path out;
  pagecache::page_ref above;  // latched shared (or exclusive: out.parent)
  bool above_exclusive = false;
  auto let_go_above = [&] {
    if (!above) return;
    if (above_exclusive) above.latch().unlock(); else above.latch().unlock_shared();
    above = pagecache::page_ref();
  };
  struct guard {
    decltype(let_go_above)& f;
    ~guard() { f(); }
  } g{let_go_above};
  std::uint32_t pg = root.load(std::memory_order_relaxed);
  // The level of the page about to be latched: the root's is height - 1.
  std::uint32_t level = height == 0 ? 0 : height - 1;
  for (std::uint32_t depth = 0;; ++depth) {
    pagecache::page_ref ref = may_read ? fetch(pg) : pool->try_fetch({file, pg});
    if (!ref) return std::nullopt;
    if (level == 0) {
      // A leaf is searched (a dozen dependent reads spread over the page)
      // and then copied from; asking for all its cache lines at once
      // overlaps their misses, with each other and with the latch's.
      // (Internal pages near the root are in the CPU's caches already:
      // prefetching them too measured slower.)
      for (std::size_t off = 0; off < page::size; off += 64) __builtin_prefetch(ref.data() + off);
    }
    const bool exclusive = (level == 0 && mode != latch_mode::read) || (level == 1 && mode == latch_mode::split);
    if (exclusive) ref.latch().lock(); else ref.latch().lock_shared();
    const page::view v(ref.data());
    if (v.kind() == page::type::leaf) {
      if (level != 0 || (mode != latch_mode::read && !exclusive)) {
        if (exclusive) ref.latch().unlock(); else ref.latch().unlock_shared();
        throw corruption_error(where(*this, pg) + ": a leaf at level " + std::to_string(level) +
                               " of a tree of height " + std::to_string(height));
      }
      if (mode == latch_mode::split && above_exclusive) {
        out.parent = std::move(above);
        out.parent_latch = std::unique_lock(out.parent.latch(), std::adopt_lock);
        above_exclusive = false;
      }
      let_go_above();
      out.leaf = std::move(ref);
      if (exclusive) {
        out.leaf_exclusive = std::unique_lock(out.leaf.latch(), std::adopt_lock);
      } else {
        out.leaf_shared = std::shared_lock(out.leaf.latch(), std::adopt_lock);
      }
      return out;
    }
    if (v.kind() != page::type::internal || depth >= height || level == 0 || v.level() != level) {
      if (exclusive) ref.latch().unlock(); else ref.latch().unlock_shared();
      throw corruption_error(where(*this, pg) + ": expected a tree page on the way to a leaf");
    }
    pg = v.child_for(key);
    if (high) {
      // The first separator above `key` bounds the child's keys; a deeper
      // one is tighter.
      bool eq = false;
      std::size_t i = v.lower_bound(key, &eq);
      if (eq) ++i;
      if (i < v.nslots()) *high = std::string(v.key(i));
    }
    let_go_above();
    above = std::move(ref);
    above_exclusive = exclusive;
    --level;
  }
}

void store::impl::warm_path(std::string_view key) noexcept {
  // No tree_mu: a writer may be changing these pages, so each page is read
  // under its shared latch (never half a change), and whatever is read only
  // decides which page to fetch next. A stale or odd path costs a fetch,
  // nothing else; an error is left for the write itself to meet.
  try {
    std::uint32_t pg = root.load(std::memory_order_relaxed);
    for (int depth = 0; depth < 64; ++depth) {
      pagecache::page_ref ref = fetch(pg);
      std::shared_lock latch(ref.latch());
      const page::view v(ref.data());
      if (v.kind() != page::type::internal) return;
      pg = v.child_for(key);
    }
  } catch (...) {
  }
}

std::optional<std::string> store::impl::read_value(std::span<const std::byte> cell) {
  const page::leaf_value v = page::parse_leaf_value(cell);
  if (!v.overflow) return std::string(reinterpret_cast<const char*>(v.inline_bytes.data()), v.inline_bytes.size());
  std::string out;
  out.reserve(v.length);
  std::uint32_t pg = v.first_page;
  while (out.size() < v.length) {
    if (pg == 0) throw corruption_error("an overflow chain ends before its value's " + std::to_string(v.length) + " bytes");
    pagecache::page_ref ref = fetch(pg);
    const page::view o(ref.data());
    const std::uint32_t used = page::ld32(ref.data() + page::header_size);
    if (o.kind() != page::type::overflow || used > page::overflow_capacity || used > v.length - out.size()) {
      throw corruption_error(where(*this, pg) + ": not the overflow page its value points to");
    }
    out.append(reinterpret_cast<const char*>(ref.data() + page::overflow_data_offset), used);
    pg = o.right();
  }
  return out;
}

std::optional<std::string> store::get(std::string_view key) {
  impl& s = *impl_;
  s.check_open();
  s.check_readable();
  if (key.empty() || key.size() > max_key_bytes) {
    throw std::invalid_argument("key of " + std::to_string(key.size()) + " bytes: keys are 1 to 1024 bytes");
  }
  s.gets.fetch_add(1, std::memory_order_relaxed);
  // The write buffer first: a buffered pair is newer than the tree's (it
  // leaves the buffer only once the tree has it or something newer).
  if (!s.wbuf->empty_hint()) {
    if (auto v = s.wbuf->get(key)) return v;
  }
  std::shared_lock tree(s.tree_mu);
  const auto leaf = s.descend(key);  // latched: a leaf write changes it under tree_mu shared
  const page::view v(leaf->page.data());
  bool eq = false;
  const std::size_t at = v.lower_bound(key, &eq);
  if (!eq) return std::nullopt;
  return s.read_value(v.cell(at));
}

iterator store::scan(std::optional<std::string_view> from, std::optional<std::string_view> to, std::uint64_t limit) {
  impl_->check_open();
  impl_->check_readable();
  impl_->scans.fetch_add(1, std::memory_order_relaxed);
  iterator it;
  it.db_ = this;
  if (from) it.resume_ = std::string(*from);
  if (to) it.to_ = std::string(*to);
  it.limit_ = limit;
  it.load();
  return it;
}

void iterator::next() {
  if (++pos_ < keys_.size()) return;
  load();
}

void iterator::load() {
  keys_.clear();
  values_.clear();
  pos_ = 0;
  if (exhausted_) return;
  store::impl& s = *db_->impl_;
  s.check_open();
  std::shared_lock tree(s.tree_mu);
  std::vector<write_buffer::pair> buffered;
  // A leaf's range at a time, [resume_, its high fence): the tree's pairs
  // and the write buffer's in that range, the buffer's read under the
  // leaf's latch (a change of a key in this range that drops its buffered
  // pair holds that latch: buffered_writes.cpp).
  for (;;) {
    std::optional<std::string> high;
    auto leaf = s.descend_path(resume_, /*may_read=*/true, store::impl::latch_mode::read, &high);
    const page::view v(leaf->leaf.data());
    const std::string* end = high ? &*high : nullptr;
    if (to_ && (end == nullptr || *to_ < *end)) end = &*to_;
    buffered.clear();
    if (!s.wbuf->empty_hint()) {
      s.wbuf->range(resume_, resume_open_, end, buffered, limit_ != 0 ? limit_ - returned_ : SIZE_MAX);
    }
    std::size_t i = v.lower_bound(resume_, nullptr);
    if (resume_open_ && i < v.nslots() && v.key(i) == resume_) ++i;
    std::size_t j = 0;  // into buffered
    auto full = [&] { return limit_ != 0 && returned_ >= limit_; };
    while (!full()) {
      const bool tree_left = i < v.nslots() && (end == nullptr || v.key(i) < *end);
      const bool buf_left = j < buffered.size();
      if (!tree_left && !buf_left) break;
      if (buf_left && (!tree_left || buffered[j].key <= v.key(i))) {
        if (tree_left && buffered[j].key == v.key(i)) ++i;  // the buffered pair is newer
        keys_.push_back(std::move(buffered[j].key));
        values_.push_back(std::move(buffered[j].value));
        ++j;
      } else {
        keys_.emplace_back(v.key(i));
        values_.push_back(*s.read_value(v.cell(i)));
        ++i;
      }
      ++returned_;
    }
    if (full() || end == nullptr || (to_ && end == &*to_)) {
      exhausted_ = true;
      break;
    }
    resume_ = *high;
    resume_open_ = false;
    if (!keys_.empty()) break;
    // An empty stretch (a leaf emptied by deletes): on to the next leaf.
  }
}

}  // namespace pageio::kv
