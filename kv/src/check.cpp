// store::check(): reads every page and checks the tree, the overflow chains
// and the free list against each other. Writers and readers are held off
// (writer_mu, and tree_mu exclusively: a write that stays in its leaf takes
// it shared). A page that fails the pool's checksum is reported
// and not descended into; a page whose bytes do not parse is reported
// without reading past its end.
#include "store_impl.hpp"

#include <pageio/pagecache/buffer_pool.hpp>

#include <optional>
#include <string>
#include <vector>

namespace pageio::kv {

namespace {

const char* kind_name(page::type t) {
  switch (t) {
    case page::type::never_written: return "never written";
    case page::type::meta: return "meta";
    case page::type::leaf: return "leaf";
    case page::type::internal: return "internal";
    case page::type::overflow: return "overflow";
    case page::type::trunk: return "free-list trunk";
  }
  return "unknown";
}

class checker {
 public:
  checker(store::impl& s, check_report& r) : s_(s), r_(r) {}

  void run() {
    std::optional<page::meta_fields> meta;
    read(0, [&](const std::byte* p) {
      const page::meta_fields m = page::read_meta(p);
      if (page::view(const_cast<std::byte*>(p)).kind() != page::type::meta || m.magic != page::meta_magic) {
        problem(0, "not a pageio::kv meta page");
      } else if (m.version != page::meta_version) {
        problem(0, "meta page version " + std::to_string(m.version) + ", this build reads version 1");
      } else {
        meta = m;
      }
    });
    if (!meta) return;
    r_.pages = meta->page_count;
    r_.height = meta->height;
    owner_.assign(meta->page_count, 0);
    if (meta->page_count > 0) owner_[0] = 1;
    if (meta->root == 0 || meta->root >= meta->page_count) {
      problem(0, "the root page " + std::to_string(meta->root) + " is outside the file's " +
                     std::to_string(meta->page_count) + " pages");
      return;
    }
    if (claim(meta->root, 2, 0)) tree(meta->root, meta->height - 1, std::nullopt, std::nullopt, meta->height);
    for (std::size_t i = 0; i + 1 < leaves_.size(); ++i) {
      if (leaves_[i].second != leaves_[i + 1].first) {
        problem(leaves_[i].first, "right sibling is page " + std::to_string(leaves_[i].second) +
                                      ", the next leaf in key order is page " + std::to_string(leaves_[i + 1].first));
      }
    }
    if (!leaves_.empty() && leaves_.back().second != 0) {
      problem(leaves_.back().first, "the last leaf links to page " + std::to_string(leaves_.back().second));
    }
    free_list(*meta);
    for (std::uint32_t pg = 1; pg < meta->page_count; ++pg) {
      if (owner_[pg] == 0) problem(pg, "neither in the tree nor on the free list (a leaked page)");
    }
  }

 private:
  template <typename F>
  bool read(std::uint32_t pg, F&& f) {
    try {
      pagecache::page_ref ref = s_.fetch(pg);
      f(ref.data());
      return true;
    } catch (const pagecache::corruption_error& e) {
      problem(pg, std::string("fails its check: ") + e.what());
    } catch (const std::exception& e) {
      problem(pg, std::string("cannot be read: ") + e.what());
    }
    return false;
  }

  void problem(std::uint64_t pg, std::string what) {
    if (r_.problems.size() < 1000) r_.problems.push_back({pg, std::move(what)});
  }

  bool claim(std::uint32_t pg, std::uint8_t as, std::uint32_t from) {
    if (pg == 0 || pg >= owner_.size()) {
      problem(from, "refers to page " + std::to_string(pg) + ", outside the file's " + std::to_string(owner_.size()) +
                        " pages");
      return false;
    }
    if (owner_[pg] != 0) {
      problem(pg, "used twice (referred to again by page " + std::to_string(from) + ")");
      return false;
    }
    owner_[pg] = as;
    return true;
  }

