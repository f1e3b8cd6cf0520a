// `pageio-kv shell`: a line protocol on stdin/stdout for scripts and
// operators. One request per line, one reply per request (a scan's reply is
// its KV lines and an END line); tokens separated by one space, keys and
// values escaped (escape.hpp). Requests and replies:
//
//   put K V        OK <lsn>                 once durable (appended, with --no-sync)
//   get K          VALUE <v> | NOTFOUND
//   del K          OK <lsn> | NOTFOUND
//   batch N        then N lines of "put K V" / "del K": one OK <lsn> for all, atomically
//   scan FROM TO LIMIT   KV <k> <v> lines, then END <count>  ("-": an open end;
//                  FROM inclusive, TO exclusive; LIMIT 0: no limit)
//   checkpoint     OK <lsn>
//   stats          one JSON object on one line
//   quit           closes the store; so does the end of input
//
// Anything malformed, and any error of the store, gets "ERR <reason>" on
// one line, and the shell goes on.
#pragma once

#include <pageio/kv/store.hpp>

#include <istream>
#include <ostream>
#include <string>

namespace pageio::kv::tool {

struct shell_options {
  // Reads only: put, del, batch, checkpoint and backup get "ERR <why>"
  // without reaching the store (a batch's lines are still read).
  bool reads_only = false;
  std::string why_reads_only;
};

// Serves requests until `quit` or the end of `in`.
void run_shell(store& db, std::istream& in, std::ostream& out, const shell_options& so = {});

}  // namespace pageio::kv::tool
