#include <pageio/wal/reader.hpp>

#include <pageio/wal/crc32c.hpp>
#include <pageio/wal/format.hpp>

#include <pageio/engine/file_system.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace pageio::wal {

namespace fmt = format;

namespace {

struct segment_file {
  std::uint64_t seq = 0;
  std::filesystem::path path;
  std::uint64_t size = 0;
  file f;
};

// Why a page is not part of the log.
enum class page_state { valid, missing, zero, bad_magic, bad_version, bad_crc, wrong_segment, wrong_index, bad_fields };

struct page {
  page_state state = page_state::missing;
  fmt::page_header h{};
  // The whole page when read: in the scanner's window, valid until it
  // reads a page the window does not hold.
  const std::byte* bytes = nullptr;
};

// Pages are read a window at a time: one read(2) of up to this many bytes
// instead of one per 4 KiB page (a scan reads every page of a log, and past
// its end the rest of the last segment, to tell a torn tail from damage).
constexpr std::size_t window_bytes = 2u << 20;

std::string describe(page_state s, const fmt::page_header& h) {
  switch (s) {
    case page_state::valid: return "valid";
    case page_state::missing: return "missing (the file ends before it)";
    case page_state::zero: return "never written (all zero)";
    case page_state::bad_magic: return "not a log page (bad magic)";
    case page_state::bad_version: return "unknown format version " + std::to_string(h.version);
    case page_state::bad_crc: return "checksum mismatch";
    case page_state::wrong_segment:
      return "written for segment " + std::to_string(h.segment) + " (a stale page of a recycled segment)";
    case page_state::wrong_index:
      return "written as page " + std::to_string(h.index) + " (a duplicated or misplaced page)";
    case page_state::bad_fields: return "checksum matches but its header fields are impossible";
  }
  return "?";
}

class scanner {
 public:
  scanner(file_system& fs, std::vector<std::filesystem::path> dirs, const scan_progress& progress)
      : fs_(fs), dirs_(std::move(dirs)), dir_(dirs_.empty() ? std::filesystem::path() : dirs_.front()),
        progress_(progress) {}

  scan_result run(lsn_t from, const std::function<bool(const record_view&)>& on_record);
  // Makes run() return as soon as on_record returns false, without reading
  // on to the end (its result then says nothing of what lies after).
  void return_on_stop() { return_on_stop_ = true; }

 private:
  void list_segments();
  page read_page(std::size_t seg, std::uint32_t index);
  // Makes the window hold pages [index, index + count) of segment `seg`
  // (fewer where the file ends), reading them if it does not; false when
  // it cannot hold page `index` (the file ends before it).
  bool window_at(std::size_t seg, std::uint32_t index, std::uint32_t count);
  bool batch_complete(std::size_t seg, std::uint32_t first, std::vector<page>* pages);
  // Whether a complete group commit starts at or after page `first` of
  // segment `seg`, or anywhere in a later segment.
  bool valid_batch_from(std::size_t seg, std::uint32_t first) { return first_batch_from(seg, first).has_value(); }
  struct batch_at {
    std::size_t seg;
    std::uint32_t index, pages;
    bool follows_unacked;
    std::uint32_t prev_pages;  // with follows_unacked: the size of the batch before it
  };
  // Whether `after`, the first complete batch past a torn one that starts at
  // (seg, index), is that torn batch's pipelined successor: flagged, and
  // starting right where a batch of its recorded predecessor size ends.
  bool is_successor_of(const batch_at& after, std::size_t seg, std::uint32_t index) const;
  // After the scan: a short segment or a gap in the numbers, if any.
  std::optional<damage> shape_damage() const;
  std::optional<batch_at> first_batch_from(std::size_t seg, std::uint32_t first);
  // Parses a complete batch's records; returns a description of what is
  // malformed, or empty.
  std::string parse_batch(std::size_t seg, const std::vector<page>& pages, lsn_t from,
                          const std::function<bool(const record_view&)>& on_record, bool* stop);
  damage damage_at(std::size_t seg, std::uint32_t index, std::string what) const {
    damage d;
    d.file = segs_[seg].path;
    d.segment = segs_[seg].seq;
    d.page = index;
    d.offset = static_cast<std::uint64_t>(index) * fmt::page_size;
    d.what = std::move(what);
    return d;
  }

