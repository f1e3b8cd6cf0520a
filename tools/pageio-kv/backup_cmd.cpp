#include "backup_cmd.hpp"

#include <pageio/kv/store.hpp>

#include <pageio/engine/file_system.hpp>

#include "run_info.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace pageio::kv::tool {

namespace {

namespace fs = std::filesystem;

bool is_store(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p / "data", ec) && fs::is_directory(p / "wal", ec);
}

bool within(const fs::path& inner, const fs::path& outer) {
  const auto a = fs::weakly_canonical(inner), b = fs::weakly_canonical(outer);
  auto i = a.begin();
  for (auto j = b.begin(); j != b.end(); ++j, ++i) {
    if (i == a.end() || *i != *j) return false;
  }
  return true;
}

}  // namespace

int run_backup(const backup_flags& f) {
  std::error_code ec;
  if (within(f.to, f.dir)) {
    throw std::invalid_argument(fmt::format("--to {} is inside the store {}: back up into another directory", f.to, f.dir));
  }
  const bool replacing = fs::exists(f.to, ec);
  if (replacing && !f.force) {
    throw std::invalid_argument(
        fmt::format("--to {} exists: give a new directory, or --force to replace an earlier backup there", f.to));
  }
  if (replacing && !is_store(f.to)) {
    throw std::invalid_argument(fmt::format(
        "--to {} exists and is not a pageio store (no data file and wal/ directory): --force replaces only an "
        "earlier backup; move it aside yourself",
        f.to));
  }
  options o;
  o.dir = f.dir;
  o.create_if_missing = false;
  store db(o);
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  auto progress = [&](std::uint64_t done, std::uint64_t total) {
    if (!tty) return;
    fmt::print(stderr, "\rcopied {} of about {} MiB", done >> 20, total >> 20);
    std::fflush(stderr);
  };
  // Replacing: the new backup is made beside the old one, and only then
  // takes its name (a crash between leaves <to>.new-backup, whole).
  const fs::path target = replacing ? fs::path(f.to + ".new-backup") : fs::path(f.to);
  if (replacing && fs::exists(target, ec)) fs::remove_all(target);  // ours, from a run that did not finish
  const store::backup_result r = db.backup(target, progress);
  if (tty) fmt::print(stderr, "\n");
  if (replacing) {
    // The old backup goes aside, the new one takes its name, and only then
    // is the old one removed: a crash leaves one whole backup under --to.
    const fs::path old = f.to + ".replaced-backup";
    if (fs::exists(old, ec)) fs::remove_all(old);
    fs::rename(f.to, old);
    fs::rename(target, f.to);
    const auto parent = fs::absolute(f.to).parent_path();
    // The rename is durable with its directory.
    pageio::posix_file_system()->sync_directory(parent);
    fs::remove_all(old);
  }
  if (f.json) {
    nlohmann::json j{{"dir", f.dir},
                     {"to", f.to},
                     {"lsn", r.lsn},
                     {"data_pages", r.data_pages},
                     {"log_segments", r.log_segments},
                     {"bytes", r.bytes},
                     {"seconds", r.seconds}};
    pageio::tools::stamp(j, "pageio-kv", f.dir);
    fmt::print("{}\n", j.dump());
  } else {
    fmt::print("backup of {} in {}: the store at LSN {}\n", f.dir, f.to, r.lsn);
    fmt::print("{} data page(s), {} log segment(s), {:.1f} MiB in {:.2f} s\n", r.data_pages, r.log_segments,
               static_cast<double>(r.bytes) / (1 << 20), r.seconds);
  }
  return 0;
}

}  // namespace pageio::kv::tool
