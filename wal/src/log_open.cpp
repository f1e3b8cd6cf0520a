// Opening a log: the directory made durable, leftovers of an unfinished
// segment creation removed, the log recovered, the one batch recovery drops
// erased, and what recovery read made durable before anyone is told it is.
#include "log_impl.hpp"
#include "wal_errors.hpp"

#include <pageio/wal/format.hpp>

#include <algorithm>
#include <random>

namespace pageio::wal {

namespace fmt = format;
using detail::rethrow_as;

namespace {

// A random, non-zero identity for this opening of the log: pages it writes
// never combine with pages an earlier opening wrote at the same place.
std::uint64_t new_writer_id() {
  std::random_device rd;
  std::uint64_t id = 0;
  while (id == 0) id = (std::uint64_t{rd()} << 32) ^ rd() ^ static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return id;
}

}  // namespace

void log::impl::open(scan_result& recovered) {
  if (opts.segment_bytes % fmt::page_size != 0 || opts.segment_bytes < 2 * fmt::page_size) {
    throw std::invalid_argument("wal: segment_bytes must be a multiple of 4096 and at least 8192, not " +
                                std::to_string(opts.segment_bytes));
  }
  fs = opts.fs ? opts.fs : posix_file_system();
  try {
    // Each directory created is made durable in its parent: a log whose
    // directory entry a crash could take away would lose everything in it.
    create_directories_durably(*fs, opts.dir);
  } catch (const std::system_error&) {
    rethrow_as("creating log directory " + opts.dir.string());
  }

  if (!opts.archive_dir.empty()) {
    std::error_code ec;
    if (std::filesystem::weakly_canonical(opts.archive_dir, ec) == std::filesystem::weakly_canonical(opts.dir)) {
      throw std::invalid_argument("wal: the archive directory " + opts.archive_dir.string() +
                                  " is the log's own directory: archive into another one");
    }
    try {
      create_directories_durably(*fs, opts.archive_dir);
    } catch (const std::system_error&) {
      rethrow_as("creating log archive directory " + opts.archive_dir.string());
    }
  }

  // A segment whose creation a crash interrupted: its temporary file.
  try {
    bool removed = false;
    for (const auto& e : fs->list(opts.dir)) {
      const std::string suffix = ".tmp";
      if (e.name.size() > suffix.size() && e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
          parse_segment_file_name(e.name.substr(0, e.name.size() - suffix.size()))) {
        fs->unlink(opts.dir / e.name);
        removed = true;
      }
    }
    if (removed) fs->sync_directory(opts.dir);
  } catch (const std::system_error&) {
    rethrow_as("removing an unfinished segment from " + opts.dir.string());
  }

  recovered = scan_log(*fs, opts.dir);
  if (recovered.corruption) throw corruption_error(*recovered.corruption);
  seg_pages = recovered.segment_pages != 0 ? recovered.segment_pages
                                           : static_cast<std::uint32_t>(opts.segment_bytes / fmt::page_size);
  if (recovered.dropped) {
    // The group commit that was in flight behind the torn one is complete on
    // disk but was never acknowledged: erase it before writing, or the new
    // log would run into it.
    const auto& d = *recovered.dropped;
    const auto path = opts.dir / segment_file_name(d.segment);
    try {
      file f = fs->open(path, {.direct = true, .writable = true});
      fs->write_zeros(f, std::uint64_t{d.page} * fmt::page_size, std::uint64_t{d.page + d.pages} * fmt::page_size);
      fs->sync(f, true);
    } catch (const std::system_error&) {
      rethrow_as("erasing the unacknowledged group commit at page " + std::to_string(d.page) + " of " + path.string());
    }
  }
  // What recovery read may sit in the OS cache only (a process that died
  // before its fdatasync, or whose fdatasync failed): make it durable before
  // durable_lsn() says so, or a page cache could write pages ahead of it.
  for (std::uint64_t seq : recovered.segments) {
    const auto path = opts.dir / segment_file_name(seq);
    try {
      file f = fs->open(path, {.direct = false, .writable = false});
      fs->sync(f, false);
    } catch (const std::system_error&) {
      rethrow_as("making recovered segment " + path.filename().string() + " durable");
    }
  }
  try {
    fs->sync_directory(opts.dir);
  } catch (const std::system_error&) {
    rethrow_as("making the log directory " + opts.dir.string() + " durable");
  }

  next_lsn = recovered.last_lsn + 1;
  segment_last_lsn = recovered.segment_last_lsn;
  lowest_first_lsn = recovered.first_lsn != 0 ? recovered.first_lsn : next_lsn;
  durable_lsn = recovered.last_lsn;
  durable_seen.store(durable_lsn, std::memory_order_relaxed);
  cut_lsn = recovered.last_lsn;
  writer_id = new_writer_id();

  ring_pages = std::max<std::size_t>(opts.buffer_bytes / fmt::page_size, 4);
  max_batch_pages = std::clamp<std::size_t>(opts.max_batch_bytes / fmt::page_size, 1, ring_pages - 1);
  arena = aligned_buffer(ring_pages * fmt::page_size, fmt::page_size);  // zero-filled
  ring.resize(ring_pages);

  ring_page& first = ring[0];
  first.segment = recovered.segments.empty() ? 1 : recovered.end_segment;
  first.index = recovered.segments.empty() ? 0 : recovered.end_page;
  if (first.index >= seg_pages) {
    ++first.segment;
    first.index = 0;
  }

  segments = std::make_unique<detail::segment_store>(fs, opts.dir, seg_pages, recovered.segments);
  backend = opts.make_backend ? opts.make_backend() : make_backend(opts.backend);
}

}  // namespace pageio::wal