  file_system& fs_;
  std::vector<std::filesystem::path> dirs_;
  std::filesystem::path dir_;  // the first: where a missing segment is named
  scan_progress progress_;
  bool return_on_stop_ = false;
  std::vector<segment_file> segs_;
  std::uint32_t seg_pages_ = 0;
  std::uint64_t total_bytes_ = 0, done_bytes_ = 0;
  scan_result res_;
  bool have_expect_ = false;  // the first record seen sets the LSN the next must have
  lsn_t expect_lsn_ = 0;
  std::vector<std::byte> record_;
  struct {
    std::size_t seg = SIZE_MAX;
    std::uint32_t first = 0, count = 0;  // the pages held
    std::vector<std::byte> bytes;
  } win_;
};

void scanner::list_segments() {
  // Live segments and archived ones, from every directory (or a segment
  // file given by itself); a number found twice is read from the first
  // place that has it.
  for (const auto& dir : dirs_) {
    if (const auto st = fs_.stat(dir); st && st->type == file_type::regular) {
      const std::string name = dir.filename().string();
      std::optional<std::uint64_t> seq = parse_segment_file_name(name);
      if (!seq) {
        if (const auto a = parse_archive_file_name(name)) seq = a->seq;
      }
      if (!seq) {
        throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                dir.string() + " is not named as a log segment (wal-<16 hex digits>.log, or "
                                               "wal-<16 hex digits>.<first LSN>-<last LSN>.log when archived)");
      }
      segment_file s;
      s.seq = *seq;
      s.path = dir;
      segs_.push_back(std::move(s));
      continue;
    }
    std::vector<dir_entry> entries;
    try {
      entries = fs_.list(dir);
    } catch (const std::system_error& e) {
      throw std::system_error(e.code(), "reading log directory " + dir.string() + ": " + e.what());
    }
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    for (const auto& e : entries) {
      std::optional<std::uint64_t> seq = parse_segment_file_name(e.name);
      if (!seq) {
        if (const auto a = parse_archive_file_name(e.name)) seq = a->seq;
      }
      if (!seq) continue;
      segment_file s;
      s.seq = *seq;
      s.path = dir / e.name;
      segs_.push_back(std::move(s));
    }
  }
  std::stable_sort(segs_.begin(), segs_.end(), [](const auto& a, const auto& b) { return a.seq < b.seq; });
  segs_.erase(std::unique(segs_.begin(), segs_.end(), [](const auto& a, const auto& b) { return a.seq == b.seq; }),
              segs_.end());
  for (auto& s : segs_) {
    try {
      // Refuses a FIFO or a device named like a segment, without blocking.
      s.f = fs_.open(s.path, {.direct = false, .writable = false});
      s.size = s.f.size();
    } catch (const std::system_error& e) {
      throw std::system_error(e.code(), "opening log segment " + s.path.string() + ": " + e.what());
    }
    total_bytes_ += s.size;
  }
  // Every segment has the largest one's size; a shorter one was cut.
  if (!segs_.empty()) {
    std::uint64_t biggest = 0;
    for (const auto& s : segs_) biggest = std::max(biggest, s.size);
    seg_pages_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(biggest / fmt::page_size, UINT32_MAX));
  }
}

