// The write buffer inside one group of the writers' queue: changes of the
// same key planned together by the leader, in an order no public call can
// pin down (it depends on who queues behind whom), set up here through the
// store's internals.
#include "../../kv/src/store_impl.hpp"

#include <pageio/kv/store.hpp>

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "support/test_dir.hpp"

namespace pageio::kv {

struct store_test_access {
  static store::impl& of(store& db) { return *db.impl_; }
};

namespace {

class kv_write_buffer_group_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
  }
  options opts() const {
    options o;
    o.dir = dir_->path() / "db";
    o.sync = false;
    o.checkpoint_log_bytes = 0;
    o.checkpoint_interval_ms = 0;
    return o;
  }
  std::optional<test::test_dir> dir_;
};

// A batch's put of K, then the merger's run holding K's older buffered pair,
// in one group: the merge must not put the older value back.
TEST_F(kv_write_buffer_group_test, AMergeAfterAPutOfItsKeyInTheSameGroupLeavesThePut) {
  {
    store db(opts());
    db.put("a", "x");
    db.checkpoint();    // the leaf is clean: the next put is buffered
    db.put("k", "v1");
    ASSERT_EQ(db.stats().buffered_pairs, 1u);
    store::impl& s = store_test_access::of(db);
    const auto run = s.wbuf->run_from("k", 1);
    ASSERT_EQ(run.size(), 1u);
    write_batch b;
    b.put("k", "v2");
    store::impl::pending_write batch(&b, {}, {}, 2);
    store::impl::pending_write merge(nullptr, {}, {}, 3, &run);
    s.apply_writes({&batch, &merge});
    ASSERT_FALSE(batch.error);
    ASSERT_FALSE(merge.error);
    EXPECT_EQ(db.get("k"), "v2");
    EXPECT_EQ(db.stats().buffered_pairs, 0u);
    EXPECT_EQ(db.stats().merged_pairs, 0u);  // the merge found its pair stale
  }
  store db(opts());
  EXPECT_EQ(db.get("k"), "v2");  // and so does redo
}

// Two deletes of a key that is in the tree and (newer) in the buffer, in one
// group: the first deletes it, the second finds nothing.
TEST_F(kv_write_buffer_group_test, TheSecondDeleteOfABufferedKeyInOneGroupFindsNothing) {
  store db(opts());
  db.put("k", "v0");
  db.checkpoint();
  db.put("k", "v1");  // buffered over the tree's v0
  ASSERT_EQ(db.stats().buffered_pairs, 1u);
  store::impl& s = store_test_access::of(db);
  store::impl::pending_write first(nullptr, "k", {}, 1), second(nullptr, "k", {}, 1);
  s.apply_writes({&first, &second});
  EXPECT_NE(first.lsn, 0u);
  EXPECT_EQ(second.lsn, 0u);
  EXPECT_FALSE(db.get("k").has_value());
}

}  // namespace
}  // namespace pageio::kv
