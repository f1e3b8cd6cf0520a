// pageio's errors: a code in pageio's category, a message that says where
// and what to do, and the operating system's error under it. Here a store
// is closed and then used, which fails with errc::closed.
//   errors [DIR]     (the store: DIR/errdb, created if missing; DIR defaults to .)
#include <pageio/engine/error.hpp>
#include <pageio/kv/store.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  pageio::kv::store db(pageio::kv::options{.dir = std::string(argc > 1 ? argv[1] : ".") + "/errdb"});
  db.close();
  try {
    db.put("key", "value");
  } catch (const pageio::error& e) {
    if (e.code() == pageio::errc::log_failed) std::printf("the log failed: reopen the store to recover\n");
    std::printf("%s [under it: %s]\n", e.what(), e.cause() ? e.cause().message().c_str() : "no OS error");
    return e.code() == pageio::errc::closed ? 0 : 1;
  }
  return 1;
}