bool scanner::window_at(std::size_t seg, std::uint32_t index, std::uint32_t count) {
  if (win_.seg == seg && index >= win_.first && std::uint64_t{index} + count <= std::uint64_t{win_.first} + win_.count) {
    return true;
  }
  const segment_file& s = segs_[seg];
  const std::uint64_t off = static_cast<std::uint64_t>(index) * fmt::page_size;
  win_.seg = SIZE_MAX;
  if (off + fmt::page_size > s.size) return false;
  const std::uint64_t want =
      std::min<std::uint64_t>(std::max<std::uint64_t>(window_bytes, std::uint64_t{count} * fmt::page_size),
                              (s.size - off) / fmt::page_size * fmt::page_size);
  if (win_.bytes.size() < want) win_.bytes.resize(want);
  // Fewer bytes only where the file ends (it was cut meanwhile).
  const std::size_t got = fs_.read(s.f, win_.bytes.data(), want, off);
  if (got < fmt::page_size) return false;
  win_.seg = seg;
  win_.first = index;
  win_.count = static_cast<std::uint32_t>(got / fmt::page_size);
  return true;
}

page scanner::read_page(std::size_t seg, std::uint32_t index) {
  page p;
  if (!window_at(seg, index, 1)) return p;  // missing, or cut meanwhile
  p.bytes = win_.bytes.data() + static_cast<std::size_t>(index - win_.first) * fmt::page_size;
  done_bytes_ += fmt::page_size;
  if (progress_ && (done_bytes_ % (64u << 20)) == 0) progress_(done_bytes_, total_bytes_);
  std::memcpy(&p.h, p.bytes, sizeof p.h);
  if (p.h.magic != fmt::page_magic) {
    p.state = std::all_of(p.bytes, p.bytes + fmt::page_size, [](std::byte b) { return b == std::byte{0}; })
                  ? page_state::zero
                  : page_state::bad_magic;
  } else if (p.h.version != fmt::version) {
    p.state = page_state::bad_version;
  } else if (crc32c(p.bytes + fmt::crc_covers_from, fmt::page_size - fmt::crc_covers_from) != p.h.crc) {
    p.state = page_state::bad_crc;
  } else if (p.h.segment != segs_[seg].seq) {
    p.state = page_state::wrong_segment;
  } else if (p.h.index != index) {
    p.state = page_state::wrong_index;
  } else if (p.h.used > fmt::payload_size || p.h.batch_pages == 0 || p.h.batch_first > index ||
             static_cast<std::uint64_t>(p.h.batch_first) + p.h.batch_pages <= index ||
             static_cast<std::uint64_t>(p.h.batch_first) + p.h.batch_pages > seg_pages_) {
    p.state = page_state::bad_fields;
  } else {
    p.state = page_state::valid;
  }
  return p;
}

bool scanner::batch_complete(std::size_t seg, std::uint32_t first, std::vector<page>* pages) {
  page p0 = read_page(seg, first);
  if (p0.state != page_state::valid || p0.h.batch_first != first) return false;
  const std::uint32_t n = p0.h.batch_pages;
  // The whole batch in the window at once (its pages point into it); a
  // file that ends before the batch does lacks a page of it.
  if (!window_at(seg, first, n) || win_.first + win_.count < std::uint64_t{first} + n) return false;
  p0.bytes = win_.bytes.data() + static_cast<std::size_t>(first - win_.first) * fmt::page_size;
  const std::uint64_t writer = p0.h.writer;
  std::vector<page> local;
  local.push_back(std::move(p0));
  for (std::uint32_t i = 1; i < n; ++i) {
    page p = read_page(seg, first + i);
    // Pages of the same place written by two histories (a torn batch, then
    // the one written over it after recovery) never make one batch.
    if (p.state != page_state::valid || p.h.batch_first != first || p.h.batch_pages != n || p.h.writer != writer) {
      return false;
    }
    local.push_back(std::move(p));
  }
  if (pages) *pages = std::move(local);
  return true;
}