  // The slots and cells lie inside the page; returns false (reported) if not.
  bool layout_ok(std::uint32_t pg, const std::byte* p, page::type t) {
    const std::size_t n = page::ld16(p + 2), top = page::ld16(p + 4);
    if (page::header_size + 2 * n > top || top > page::size) {
      problem(pg, "slot array and cell area overlap (" + std::to_string(n) + " slots, cells from byte " +
                      std::to_string(top) + ")");
      return false;
    }
    const std::size_t hdr = t == page::type::internal ? page::internal_cell_header : page::leaf_cell_header;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t off = page::ld16(p + page::header_size + 2 * i);
      if (off < top || off + hdr > page::size) {
        problem(pg, "slot " + std::to_string(i) + " points outside the cell area");
        return false;
      }
      std::size_t len = hdr + page::ld16(p + off);
      if (t == page::type::leaf) {
        const bool ovf = (static_cast<std::uint8_t>(p[off + 2]) & page::cell_overflow) != 0;
        len += ovf ? 4 : page::ld32(p + off + 3);
      }
      if (off + len > page::size) {
        problem(pg, "cell " + std::to_string(i) + " runs past the end of the page");
        return false;
      }
    }
    return true;
  }

  void tree(std::uint32_t pg, std::uint32_t level, std::optional<std::string> lo, std::optional<std::string> hi,
            std::uint32_t budget) {
    if (budget == 0) {
      problem(pg, "the tree is deeper than the meta page's height");
      return;
    }
    struct child_range {
      std::uint32_t child;
      std::optional<std::string> lo, hi;
    };
    std::vector<child_range> children;
    std::vector<std::pair<std::uint32_t, std::uint64_t>> chains;  // overflow: first page, length
    read(pg, [&](const std::byte* p) {
      page::view v(const_cast<std::byte*>(p));
      const page::type want = level == 0 ? page::type::leaf : page::type::internal;
      if (v.kind() != want) {
        problem(pg, std::string("expected a ") + kind_name(want) + " page at level " + std::to_string(level) +
                        ", found a " + kind_name(v.kind()) + " page");
        return;
      }
      if (v.level() != level && level < 255) {
        problem(pg, "says level " + std::to_string(v.level()) + ", lies at level " + std::to_string(level));
      }
      if (!layout_ok(pg, p, want)) return;
      std::optional<std::string> prev;
      for (std::size_t i = 0; i < v.nslots(); ++i) {
        const std::string k(v.key(i));
        if (k.empty() || k.size() > page::max_key) problem(pg, "key " + std::to_string(i) + " has a bad length");
        if (prev && !(*prev < k)) problem(pg, "keys out of order at slot " + std::to_string(i));
        if (lo && k < *lo) problem(pg, "slot " + std::to_string(i) + "'s key is below its parent's fence");
        if (hi && !(k < *hi)) problem(pg, "slot " + std::to_string(i) + "'s key is at or above its parent's fence");
        prev = k;
      }
      if (want == page::type::leaf) {
        ++r_.leaf_pages;
        r_.keys += v.nslots();
        leaves_.emplace_back(pg, v.right());
        for (std::size_t i = 0; i < v.nslots(); ++i) {
          const page::leaf_value lv = page::parse_leaf_value(v.cell(i));
          if (lv.overflow) {
            chains.emplace_back(lv.first_page, lv.length);
          } else if (lv.length > page::max_leaf_cell) {
            problem(pg, "an inline value of " + std::to_string(lv.length) + " bytes");
          }
        }
        return;
      }
      ++r_.internal_pages;
      if (v.nslots() == 0) problem(pg, "an internal page with no keys");
      children.push_back({v.child0(), lo, v.nslots() ? std::optional<std::string>(std::string(v.key(0))) : hi});
      for (std::size_t i = 0; i < v.nslots(); ++i) {
        children.push_back({v.child(i), std::string(v.key(i)),
                            i + 1 < v.nslots() ? std::optional<std::string>(std::string(v.key(i + 1))) : hi});
      }
    });
    for (const auto& [first, length] : chains) overflow(pg, first, length);
    for (const auto& c : children) {
      if (claim(c.child, 2, pg)) tree(c.child, level - 1, c.lo, c.hi, budget - 1);
    }
  }

