// pageio-wal replay: a plan (one read of the logs: what would be applied,
// and why it would stop), then, unless --dry-run, the records applied into
// the store opened as a replica, and a summary.
#include "replay.hpp"

#include "inspect.hpp"
#include "replay_pipeline.hpp"

#include <pageio/kv/log_record.hpp>
#include <pageio/kv/store.hpp>
#include <pageio/wal/reader.hpp>

#include "run_info.hpp"
#include "standby.hpp"
#include "usage.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <optional>
#include <set>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace pageio::wal::tool {

namespace {

enum class stop_kind { target_reached, end_of_logs, not_reachable, damaged, stopped };

// SIGINT or SIGTERM while following: the follower stops between records.
std::atomic<int> stop_signal{0};
extern "C" void on_stop_signal(int sig) { stop_signal.store(sig); }

void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sa.sa_flags = SA_RESTART;  // a system call the signal lands in goes on; the loops check the flag
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

const char* stop_name(stop_kind k) {
  switch (k) {
    case stop_kind::target_reached: return "target_reached";
    case stop_kind::end_of_logs: return "end_of_logs";
    case stop_kind::not_reachable: return "target_not_reachable";
    case stop_kind::damaged: return "damage";
    case stop_kind::stopped: return "stopped";
  }
  return "?";
}

// What a pass over the logs found, from the store's end on.
struct pass {
  lsn_t first = 0, last = 0;  // records applied (or to apply)
  std::uint64_t records = 0, bytes = 0;
  std::set<std::uint64_t> segments;
  stop_kind stop = stop_kind::end_of_logs;
  std::string reason;
  lsn_t logs_last = 0;  // the last record the logs hold (as far as they were read)
};

bool has_target(const replay_options& o) { return o.to_lsn != 0 || o.to_time_us != 0; }

bool past_target(const replay_options& o, const record_view& v) {
  if (o.to_lsn != 0) return o.inclusive ? v.lsn > o.to_lsn : v.lsn >= o.to_lsn;
  if (o.to_time_us != 0) {
    const std::uint64_t t = kv::log_record_time_us(v.data);
    return o.inclusive ? t > o.to_time_us : t >= o.to_time_us;
  }
  return false;
}

std::string target_text(const replay_options& o) {
  const char* how = o.inclusive ? "inclusive" : "exclusive";
  if (o.to_lsn != 0) return fmt::format("LSN {} ({})", o.to_lsn, how);
  if (o.to_time_us != 0) {
    const std::time_t secs = static_cast<std::time_t>(o.to_time_us / 1'000'000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("commit time {}.{:06}Z ({})", buf, o.to_time_us % 1'000'000, how);
  }
  return o.follow ? "the end of the logs, then following them" : "the end of the logs";
}

// One pass over the logs from `store_last` + 1; `apply` (when set) takes
// each record that is to be applied, in order, or returns false to stop
// before it (a stop signal).
pass run_pass(const replay_options& o, lsn_t store_last, const std::function<bool(const record_view&)>& apply,
              const std::function<void(const pass&)>& tick) {
  pass p;
  std::optional<std::string> gap_before;
  const std::vector<std::filesystem::path> paths(o.sources.begin(), o.sources.end());
  const scan_result r = scan_logs(paths, store_last + 1, [&](const record_view& v) {
    p.logs_last = v.lsn;
    if (past_target(o, v)) {
      p.stop = stop_kind::target_reached;
      return false;
    }
    const lsn_t want = p.last != 0 ? p.last + 1 : store_last + 1;
    if (v.lsn != want) {
      gap_before = fmt::format("the logs given hold no record {} (the next they hold is LSN {}): records {} to {} "
                               "are missing (an archived segment not copied, or logs of another store?)",
                               want, v.lsn, want, v.lsn - 1);
      return false;
    }
    if (apply && !apply(v)) {
      p.stop = stop_kind::stopped;
      return false;
    }
    if (p.first == 0) p.first = v.lsn;
    p.last = v.lsn;
    ++p.records;
    p.bytes += v.data.size();
    p.segments.insert(v.segment);
    if (tick && p.records % 4096 == 0) tick(p);
    return true;
  });
  if (p.stop == stop_kind::stopped) {
    p.reason = fmt::format("asked to stop ({})", stop_signal.load() == SIGINT ? "SIGINT" : "SIGTERM");
    return p;
  }
  if (r.segments.empty()) {
    // A follower may start before the first segment is shipped.
    if (!o.follow) throw std::runtime_error(fmt::format("{} hold no log segments", fmt::join(o.sources, ", ")));
    p.reason = fmt::format("{} hold no log segments yet", fmt::join(o.sources, ", "));
    return p;
  }
  if (p.stop == stop_kind::target_reached) {
    p.reason = "the target, " + target_text(o) + ", was reached";
    return p;
  }
  if (gap_before) {
    p.stop = stop_kind::not_reachable;
    p.reason = *gap_before;
    return p;
  }
  if (p.logs_last == 0) p.logs_last = r.last_lsn;
  if (r.corruption) {
    const damage& d = *r.corruption;
    p.stop = d.missing_segment ? stop_kind::not_reachable : stop_kind::damaged;
    p.reason = fmt::format("{} ({}, segment {}, page {}, byte offset {})", d.what, d.file.string(), d.segment, d.page,
                           d.offset);
    return p;
  }
  if (r.last_lsn < store_last) {
    p.stop = stop_kind::not_reachable;
    p.reason = fmt::format("the logs end after LSN {}, before the store's own end (LSN {}): they are older than the "
                           "store, or the store was written to after its backup",
                           r.last_lsn, store_last);
    return p;
  }
  const std::string end = fmt::format(
      "the logs end after LSN {}{}", r.last_lsn,
      r.tail.empty() ? std::string(" (a clean end)")
                     : std::string(" (a normal end: what follows is a group commit a crash cut short, which was "
                                   "never acknowledged; not damage)"));
  if (has_target(o)) {
    p.stop = stop_kind::not_reachable;
    p.reason = end + ", before the target, " + target_text(o);
  } else {
    p.stop = stop_kind::end_of_logs;
    p.reason = end;
  }
  return p;
}

int exit_of(stop_kind k) {
  switch (k) {
    case stop_kind::target_reached:
    case stop_kind::end_of_logs:
    case stop_kind::stopped: return exit_ok;
    case stop_kind::not_reachable: return exit_unreachable;
    case stop_kind::damaged: return exit_corrupt;
  }
  return exit_corrupt;
}

// A pass of a follower. The logs it reads change under it: a live
// segment is recycled (renamed) between the listing and its opening, an
// archived one is renamed into place. A file gone when opened is read again
// at the next poll, from the listing on.
pass pass_while_following(const replay_options& o, lsn_t from, const std::function<bool(const record_view&)>& apply,
                          const std::function<void(const pass&)>& tick = {}) {
  try {
    return run_pass(o, from, apply, tick);
  } catch (const std::system_error& e) {
    if (e.code() != std::errc::no_such_file_or_directory) throw;
    pass p;
    p.stop = stop_kind::not_reachable;
    p.reason = fmt::format("a log file went away while it was read ({}); reading the logs again", e.what());
    return p;
  }
}

// Following: after the first pass, a pass every poll_ms from the store's
// end, each adding to `done`, until a stop signal (or damage that a second
// read finds again: a live segment read while the primary wrote it may look
// damaged once, never twice at the same place).
void follow(const replay_options& o, kv::store& db, pass& done, const std::function<bool(const record_view&)>& apply,
            const std::function<void()>& drain, bool tty) {
  if (done.stop != stop_kind::stopped) {
    fmt::print(stderr,
               "pageio-wal: caught up with the logs at LSN {}; following them (read every {} ms) and serving "
               "read-only shells (pageio-kv shell --dir {} --read-only); SIGINT or SIGTERM stops\n",
               db.stats().last_lsn, o.poll_ms, o.into);
  }
  std::string damage_seen, waiting_for;
  auto last_tick = std::chrono::steady_clock::now();
  std::uint64_t ticked = done.records;
  while (done.stop != stop_kind::stopped) {
    if (done.stop == stop_kind::damaged) {
      if (done.reason == damage_seen) break;
      damage_seen = done.reason;
    } else {
      damage_seen.clear();
    }
    if (done.stop == stop_kind::not_reachable && done.reason != waiting_for) {
      fmt::print(stderr, "pageio-wal: waiting for the logs: {}\n", done.reason);
      waiting_for = done.reason;
    }
    const auto wake = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.poll_ms);
    while (stop_signal.load() == 0 && std::chrono::steady_clock::now() < wake) {
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          wake - std::chrono::steady_clock::now(), std::chrono::milliseconds(20)));
    }
    const lsn_t before = db.stats().last_lsn;
    const pass p = stop_signal.load() == 0 ? pass_while_following(o, before, apply) : [] {
      pass s;
      s.stop = stop_kind::stopped;
      s.reason = fmt::format("asked to stop ({})", stop_signal.load() == SIGINT ? "SIGINT" : "SIGTERM");
      return s;
    }();
    drain();
    // Counted by the store's end: a pass cut short by a file that went
    // away still applied what it read before.
    if (const lsn_t now = db.stats().last_lsn; now > before) {
      if (done.records == 0) done.first = before + 1;
      done.last = now;
      done.records += now - before;
      done.bytes += p.bytes;
      done.segments.insert(p.segments.begin(), p.segments.end());
      waiting_for.clear();
    }
    done.stop = p.stop;
    done.reason = p.reason;
    done.logs_last = std::max(done.logs_last, p.logs_last);
    if (tty && done.records != ticked && std::chrono::steady_clock::now() - last_tick >= std::chrono::seconds(1)) {
      last_tick = std::chrono::steady_clock::now();
      ticked = done.records;
      fmt::print(stderr, "\rfollowing: at LSN {}, {} record(s) applied   ", db.stats().last_lsn, done.records);
      std::fflush(stderr);
    }
  }
  if (tty) fmt::print(stderr, "\n");
  if (done.stop == stop_kind::stopped) done.reason += fmt::format(" while following, at LSN {}", db.stats().last_lsn);
}