std::optional<scanner::batch_at> scanner::first_batch_from(std::size_t seg, std::uint32_t first) {
  for (std::size_t s = seg; s < segs_.size(); ++s) {
    for (std::uint32_t i = (s == seg ? first : 0); i < seg_pages_; ++i) {
      const page p = read_page(s, i);
      if (p.state == page_state::valid && p.h.batch_first == i && batch_complete(s, i, nullptr)) {
        return batch_at{s, i, p.h.batch_pages, (p.h.flags & fmt::flag_follows_unacked) != 0, p.h.prev_pages};
      }
    }
  }
  return std::nullopt;
}

std::string scanner::parse_batch(std::size_t seg, const std::vector<page>& pages, lsn_t from,
                                 const std::function<bool(const record_view&)>& on_record, bool* stop) {
  bool open = false;
  fmt::fragment_header first{};
  std::uint32_t start_page = 0, start_offset = 0;
  for (const page& p : pages) {
    std::size_t pos = 0;
    const std::byte* payload = p.bytes + fmt::page_header_size;
    while (pos < p.h.used) {
      if (p.h.used - pos < fmt::fragment_header_size) return "a fragment header is cut by the end of the page";
      fmt::fragment_header f;
      std::memcpy(&f, payload + pos, sizeof f);
      const std::size_t body = pos + fmt::fragment_header_size;
      if (f.length > p.h.used - body) return "a fragment runs past the page's used bytes";
      const auto type = static_cast<fmt::fragment_type>(f.type);
      const bool starts = type == fmt::fragment_type::full || type == fmt::fragment_type::first;
      const bool ends = type == fmt::fragment_type::full || type == fmt::fragment_type::last;
      if (f.type < 1 || f.type > 4) return "unknown fragment type " + std::to_string(f.type);
      if (starts == open) return open ? "a record starts before the previous one ended" : "a record continues that never started";
      if (starts) {
        first = f;
        open = true;
        start_page = p.h.index;
        start_offset = static_cast<std::uint32_t>(p.h.index * fmt::page_size + fmt::page_header_size + pos);
        record_.clear();
        if (f.record_size > static_cast<std::uint64_t>(pages.size()) * fmt::payload_size) {
          return "a record claims " + std::to_string(f.record_size) + " bytes, more than its group commit holds";
        }
        record_.reserve(f.record_size);
      } else if (f.lsn != first.lsn || f.record_size != first.record_size || f.record_crc != first.record_crc) {
        return "a fragment disagrees with the first fragment of its record";
      }
      if (record_.size() + f.length > first.record_size) return "a record's fragments exceed its size";
      record_.insert(record_.end(), payload + body, payload + body + f.length);
      pos = body + f.length;
      if (ends) {
        open = false;
        if (record_.size() != first.record_size) return "a record's fragments fall short of its size";
        if (crc32c(record_.data(), record_.size()) != first.record_crc) return "a record's checksum does not match";
        if (first.lsn == 0 || first.lsn > fmt::max_lsn) {
          return "a record has the impossible LSN " + std::to_string(first.lsn);
        }
        if (have_expect_ && first.lsn != expect_lsn_) {
          return "record LSN " + std::to_string(first.lsn) + " where " + std::to_string(expect_lsn_) + " should follow";
        }
        if (res_.first_lsn == 0) res_.first_lsn = first.lsn;
        res_.last_lsn = first.lsn;
        res_.segment_last_lsn[segs_[seg].seq] = first.lsn;
        have_expect_ = true;
        expect_lsn_ = first.lsn + 1;
        ++res_.records;
        res_.record_bytes += record_.size();
        if (on_record && !*stop && first.lsn >= from) {
          record_view v;
          v.lsn = first.lsn;
          v.crc = first.record_crc;
          v.data = record_;
          v.segment = segs_[seg].seq;
          v.page = start_page;
          v.offset = start_offset;
          if (!on_record(v)) *stop = true;
        }
      }
    }
  }
  if (open) return "a record is left open at the end of its group commit";
  return {};
}

