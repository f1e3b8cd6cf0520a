// The double-write area of a data file (InnoDB's doublewrite buffer): torn
// data pages are repaired from it after a power cut. docs/pagecache.md has
// the reasoning and the measurements behind the choice.
//
// Every write-back batch of a file first writes its sealed page images to
// the file `<data file>.dwb` and fdatasyncs it, then writes them in place and
// fdatasyncs the data file, and only then may the next batch overwrite the
// area. So at any moment a page whose in-place write may be torn has an
// intact image in the area. On opening the file the pool repairs every page
// the area holds whose in-place copy does not check and is not all zeros.
// Nothing else is taken from the area: a page that checks is its old or its
// new version, and redo from the log brings it forward.
//
// A batch of more pages than one header lists (a checkpoint's) takes
// several slots, one after another, each a header and its images, all
// written and synced before any of the batch is written in place; each
// slot's header carries the batch's number, and recovery reads slots from
// the first on while they check and carry that number (a slot past the
// batch's last is an older batch's, left over: not used).
//
// `<data file>.dwb` (little-endian), slot k at page k * slot_pages:
//   page 0: header
//     0   u32  magic     "PDWB" (0x42574450)
//     4   u32  crc       CRC32C of bytes [8, 4096)
//     8   u64  batch     sequence number of the batch (for messages)
//     16  u32  count     page images that follow (at most max_pages)
//     20  u32  reserved  0
//     24  u64  pages[count]  the page number of each image, in order
//   pages 1 .. count: the images, as sealed for the data file
// A header that does not check (torn, or zeroed after a clean close) holds
// nothing: the batch it would describe had not started its in-place writes.
#pragma once

#include <pageio/engine/file.hpp>
#include <pageio/engine/file_system.hpp>
#include <pageio/engine/request.hpp>
#include <pageio/pagecache/page_format.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace pageio::pagecache::doublewrite {

inline constexpr std::uint32_t magic = 0x42574450;  // "PDWB"
inline constexpr std::size_t header_fixed = 24;
// Images one slot can hold: as many page numbers as fit in its header.
inline constexpr std::size_t max_pages = (page_size - header_fixed) / 8;
// A slot's pages (its header and its images), and the slots of one batch.
inline constexpr std::size_t slot_pages = 1 + max_pages;
inline constexpr std::size_t max_slots = 4;
// Images one batch of one file can hold.
inline constexpr std::size_t max_batch_pages = max_pages * max_slots;

// The area's path for a data file.
std::filesystem::path path_for(const std::filesystem::path& data_file);

// Fills the page_size bytes at `header` for a batch of `pages`.
void make_header(std::byte* header, std::uint64_t batch, std::span<const std::uint64_t> pages) noexcept;

// What opening a data file found in its area and did.
struct recovery {
  std::uint64_t batch = 0;           // the batch the area held (0: none)
  std::size_t images = 0;            // valid images in it
  std::vector<std::uint64_t> repaired;  // pages rewritten from their image
};

// Sends requests and waits for all of them (the pool's I/O lanes).
using run_fn = std::function<void(std::span<io_request>)>;

// Repairs `data`'s torn pages from the area `dw` (both open read-write with
// O_DIRECT), makes the repairs durable, then clears the area. Throws
// std::system_error naming the file on an I/O error.
recovery recover(const pageio::file& data, const pageio::file& dw, file_system& fs, const run_fn& run);

// Zeroes the area's header and syncs it: after a clean close nothing in it
// is applied again (so a page damaged later is reported, not silently
// replaced by an old image).
void clear(const pageio::file& dw, const run_fn& run);

}  // namespace pageio::pagecache::doublewrite
