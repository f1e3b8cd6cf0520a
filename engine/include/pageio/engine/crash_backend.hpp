// A backend that runs every request on another one and can simulate a power
// cut. It remembers every write that no completed durability point covers
// yet: a flush (fdatasync/fsync) on the same file covers the writes that had
// completed when it was submitted; an io_flags::dsync write covers itself.
// cut_power() stops the machine: from then on every request, including those
// still in flight, completes with -EIO and nothing more becomes durable.
// settle() then rewrites the files as the power cut could have left them:
// each uncovered write dropped, applied, or torn at 512-byte sector
// granularity (each sector old or new), applied in a random order; and each
// file whose size a write past its end changed since its last flush keeps
// that size or goes back to the durable one.
//
// Built alone, a crash_backend has a crash model of its own. Made by
// crash_file_system::wrap(), it shares the file system's: one cut_power()
// and one settle(), on either of them, then cover data writes, sizes and
// names together (crash_file_system.hpp describes the whole model). After
// settle() the model is powered on again, but a backend attached before it
// stays dead: every request completes with -EIO.
//
// Limits (what a test relies on): the old contents of a range are read when a
// write to it is submitted, so two writes to overlapping ranges must not be
// in flight at once; bytes past the end of a file before a write count as
// zeros when that write is undone; a file size changed outside the model
// (not by an attached backend or a crash_file_system) counts as durable at
// settle(); creating, renaming and unlinking files are modelled only when
// they go through a crash_file_system.
#pragma once

#include <pageio/engine/forwarding_backend.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace pageio {

class crash_file_system;
namespace detail {
class crash_state;
}

// What settle() did.
struct crash_report {
  // Uncovered data writes (write_zeros of a crash_file_system included).
  std::size_t dropped = 0, applied = 0, torn = 0;
  std::size_t files = 0;  // files the model tracked
  // Uncovered creates, mkdirs, renames and unlinks.
  std::size_t names_undone = 0, names_kept = 0;
  // Files whose size had changed since it was last made durable.
  std::size_t sizes_reverted = 0, sizes_kept = 0;
};

class crash_backend final : public forwarding_backend {
 public:
  explicit crash_backend(std::unique_ptr<io_backend> inner);
  ~crash_backend() override;

  // The power goes out now, for every backend and file system sharing this
  // backend's model. Safe from any thread.
  void cut_power();
  // Whether this backend is dead: the power was cut, or the model was
  // settled since this backend was attached.
  bool power_cut() const;

  // Writes not covered by a completed durability point (in flight or
  // completed), of every backend and file system sharing the model. Safe
  // from any thread.
  std::size_t unstable_writes() const;

  using settle_report = crash_report;
  // After cut_power(), once the driving thread has stopped using the backend
  // (nothing outstanding here, nothing in flight on any backend sharing the
  // model): rewrites the files as the power cut left them, choosing with
  // `seed`, and makes that durable. Throws std::logic_error before
  // cut_power() or with requests outstanding, std::system_error when a file
  // cannot be rewritten.
  crash_report settle(std::uint64_t seed);

 private:
  friend class crash_file_system;
  crash_backend(std::unique_ptr<io_backend> inner, std::shared_ptr<detail::crash_state> state);

  bool before_submit(shadow& s) override;
  void after_complete(shadow& s) override;

  std::shared_ptr<detail::crash_state> state_;
  std::uint64_t epoch_ = 0;  // the model's epoch when this backend was attached
};

}  // namespace pageio
