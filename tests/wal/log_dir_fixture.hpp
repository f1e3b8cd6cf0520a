// A fresh directory for one log, and options for it: the sync backend, the
// log in <dir>/log. Suites set the rest in their own SetUp after this one's
// (returning when it skipped: no O_DIRECT file system here).
#pragma once

#include <pageio/wal/log.hpp>

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "support/test_dir.hpp"

namespace pageio::wal::test_support {

class log_dir_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::test_dir::create(&why);
    if (!dir_) GTEST_SKIP() << why;
    opts_.dir = dir_->path() / "log";
    opts_.backend = "sync";
  }
  std::optional<test::test_dir> dir_;
  options opts_;
};

}  // namespace pageio::wal::test_support
