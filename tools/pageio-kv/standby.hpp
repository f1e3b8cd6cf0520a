// A warm standby's reads. While `pageio-wal replay --follow` applies a
// primary's records into a store, it holds the store's lock, so no other
// process can open the store; it serves read-only shells on its own open
// store instead, over a Unix socket in the store's directory
// (<dir>/standby.sock). `pageio-kv shell --dir B --read-only` finds the
// socket and relays its requests there. Reads see the store as the records
// applied so far left it: each record is applied whole, under the tree's
// lock, so a read never sees half of one.
#pragma once

#include <pageio/kv/store.hpp>

#include <filesystem>
#include <memory>
#include <string>

namespace pageio::kv::tool {

inline constexpr const char* standby_socket_name = "standby.sock";

class standby_server {
 public:
  // Listens on <dir>/standby.sock (replacing one that a follower killed
  // before it could remove it left: the caller holds the store's lock, so
  // no other follower serves it) and serves each connection a shell that
  // answers get, scan and stats, and refuses writes with `why_reads_only`.
  // Writes to a client that went away fail with EPIPE instead of killing
  // the process (SIGPIPE is ignored from here on). Throws std::system_error.
  standby_server(store& db, const std::filesystem::path& dir, std::string why_reads_only);
  // Ends every session (its client reads the end of the stream), waits for
  // them, and removes the socket.
  ~standby_server();
  standby_server(const standby_server&) = delete;
  standby_server& operator=(const standby_server&) = delete;

  struct state;

 private:
  std::unique_ptr<state> s_;
};

// A connection to the follower serving `dir`, or -1 when none serves it (no
// socket, or one left by a follower that was killed).
int connect_standby(const std::filesystem::path& dir);

// Relays requests from `in_fd` to the follower on `sock` and its replies to
// `out_fd`, until the input ends (or says quit) and every reply is in.
// Returns false when the follower ended the session first (it stopped).
// Closes `sock`.
bool relay_shell(int sock, int in_fd, int out_fd);

}  // namespace pageio::kv::tool
