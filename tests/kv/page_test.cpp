// The store's slotted page at its edges: full pages, the smallest and the
// largest keys, replacing cells of other sizes, compaction, and the record
// format's round trip and its refusal of damaged records.
#include "../../kv/src/page.hpp"
#include "../../kv/src/record.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

namespace pageio::kv {
namespace {

using bytes = std::array<std::byte, page::size>;

std::vector<std::byte> leaf_cell(const std::string& k, const std::string& v) {
  std::vector<std::byte> c(page::leaf_cell_size(k.size(), v.size(), false));
  page::make_leaf_cell(c.data(), k, std::as_bytes(std::span(v)));
  return c;
}

std::string value_of(const page::view& v, std::size_t i) {
  const auto lv = page::parse_leaf_value(v.cell(i));
  return {reinterpret_cast<const char*>(lv.inline_bytes.data()), lv.inline_bytes.size()};
}

TEST(KvPage, CellsStayInKeyOrderAndAreFoundByKey) {
  bytes b{};
  page::view v(b.data());
  v.init(page::type::leaf, 0);
  for (const char* k : {"m", "a", "z", "b", "y"}) ASSERT_TRUE(v.upsert(leaf_cell(k, std::string("v") + k)));
  ASSERT_EQ(v.nslots(), 5u);
  const char* sorted[] = {"a", "b", "m", "y", "z"};
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(v.key(i), sorted[i]);
    EXPECT_EQ(value_of(v, i), std::string("v") + sorted[i]);
  }
  bool eq = false;
  EXPECT_EQ(v.lower_bound("c", &eq), 2u);
  EXPECT_FALSE(eq);
  EXPECT_EQ(v.lower_bound("y", &eq), 3u);
  EXPECT_TRUE(eq);
}

TEST(KvPage, AFullPageRefusesTheNextCellAndIsLeftUnchanged) {
  bytes b{};
  page::view v(b.data());
  v.init(page::type::leaf, 0);
  int n = 0;
  for (;; ++n) {
    char k[16];
    std::snprintf(k, sizeof k, "key%06d", n);
    if (!v.upsert(leaf_cell(k, std::string(100, 'x')))) break;
  }
  EXPECT_GT(n, 20);
  const bytes before = b;
  EXPECT_FALSE(v.upsert(leaf_cell("zzz", std::string(100, 'y'))));
  EXPECT_EQ(b, before);
  EXPECT_LT(v.free_bytes(), page::leaf_cell_size(3, 100, false) + 2);
}

TEST(KvPage, ReplacingWithLargerAndSmallerValuesReusesTheSpace) {
  bytes b{};
  page::view v(b.data());
  v.init(page::type::leaf, 0);
  ASSERT_TRUE(v.upsert(leaf_cell("a", std::string(1000, 'a'))));
  ASSERT_TRUE(v.upsert(leaf_cell("b", std::string(1000, 'b'))));
  ASSERT_TRUE(v.upsert(leaf_cell("c", std::string(1000, 'c'))));
  const std::size_t free_with_three = v.free_bytes();
  // Overwrite each many times with other sizes: fragmentation is compacted
  // away, and the free space comes back to the same figure.
  for (int round = 0; round < 50; ++round) {
    for (const char* k : {"a", "b", "c"}) {
      ASSERT_TRUE(v.upsert(leaf_cell(k, std::string(10 + (round * 37) % 990, k[0])))) << round;
    }
  }
  for (const char* k : {"a", "b", "c"}) ASSERT_TRUE(v.upsert(leaf_cell(k, std::string(1000, k[0]))));
  EXPECT_EQ(v.free_bytes(), free_with_three);
  EXPECT_EQ(value_of(v, 1), std::string(1000, 'b'));
}

TEST(KvPage, ThreeLargestCellsFitAndAFourthDoesNot) {
  bytes b{};
  page::view v(b.data());
  v.init(page::type::leaf, 0);
  const std::string big_key(page::max_key, 'k');
  // The largest inline cell: key + value = max_leaf_cell - header.
  for (char c : {'a', 'b', 'c'}) {
    std::string k = big_key;
    k[0] = c;
    const std::string val(page::max_leaf_cell - page::leaf_cell_header - k.size(), c);
    ASSERT_TRUE(v.upsert(leaf_cell(k, val)));
  }
  std::string k = big_key;
  k[0] = 'd';
  EXPECT_FALSE(v.upsert(leaf_cell(k, std::string(page::max_leaf_cell - page::leaf_cell_header - k.size(), 'd'))));
  EXPECT_EQ(v.key(0).size(), page::max_key);
}

TEST(KvPage, SmallestKeysAndEmptyValues) {
  bytes b{};
  page::view v(b.data());
  v.init(page::type::leaf, 0);
  for (int c = 1; c < 256; ++c) ASSERT_TRUE(v.upsert(leaf_cell(std::string(1, static_cast<char>(c)), "")));
  ASSERT_EQ(v.nslots(), 255u);
  EXPECT_EQ(v.key(0), std::string(1, '\x01'));
  EXPECT_EQ(v.key(254), std::string(1, '\xff'));
  EXPECT_EQ(value_of(v, 7), "");
  for (int c = 1; c < 256; c += 2) ASSERT_TRUE(v.erase_key(std::string(1, static_cast<char>(c))));
  EXPECT_EQ(v.nslots(), 127u);
  EXPECT_FALSE(v.erase_key(std::string(1, '\x01')));
}

TEST(KvPage, InternalPagesRouteKeysToChildren) {
  bytes b{};
  page::view v(b.data());
  v.init(page::type::internal, 1);
  v.set_child0(10);
  for (auto [k, c] : {std::pair{"g", 11u}, {"p", 12u}}) {
    std::vector<std::byte> cell(page::internal_cell_size(std::strlen(k)));
    page::make_internal_cell(cell.data(), k, c);
    ASSERT_TRUE(v.upsert(cell));
  }
  EXPECT_EQ(v.child_for("a"), 10u);
  EXPECT_EQ(v.child_for("g"), 11u);
  EXPECT_EQ(v.child_for("h"), 11u);
  EXPECT_EQ(v.child_for("p"), 12u);
  EXPECT_EQ(v.child_for("zzz"), 12u);
  EXPECT_EQ(v.child_for(""), 10u);
}

TEST(KvRecord, ChangesRoundTripAndApplyAsPlanned) {
  bytes before{};
  page::view(before.data()).init(page::type::leaf, 0);
  ASSERT_TRUE(page::view(before.data()).upsert(leaf_cell("k1", "old")));
  record::builder rb;
  rb.leaf_put(7, leaf_cell("k2", "two"));
  rb.leaf_del(7, "k1");
  bytes img{};
  page::view(img.data()).init(page::type::internal, 1);
  rb.image(9, img.data());
  const auto rec = rb.finish();
  const record::decoded d = record::decode(rec);
  ASSERT_EQ(d.changes.size(), 3u);
  EXPECT_FALSE(d.partial);
  EXPECT_GT(d.time_us, 1'700'000'000'000'000ull);  // after 2023
  bytes p = before;
  record::apply(d.changes[0], p.data());
  record::apply(d.changes[1], p.data());
  page::view v(p.data());
  ASSERT_EQ(v.nslots(), 1u);
  EXPECT_EQ(v.key(0), "k2");
  bytes q{};
  record::apply(d.changes[2], q.data());
  EXPECT_EQ(q, img);
}

TEST(KvRecord, DamagedRecordsAreRefusedSayingWhy) {
  record::builder rb;
  rb.leaf_del(3, "key");
  const auto good = rb.finish();
  std::vector<std::byte> rec(good.begin(), good.end());
  EXPECT_THROW(record::decode(std::span(rec).first(10)), record::malformed);
  EXPECT_THROW(record::decode(std::span(rec).first(rec.size() - 1)), record::malformed);
  auto wrong_kind = rec;
  wrong_kind[0] = std::byte{9};
  EXPECT_THROW(record::decode(wrong_kind), record::malformed);
  auto wrong_op = rec;
  wrong_op[record::header_size] = std::byte{77};
  try {
    record::decode(wrong_op);
    FAIL() << "decoded an unknown operation";
  } catch (const record::malformed& e) {
    EXPECT_NE(std::string(e.what()).find("unknown operation 77"), std::string::npos) << e.what();
  }
  // A delete of a key the page lacks does not apply.
  bytes p{};
  page::view(p.data()).init(page::type::leaf, 0);
  EXPECT_THROW(record::apply(record::decode(rec).changes[0], p.data()), record::malformed);
}

TEST(KvRecord, PageImagesLeaveOutTheirZeroMiddleAndApplyToTheSameBytes) {
  // A half-full leaf whose free middle once held cells (compaction leaves
  // their bytes behind): zeroed, it is logged without that middle.
  bytes leaf{};
  page::view v(leaf.data());
  v.init(page::type::leaf, 0);
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(v.upsert(leaf_cell("key" + std::to_string(100 + i), std::string(100, 'v'))));
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(v.erase_key("key" + std::to_string(100 + i)));
  const std::size_t slots_end = page::header_size + 2 * v.nslots();
  v.zero_gap();
  for (std::size_t i = slots_end; i < v.cell_top(); ++i) ASSERT_EQ(leaf[i], std::byte{0}) << "byte " << i;
  bytes meta{};
  page::meta_fields m;
  m.root = 5;
  m.page_count = 9;
  page::write_meta(meta.data(), m);
  bytes full{};
  for (std::size_t i = 0; i < full.size(); ++i) full[i] = static_cast<std::byte>(1 + i % 251);  // no zero run
  record::builder rb;
  rb.image(4, leaf.data());
  rb.image(0, meta.data());
  rb.image(8, full.data());
  const auto rec = rb.finish();
  EXPECT_LT(rec.size(), record::header_size + 2 * page::size) << "the leaf and meta images left nothing out";
  const record::decoded d = record::decode(rec);
  ASSERT_EQ(d.changes.size(), 3u);
  EXPECT_EQ(d.changes[0].kind, record::op::image_gap);
  EXPECT_EQ(d.changes[1].kind, record::op::image_gap);
  EXPECT_EQ(d.changes[2].kind, record::op::image);
  // Applied over pages full of other bytes, each becomes exactly its image.
  for (std::size_t i = 0; i < 3; ++i) {
    bytes target;
    target.fill(std::byte{0xAB});
    record::apply(d.changes[i], target.data());
    EXPECT_EQ(target, i == 0 ? leaf : i == 1 ? meta : full) << "change " << i;
  }
  // A gap that does not fit a page is refused.
  std::vector<std::byte> bad(rec.begin(), rec.end());
  page::st16(bad.data() + record::header_size + 5, 5000);
  EXPECT_THROW(record::decode(bad), record::malformed);
}

TEST(KvRecord, ASeparatorIsPutIntoAnInternalPageOnly) {
  bytes internal{};
  page::view v(internal.data());
  v.init(page::type::internal, 1);
  v.set_child0(10);
  std::vector<std::byte> cell(page::internal_cell_size(1));
  page::make_internal_cell(cell.data(), "m", 11);
  record::builder rb;
  rb.internal_put(3, cell);
  const auto rec = rb.finish();
  const record::decoded d = record::decode(rec);
  ASSERT_EQ(d.changes.size(), 1u);
  EXPECT_EQ(d.changes[0].kind, record::op::internal_put);
  record::apply(d.changes[0], internal.data());
  EXPECT_EQ(v.child_for("a"), 10u);
  EXPECT_EQ(v.child_for("m"), 11u);
  EXPECT_EQ(v.child_for("z"), 11u);
  // Into a leaf it does not apply: the log and the data file disagree.
  bytes leaf{};
  page::view(leaf.data()).init(page::type::leaf, 0);
  EXPECT_THROW(record::apply(d.changes[0], leaf.data()), record::malformed);
}

TEST(KvRecord, ALeafCutKeepsItsFirstCellsCompactedAndLinksTheNewRightHalf) {
  bytes leaf{};
  page::view v(leaf.data());
  v.init(page::type::leaf, 0);
  v.set_right(40);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(v.upsert(leaf_cell("key" + std::to_string(100 + i), std::string(150, 'v'))));
  record::builder rb;
  rb.leaf_cut(7, 12, 41);
  const auto rec = rb.finish();
  EXPECT_LT(rec.size(), record::header_size + 16u) << "a cut is a few bytes, not an image";
  const record::decoded d = record::decode(rec);
  ASSERT_EQ(d.changes.size(), 1u);
  EXPECT_EQ(d.changes[0].kind, record::op::leaf_cut);
  bytes redone = leaf;
  record::apply(d.changes[0], redone.data());
  page::view r(redone.data());
  ASSERT_EQ(r.nslots(), 12u);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(r.key(static_cast<std::size_t>(i)), "key" + std::to_string(100 + i));
  EXPECT_EQ(r.right(), 41u);
  EXPECT_EQ(r.frag(), 0u) << "compacted";
  for (std::size_t i = page::header_size + 2 * 12; i < r.cell_top(); ++i) ASSERT_EQ(redone[i], std::byte{0}) << i;
  // The same as the runtime's cut with the same page::view code.
  v.truncate(12);
  v.set_right(41);
  EXPECT_EQ(redone, leaf);
  // Keeping more cells than the page holds, a cut of another length, a cut
  // of an internal page: the log and the data file disagree.
  record::builder more;
  more.leaf_cut(7, 13, 41);
  EXPECT_THROW(record::apply(record::decode(more.finish()).changes[0], redone.data()), record::malformed);
  std::vector<std::byte> bad(rec.begin(), rec.end());
  page::st16(bad.data() + record::header_size + 5, 5);
  EXPECT_THROW(record::decode(bad), record::malformed);
  bytes internal{};
  page::view(internal.data()).init(page::type::internal, 1);
  EXPECT_THROW(record::apply(d.changes[0], internal.data()), record::malformed);
}

TEST(KvRecord, ACheckpointRecordCarriesWhereRecoveryAndWherePageRedoStart) {
  const auto rec = record::checkpoint_record(100, 250);
  const record::decoded d = record::decode(rec);
  EXPECT_EQ(d.checkpoint, 100u);
  EXPECT_EQ(d.pages_from, 250u);
  // One written before the write buffer: one LSN, for both.
  std::vector<std::byte> old(rec.begin(), rec.begin() + record::header_size + 8);
  const record::decoded o = record::decode(old);
  EXPECT_EQ(o.checkpoint, 100u);
  EXPECT_EQ(o.pages_from, 100u);
  // Page redo before recovery's start cannot be.
  EXPECT_THROW(record::decode(record::checkpoint_record(250, 100)), record::malformed);
  std::vector<std::byte> odd(rec.begin(), rec.end() - 4);
  EXPECT_THROW(record::decode(odd), record::malformed);
}

TEST(KvRecord, WriteBufferChangesRoundTripAndApplyToNoPage) {
  record::builder b;
  std::vector<std::byte> cell(page::leaf_cell_size(3, 5, false));
  page::make_leaf_cell(cell.data(), "key", std::as_bytes(std::span(std::string_view("value"))));
  b.buffer_put(cell);
  b.buffer_drop("old");
  const auto rec = b.finish();
  const record::decoded d = record::decode(rec);
  ASSERT_EQ(d.changes.size(), 2u);
  EXPECT_EQ(d.changes[0].kind, record::op::buffer_put);
  EXPECT_FALSE(record::changes_page(d.changes[0].kind));
  EXPECT_TRUE(std::equal(d.changes[0].bytes.begin(), d.changes[0].bytes.end(), cell.begin(), cell.end()));
  EXPECT_EQ(d.changes[1].kind, record::op::buffer_drop);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(d.changes[1].bytes.data()), d.changes[1].bytes.size()),
            "old");
  std::array<std::byte, page::size> p{};
  page::view(p.data()).init(page::type::leaf, 0);
  EXPECT_THROW(record::apply(d.changes[0], p.data()), record::malformed);
}

}  // namespace
}  // namespace pageio::kv