scan_result scanner::run(lsn_t from, const std::function<bool(const record_view&)>& on_record) {
  list_segments();
  for (const auto& s : segs_) res_.segments.push_back(s.seq);
  res_.segment_pages = seg_pages_;
  if (segs_.empty()) return res_;
  if (seg_pages_ == 0) {
    res_.end_segment = segs_.front().seq;
    res_.corruption = damage_at(0, 0, "the segment is short: " + std::to_string(segs_.front().size) +
                                          " bytes, less than one page (segments are made full-size; something cut it)");
    return res_;
  }
  bool stop = false;
  std::size_t seg = 0;
  std::uint32_t index = 0;
  res_.end_segment = segs_[0].seq;
  for (;;) {
    res_.end_segment = segs_[seg].seq;
    res_.end_page = index;
    if (index >= seg_pages_) {
      // The segment is full: the log goes on in the next one, if it exists.
      if (seg + 1 < segs_.size() && segs_[seg + 1].seq == segs_[seg].seq + 1) {
        ++seg;
        index = 0;
        continue;
      }
      if (seg + 1 < segs_.size() && valid_batch_from(seg + 1, 0)) {
        damage d;
        d.file = dir_ / segment_file_name(segs_[seg].seq + 1);
        d.segment = segs_[seg].seq + 1;
        d.missing_segment = true;
        d.what = "segment " + std::to_string(segs_[seg].seq + 1) + " is missing, and segment " +
                 std::to_string(segs_[seg + 1].seq) + " holds complete group commits";
        res_.corruption = d;
        return res_;
      }
      break;
    }
    std::vector<page> pages;
    if (batch_complete(seg, index, &pages)) {
      if (std::string bad = parse_batch(seg, pages, from, on_record, &stop); !bad.empty()) {
        res_.corruption = damage_at(seg, index, "group commit at page " + std::to_string(index) + ": " + bad);
        return res_;
      }
      if (stop && return_on_stop_) return res_;
      const bool seg_end = (pages.back().h.flags & fmt::flag_segment_end) != 0;
      index += static_cast<std::uint32_t>(pages.size());
      if (seg_end) index = seg_pages_;
      continue;
    }
    // The log ends here. Damage, if a complete group commit follows.
    const page p = read_page(seg, index);
    std::string what;
    if (p.state == page_state::valid) {
      what = p.h.batch_first == index ? "an unfinished group commit of " + std::to_string(p.h.batch_pages) + " pages"
                                      : "a page left over from an unfinished group commit";
    } else {
      what = describe(p.state, p.h);
    }
    if (p.state == page_state::bad_version) {
      // Never the tear of a crash (the header's sector is old or new, and
      // both name this version): a log of another format, which the writer
      // would otherwise take for empty and write over.
      res_.corruption = damage_at(seg, index, "page " + std::to_string(index) + " is in format version " +
                                                  std::to_string(p.h.version) + "; this pageio reads version " +
                                                  std::to_string(fmt::version) + " only");
      return res_;
    }
    if (const auto after = first_batch_from(seg, index + 1)) {
      // The writer keeps at most two group commits in flight; the second
      // says so, and how long the first was. If it follows the torn batch
      // right where that one ends, and it is the only complete one after
      // the damage, the two were never acknowledged: the end of a crash,
      // not corruption.
      const bool unacked_pair = is_successor_of(*after, seg, index) &&
                                !valid_batch_from(after->seg, after->index + after->pages);
      if (!unacked_pair) {
        res_.corruption = damage_at(seg, index, "page " + std::to_string(index) + " is " + what +
                                                    ", and complete group commits follow it");
        return res_;
      }
      what += "; the group commit after it was written before it was durable and is dropped with it";
      res_.dropped = scan_result::dropped_batch{segs_[after->seg].seq, after->index, after->pages};
    }
    if (p.state != page_state::zero && p.state != page_state::wrong_segment &&
        p.state != page_state::missing) {
      res_.tail = "segment " + segs_[seg].path.filename().string() + ", page " + std::to_string(index) + ": " +
                  what + " (a torn tail: it was never acknowledged)";
    }
    break;
  }
  if (auto d = shape_damage()) {
    res_.corruption = std::move(d);
    res_.dropped.reset();
    return res_;
  }
  if (progress_) progress_(total_bytes_, total_bytes_);
  return res_;
}

