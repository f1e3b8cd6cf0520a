// The embedded key-value store: puts, an atomic batch, a get and a scan.
//   kv_store [DIR]     (the store: DIR/mydb, created if missing; DIR defaults to .)
#include <pageio/kv/store.hpp>

#include <cstdio>
#include <exception>
#include <string>

int main(int argc, char** argv) try {
  const std::string dir = std::string(argc > 1 ? argv[1] : ".") + "/mydb";
  pageio::kv::store db(pageio::kv::options{.dir = dir});   // created if missing; one process at a time
  db.put("user:1", "alice");                                // returns once durable (group commit)
  pageio::kv::write_batch b;
  b.put("user:2", "bob");
  b.del("user:1");
  db.write(b);                                              // all of it or none, after a crash too
  if (auto v = db.get("user:2")) std::printf("user:2 = %s\n", v->c_str());
  for (auto it = db.scan("user:", "user;"); it.valid(); it.next())
    std::printf("%s = %s\n", it.key().c_str(), it.value().c_str());
  return db.get("user:1") ? 1 : 0;
} catch (const std::exception& e) {  // a store locked by another process, damage, tmpfs...
  std::fprintf(stderr, "kv_store: %s\n", e.what());
  return 1;
}