// Whether the store's record and the source's are the same (a source's
// checkpoint record is kept in a replica under another kind byte).
bool same_record(std::vector<std::byte> mine, const std::vector<std::byte>& theirs) {
  if (!mine.empty() && !theirs.empty() && mine[0] == std::byte{3} && theirs[0] == std::byte{2}) mine[0] = std::byte{2};
  return mine == theirs;
}

bool is_store(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p / "data", ec) && std::filesystem::is_directory(p / "wal", ec);
}

}  // namespace

std::uint64_t parse_utc_time(const std::string& text) {
  std::tm tm{};
  int frac_digits = 0;
  unsigned long frac = 0;
  char rest[16] = {};
  const int n = std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%15s", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, rest);
  std::string tail = n == 7 ? rest : "";
  if (n >= 6 && !tail.empty() && tail[0] == '.') {
    std::size_t i = 1;
    while (i < tail.size() && std::isdigit(static_cast<unsigned char>(tail[i])) && frac_digits < 6) {
      frac = frac * 10 + static_cast<unsigned long>(tail[i] - '0');
      ++frac_digits;
      ++i;
    }
    tail = tail.substr(i);
  }
  if (n < 6 || tail != "Z" || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
      tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
    throw std::invalid_argument("--to-time " + text +
                                ": give a UTC time as pageio-wal dump --decode kv prints it, e.g. "
                                "2026-12-01T17:42:03Z or 2026-12-01T17:42:03.123456Z");
  }
  while (frac_digits < 6) {
    frac *= 10;
    ++frac_digits;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t secs = ::timegm(&tm);
  return static_cast<std::uint64_t>(secs) * 1'000'000 + frac;
}

int replay(const replay_options& o) {
  const std::filesystem::path into(o.into);
  if (!is_store(into)) {
    return pageio::tools::report_usage_error(
        "pageio-wal", fmt::format("--into {}: not a pageio::kv store (no data file and wal/ directory); give a "
                                  "backup made by pageio-kv backup",
                                  o.into));
  }
  if (!std::filesystem::exists(into / kv::replayable_marker)) {
    fmt::print(stderr,
               "pageio-wal: {} is not a backup that can be replayed into: it has no {} file (it was opened as a store "
               "after its backup and has a history of its own, or it was not made by pageio-kv backup). Replay into "
               "a fresh copy of the backup.\n",
               o.into, kv::replayable_marker);
    return exit_corrupt;
  }
  const auto started = std::chrono::steady_clock::now();
  const bool tty = ::isatty(STDERR_FILENO) != 0;

  // The store's end, read without opening it (a dry run changes nothing).
  const scan_result own = scan_log(into / "wal");
  if (own.corruption) {
    fmt::print(stderr, "pageio-wal: the store's own log is damaged: {} ({})\n", own.corruption->what,
               own.corruption->file.string());
    return exit_corrupt;
  }
  const lsn_t store_last = own.last_lsn;
  // The store's last record must be the logs' record of that LSN: a store
  // that was opened and written to has a history of its own from there.
  if (store_last != 0) {
    const std::vector<std::filesystem::path> src(o.sources.begin(), o.sources.end());
    const auto theirs = find_record(src, store_last);
    const auto mine = find_record({into / "wal"}, store_last);
    if (theirs && mine && !same_record(*mine, *theirs)) {
      fmt::print(stderr,
                 "pageio-wal: {} and the logs given differ at LSN {}: the store was opened and written to after it "
                 "was backed up (or they are logs of another store). Nothing was replayed; restore the backup "
                 "again and replay into that.\n",
                 o.into, store_last);
      return exit_corrupt;
    }
  }
  if (o.to_lsn != 0 && store_last > (o.inclusive ? o.to_lsn : o.to_lsn - 1)) {
    return pageio::tools::report_usage_error(
        "pageio-wal", fmt::format("--into {} is at LSN {}, past the target LSN {}: a replay only goes forward; "
                                  "restore the backup again to go back",
                                  o.into, store_last, o.to_lsn));
  }
  // The plan (a read of the logs without applying) is the dry run's answer,
  // and the total a terminal's progress is measured against; otherwise the
  // replay pass finds the same end by itself.
  const pass plan = o.dry_run || tty ? run_pass(o, store_last, {}, {}) : pass{};

  pass done;
  // Where a replay's time goes: opening the store (its recovery), applying
  // the records, and making them durable at the end (the final sync and
  // checkpoint, which write back every page the replay changed).
  double open_s = 0, apply_s = 0, finish_s = 0;
  if (o.dry_run) {
    done = plan;
  } else {
    kv::options ko;
    ko.dir = into;
    ko.replica = true;
    // Nobody reads it unless it follows (the standby serves reads): its
    // buffered pairs then stay in the log only.
    ko.replica_unread = !o.follow;
    ko.cache_bytes = o.cache_mib << 20;
    // A checkpoint writes every page changed since the last one, twice (the
    // double-write area, then in place): up to the whole cache. Spaced by
    // twice the cache's size in log bytes, checkpoints write at most about
    // as many bytes as the log does. A store's default (every 64 MiB of
    // log) suits writers at a few thousand commits a second; a replay at a
    // million records a second would checkpoint the cache several times a
    // second. A kill -9 costs at most that much log to redo on resuming.
    ko.checkpoint_log_bytes = std::max(ko.checkpoint_log_bytes, 2 * ko.cache_bytes);
    // Room for the largest record a source may log (the smaller of its
    // segment, which the copy keeps, and its buffer).
    ko.wal_buffer_bytes = 64u << 20;
    kv::store db(ko);  // refuses a store another process has open
    if (db.stats().last_lsn != store_last) {
      throw std::runtime_error(fmt::format("{} changed while it was read (its log ended at LSN {}, now {})", o.into,
                                           store_last, db.stats().last_lsn));
    }
    const auto opened = std::chrono::steady_clock::now();
    open_s = std::chrono::duration<double>(opened - started).count();
    auto last_tick = std::chrono::steady_clock::now();
    auto tick = [&](const pass& p) {
      if (!tty) return;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_tick < std::chrono::milliseconds(250)) return;
      last_tick = now;
      const double secs = std::chrono::duration<double>(now - started).count();
      const double rate = static_cast<double>(p.records) / std::max(secs, 1e-6);
      const double pct = plan.records ? 100.0 * static_cast<double>(p.records) / static_cast<double>(plan.records) : 100;
      const double eta = rate > 0 ? static_cast<double>(plan.records - std::min(plan.records, p.records)) / rate : 0;
      fmt::print(stderr, "\rLSN {} ({:.1f}% of {} records), {:.0f} records/s, ETA {:.0f} s   ", p.last, pct,
                 plan.records, rate, eta);
      std::fflush(stderr);
    };
    // Records are replayed a chunk at a time on a thread of their own,
    // while this one reads the next chunk and the pages it changes.
    replay_pipeline pipeline(db);
    auto drain = [&] { pipeline.finish(); };
    auto apply = [&](const record_view& v) {
      if (o.follow && stop_signal.load() != 0) return false;
      pipeline.add(v.lsn, v.data);
      return true;
    };
    std::optional<kv::tool::standby_server> standby;
    if (o.follow) {
      catch_stop_signals();
      standby.emplace(db, into,
                      fmt::format("{} is a warm standby (pageio-wal replay --follow applies another store's log to "
                                  "it): it serves get, scan and stats only",
                                  o.into));
    }
    done = o.follow ? pass_while_following(o, store_last, apply, tick) : run_pass(o, store_last, apply, tick);
    drain();
    if (tty) fmt::print(stderr, "\n");
    if (o.follow) {
      if (const lsn_t now = db.stats().last_lsn; now > store_last) {  // a pass cut short counts what it applied
        done.first = store_last + 1;
        done.last = now;
        done.records = now - store_last;
      }
      follow(o, db, done, apply, drain, tty);
    }
    standby.reset();  // every reader's session ends before the store closes
    const auto applied = std::chrono::steady_clock::now();
    apply_s = std::chrono::duration<double>(applied - opened).count();
    db.sync();
    db.checkpoint();
    db.close();
    finish_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - applied).count();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const double rate = done.records / std::max(seconds, 1e-9);
  if (o.json) {
    nlohmann::json j{{"into", o.into},
                     {"sources", o.sources},
                     {"dry_run", o.dry_run},
                     {"target", target_text(o)},
                     {"store_lsn_before", store_last},
                     {"first_lsn", done.first},
                     {"last_lsn", done.records ? done.last : store_last},
                     {"records", done.records},
                     {"bytes", done.bytes},
                     {"segments", done.segments.size()},
                     {"seconds", seconds},
                     {"records_per_second", rate},
                     {"open_seconds", open_s},
                     {"apply_seconds", apply_s},
                     // Following, applying includes the waits for new records.
                     {"apply_records_per_second", o.follow ? 0.0 : done.records / std::max(apply_s, 1e-9)},
                     {"checkpoint_seconds", finish_s},
                     {"stopped", stop_name(done.stop)},
                     {"reason", done.reason},
                     {"reachable", done.stop == stop_kind::target_reached || done.stop == stop_kind::end_of_logs ||
                                       done.stop == stop_kind::stopped}};
    pageio::tools::stamp(j, "pageio-wal", o.into);
    fmt::print("{}\n", j.dump());
  } else if (o.dry_run) {
    fmt::print("dry run: nothing was changed\n");
    fmt::print("{} is at LSN {}; target: {}\n", o.into, store_last, target_text(o));
    if (done.records) {
      fmt::print("would apply LSN {} to {}: {} record(s), {} bytes, from {} segment(s)\n", done.first, done.last,
                 done.records, done.bytes, done.segments.size());
    } else {
      fmt::print("would apply nothing\n");
    }
    fmt::print("{}: {}\n", exit_of(done.stop) == exit_ok ? "reachable" : "NOT reachable", done.reason);
  } else {
    if (done.records) {
      fmt::print("replayed into {}: LSN {} to {}, {} record(s) in {:.2f} s ({:.0f} records/s)\n", o.into, done.first,
                 done.last, done.records, seconds, rate);
      if (!o.follow) {
        fmt::print("time: opening {:.2f} s, applying {:.2f} s ({:.0f} records/s), final sync and checkpoint {:.2f} s\n",
                   open_s, apply_s, done.records / std::max(apply_s, 1e-9), finish_s);
      }
    } else {
      fmt::print("replayed nothing into {}: it is at LSN {}\n", o.into, store_last);
    }
    fmt::print("stopped: {}\n", done.reason);
    if (done.stop == stop_kind::not_reachable || done.stop == stop_kind::damaged || done.stop == stop_kind::stopped) {
      fmt::print("{} is a consistent store at LSN {}; run again with more logs to go on from there.\n", o.into,
                 done.records ? done.last : store_last);
    }
  }
  return exit_of(done.stop);
}

}  // namespace pageio::wal::tool