bool scanner::is_successor_of(const batch_at& after, std::size_t seg, std::uint32_t index) const {
  if (!after.follows_unacked || after.prev_pages == 0) return false;
  if (after.seg == seg) return std::uint64_t{index} + after.prev_pages == after.index;
  // The torn batch ended its segment; its successor starts the next one.
  return after.seg == seg + 1 && segs_[after.seg].seq == segs_[seg].seq + 1 && after.index == 0 &&
         std::uint64_t{index} + after.prev_pages <= seg_pages_;
}

std::optional<damage> scanner::shape_damage() const {
  // Segments are made full-size under a temporary name and renamed into
  // place, and recycled one durable rename at a time: a short segment or a
  // gap in the numbers is damage, wherever it is.
  const std::uint64_t full = std::uint64_t{seg_pages_} * fmt::page_size;
  for (std::size_t i = 0; i < segs_.size(); ++i) {
    if (i > 0 && segs_[i].seq != segs_[i - 1].seq + 1) {
      damage d;
      d.segment = segs_[i - 1].seq + 1;
      d.file = dir_ / segment_file_name(d.segment);
      d.missing_segment = true;
      d.what = "segment " + std::to_string(d.segment) + " is missing (segments " + std::to_string(segs_[i - 1].seq) +
               " and " + std::to_string(segs_[i].seq) + " are there): the log's numbers never have gaps";
      return d;
    }
    if (segs_[i].size < full) {
      damage d;
      d.file = segs_[i].path;
      d.segment = segs_[i].seq;
      d.page = static_cast<std::uint32_t>(segs_[i].size / fmt::page_size);
      d.offset = std::uint64_t{d.page} * fmt::page_size;
      d.what = "the segment is short: " + std::to_string(segs_[i].size) + " bytes where every segment has " +
               std::to_string(full) + " (segments are made full-size; something cut it)";
      return d;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::vector<std::byte>> find_record(const std::vector<std::filesystem::path>& dirs, lsn_t lsn) {
  std::optional<std::vector<std::byte>> out;
  scanner s(*posix_file_system(), dirs, {});
  s.return_on_stop();
  s.run(lsn, [&](const record_view& v) {
    if (v.lsn == lsn) out.emplace(v.data.begin(), v.data.end());
    return false;
  });
  return out;
}

scan_result scan_log(file_system& fs, const std::filesystem::path& dir, lsn_t from,
                     const std::function<bool(const record_view&)>& on_record, const scan_progress& progress) {
  scanner s(fs, {dir}, progress);
  return s.run(from, on_record);
}

scan_result scan_logs(file_system& fs, const std::vector<std::filesystem::path>& dirs, lsn_t from,
                      const std::function<bool(const record_view&)>& on_record, const scan_progress& progress) {
  scanner s(fs, dirs, progress);
  return s.run(from, on_record);
}

scan_result scan_logs(const std::vector<std::filesystem::path>& dirs, lsn_t from,
                      const std::function<bool(const record_view&)>& on_record, const scan_progress& progress) {
  return scan_logs(*posix_file_system(), dirs, from, on_record, progress);
}

scan_result scan_log(const std::filesystem::path& dir, lsn_t from,
                     const std::function<bool(const record_view&)>& on_record, const scan_progress& progress) {
  return scan_log(*posix_file_system(), dir, from, on_record, progress);
}

}  // namespace pageio::wal