  void overflow(std::uint32_t leaf, std::uint32_t first, std::uint64_t length) {
    std::uint64_t seen = 0;
    std::uint32_t pg = first, from = leaf;
    while (seen < length) {
      if (!claim(pg, 3, from)) return;
      std::uint32_t next = 0;
      bool ok = false;
      read(pg, [&](const std::byte* p) {
        page::view v(const_cast<std::byte*>(p));
        const std::uint32_t used = page::ld32(p + page::header_size);
        if (v.kind() != page::type::overflow) {
          problem(pg, std::string("expected an overflow page (a value of leaf ") + std::to_string(leaf) +
                          "), found a " + kind_name(v.kind()) + " page");
        } else if (used == 0 || used > page::overflow_capacity || used > length - seen) {
          problem(pg, "overflow page holds " + std::to_string(used) + " bytes, its value needs " +
                          std::to_string(length - seen) + " more");
        } else {
          ++r_.overflow_pages;
          seen += used;
          next = v.right();
          ok = true;
        }
      });
      if (!ok) return;
      if (seen < length && next == 0) {
        problem(pg, "an overflow chain of leaf " + std::to_string(leaf) + " ends early");
        return;
      }
      from = pg;
      pg = next;
    }
  }

  void free_list(const page::meta_fields& meta) {
    std::uint64_t count = 0;
    std::uint32_t trunk = meta.free_head, from = 0;
    while (trunk != 0) {
      if (!claim(trunk, 4, from)) return;
      ++count;
      ++r_.trunk_pages;
      std::vector<std::uint32_t> entries;
      std::uint32_t next = 0;
      read(trunk, [&](const std::byte* p) {
        page::view v(const_cast<std::byte*>(p));
        if (v.kind() != page::type::trunk || v.nslots() > page::trunk_capacity) {
          problem(trunk, std::string("expected a free-list trunk, found a ") + kind_name(v.kind()) + " page");
          return;
        }
        for (std::size_t i = 0; i < v.nslots(); ++i) entries.push_back(page::ld32(p + page::header_size + 4 * i));
        next = v.right();
      });
      for (std::uint32_t e : entries) {
        if (claim(e, 5, trunk)) {
          ++count;
          ++r_.free_pages;
        }
      }
      from = trunk;
      trunk = next;
    }
    if (count != meta.free_pages) {
      problem(0, "the meta page counts " + std::to_string(meta.free_pages) + " free pages, the free list holds " +
                     std::to_string(count));
    }
  }

  store::impl& s_;
  check_report& r_;
  std::vector<std::uint8_t> owner_;                          // per page: 0 unclaimed, else what claimed it
  std::vector<std::pair<std::uint32_t, std::uint32_t>> leaves_;  // page, right sibling, in key order
};

}  // namespace

check_report store::check() {
  impl& s = *impl_;
  s.check_open();
  s.check_readable();
  check_report r;
  std::lock_guard w(s.writer_mu);
  std::unique_lock tree(s.tree_mu);  // leaf writes too hold off (they take it shared)
  checker(s, r).run();
  // The write buffer's pairs: a key only there is a key of the store too.
  std::vector<write_buffer::pair> buffered;
  s.wbuf->range({}, false, nullptr, buffered);
  r.buffered_pairs = buffered.size();
  for (const auto& p : buffered) {
    try {
      const auto leaf = s.descend(p.key);
      bool eq = false;
      page::view(leaf->page.data()).lower_bound(p.key, &eq);
      if (!eq) ++r.keys;
    } catch (const std::exception&) {
      // A damaged path: reported above by the walk over every page.
    }
  }
  return r;
}

}  // namespace pageio::kv
