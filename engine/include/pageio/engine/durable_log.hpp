// The write-ahead-log rule as an interface: a page changed by the record at
// LSN n may reach its data file only once the log is durable up to n. The
// page cache depends on this, not on pageio::wal; pageio::wal::log
// implements it.
#pragma once

#include <pageio/engine/units.hpp>

namespace pageio {

class durable_log {
 public:
  virtual ~durable_log() = default;
  // Every record up to this LSN is durable.
  virtual lsn_t durable_lsn() const = 0;
  // Returns once every record up to `lsn` is durable; throws if the log
  // cannot make it so (it failed).
  virtual void make_durable(lsn_t lsn) = 0;
};

}  // namespace pageio
