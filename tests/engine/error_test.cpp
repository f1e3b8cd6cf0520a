// pageio's error category and its one errno conversion (pageio/engine/error.hpp).
#include <pageio/engine/error.hpp>
#include <pageio/engine/request.hpp>

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace {

TEST(Errors, PageioCodesAreTheirOwnCategoryWithMessages) {
  const std::error_code ec = pageio::errc::corruption;  // implicit, as std::errc's are
  EXPECT_EQ(std::string(ec.category().name()), "pageio");
  EXPECT_EQ(&ec.category(), &pageio::error_category());
  EXPECT_EQ(ec.message(), "data on disk is damaged");
  for (auto e : {pageio::errc::corruption, pageio::errc::pool_exhausted, pageio::errc::log_failed,
                 pageio::errc::closed, pageio::errc::locked}) {
    const std::error_code c = e;
    EXPECT_TRUE(c) << "a pageio code is an error";
    EXPECT_EQ(c.message().find("unknown"), std::string::npos) << c.message();
    EXPECT_NE(c, std::error_code(c.value(), std::system_category())) << "never equal to the errno of the same number";
  }
  EXPECT_NE(std::error_code(pageio::errc::closed), pageio::errc::log_failed);
}

TEST(Errors, AResultBecomesAnErrnoCodeOrNone) {
  EXPECT_FALSE(pageio::result_code(0));
  EXPECT_FALSE(pageio::result_code(4096));
  EXPECT_EQ(pageio::result_code(-EIO), std::error_code(EIO, std::system_category()));
  EXPECT_EQ(pageio::result_code(-ENOSPC), std::errc::no_space_on_device);
  EXPECT_EQ(pageio::errno_code(ECANCELED), std::errc::operation_canceled);

  pageio::io_request r;
  r.result = -EIO;
  EXPECT_EQ(r.error(), pageio::result_code(-EIO)) << "a request's error is the same conversion";
  r.result = 512;
  EXPECT_FALSE(r.error());
}

TEST(Errors, AnErrorCarriesItsCodeAndTheCauseUnderIt) {
  const pageio::error e(pageio::errc::log_failed, "wal: writing 1 page(s) of wal-1.log", pageio::errno_code(EIO));
  EXPECT_EQ(e.code(), pageio::errc::log_failed);
  EXPECT_EQ(e.cause(), std::errc::io_error);
  EXPECT_NE(std::string(e.what()).find("wal-1.log"), std::string::npos) << e.what();
  const pageio::error plain(pageio::errc::closed, "kv: the store is closed");
  EXPECT_FALSE(plain.cause());
  try {
    throw e;
  } catch (const std::system_error& s) {  // what callers that know only the standard catch
    EXPECT_EQ(s.code(), pageio::errc::log_failed);
  }
}

}  // namespace
