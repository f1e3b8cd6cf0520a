#include "standby.hpp"

#include "shell.hpp"

#include <ext/stdio_filebuf.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <istream>
#include <mutex>
#include <ostream>
#include <set>
#include <string_view>
#include <system_error>
#include <thread>

namespace pageio::kv::tool {

namespace {

std::system_error errno_error(const std::string& what) { return {errno, std::generic_category(), what}; }

// The socket's address. A path longer than sun_path holds is reached
// through the directory's descriptor (/proc/self/fd/N/standby.sock), which
// stays open in `dir_fd` until the caller has bound or connected.
struct address {
  sockaddr_un sa{};
  int dir_fd = -1;
  ~address() {
    if (dir_fd >= 0) ::close(dir_fd);
  }
};

bool fill(address& a, const std::filesystem::path& dir) {
  a.sa.sun_family = AF_UNIX;
  std::string p = (dir / standby_socket_name).string();
  if (p.size() >= sizeof a.sa.sun_path) {
    a.dir_fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (a.dir_fd < 0) return false;
    p = "/proc/self/fd/" + std::to_string(a.dir_fd) + "/" + standby_socket_name;
  }
  std::memcpy(a.sa.sun_path, p.c_str(), p.size() + 1);
  return true;
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ENOTSOCK) {
      const ssize_t w = ::write(fd, bytes.data(), bytes.size());
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(w));
      continue;
    }
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

struct standby_server::state {
  store* db = nullptr;
  std::filesystem::path socket_path;
  std::string why;
  int listen_fd = -1;
  int stop_pipe[2] = {-1, -1};
  std::thread acceptor;
  std::mutex mu;
  std::condition_variable idle;
  std::set<int> sessions;  // open connections (mu)
  std::size_t running = 0;  // session threads not yet finished (mu)

  void accept_loop();
  void session(int fd);
};

standby_server::standby_server(store& db, const std::filesystem::path& dir, std::string why_reads_only)
    : s_(std::make_unique<state>()) {
  ::signal(SIGPIPE, SIG_IGN);
  s_->db = &db;
  s_->why = std::move(why_reads_only);
  s_->socket_path = dir / standby_socket_name;
  address a;
  if (!fill(a, dir)) throw errno_error("open " + dir.string());
  // The caller holds the store's lock: a socket here is one that a killed
  // follower left, and nobody listens on it.
  if (::unlink(a.sa.sun_path) != 0 && errno != ENOENT) throw errno_error("remove " + s_->socket_path.string());
  s_->listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s_->listen_fd < 0) throw errno_error("socket");
  if (::bind(s_->listen_fd, reinterpret_cast<const sockaddr*>(&a.sa), sizeof a.sa) != 0 ||
      ::listen(s_->listen_fd, 16) != 0) {
    const auto e = errno_error("listen on " + s_->socket_path.string());
    ::close(s_->listen_fd);
    throw e;
  }
  if (::pipe2(s_->stop_pipe, O_CLOEXEC) != 0) {
    const auto e = errno_error("pipe");
    ::close(s_->listen_fd);
    ::unlink(a.sa.sun_path);
    throw e;
  }
  s_->acceptor = std::thread([st = s_.get()] { st->accept_loop(); });
}

standby_server::~standby_server() {
  const char one = 1;
  [[maybe_unused]] const ssize_t w = ::write(s_->stop_pipe[1], &one, 1);
  s_->acceptor.join();
  // No new session: the socket goes first (a shell that comes now opens
  // the store itself once the follower has closed it, or is told it is in
  // use), and connections not yet accepted are refused.
  std::error_code ec;
  std::filesystem::remove(s_->socket_path, ec);
  ::close(s_->listen_fd);
  {
    // Each session reads the end of its requests and finishes the reply it
    // is writing; one whose client does not read it is cut after a while.
    std::unique_lock lock(s_->mu);
    for (int fd : s_->sessions) ::shutdown(fd, SHUT_RD);
    if (!s_->idle.wait_for(lock, std::chrono::seconds(5), [&] { return s_->running == 0; })) {
      for (int fd : s_->sessions) ::shutdown(fd, SHUT_RDWR);
      s_->idle.wait(lock, [&] { return s_->running == 0; });
    }
  }
  ::close(s_->stop_pipe[0]);
  ::close(s_->stop_pipe[1]);
}

void standby_server::state::accept_loop() {
  for (;;) {
    pollfd p[2] = {{listen_fd, POLLIN, 0}, {stop_pipe[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents != 0) return;
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;  // the client gave up, or out of descriptors: the next one may do
    std::lock_guard lock(mu);
    try {
      std::thread([this, fd] { session(fd); }).detach();
    } catch (const std::system_error&) {
      ::close(fd);  // no thread to be had: this client is refused, the next may be served
      continue;
    }
    sessions.insert(fd);
    ++running;
  }
}

void standby_server::state::session(int fd) {
  {
    const int out_fd = ::dup(fd);
    if (out_fd >= 0) {
      // The buffers close their descriptors; `fd` leaves `sessions` first,
      // so a stop never shuts down a number reused by then.
      __gnu_cxx::stdio_filebuf<char> in_buf(fd, std::ios::in), out_buf(out_fd, std::ios::out);
      std::istream in(&in_buf);
      std::ostream out(&out_buf);
      try {
        run_shell(*db, in, out, {.reads_only = true, .why_reads_only = why});
      } catch (...) {
        // A client that went away mid-reply: its session ends.
      }
      std::lock_guard lock(mu);
      sessions.erase(fd);
    } else {
      std::lock_guard lock(mu);
      sessions.erase(fd);
      ::close(fd);
    }
  }
  std::lock_guard lock(mu);
  --running;
  idle.notify_all();
}

int connect_standby(const std::filesystem::path& dir) {
  address a;
  if (!fill(a, dir)) return -1;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a.sa), sizeof a.sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

namespace {

// The shell's requests as they go by: how many replies they call for.
class request_counter {
 public:
  void feed(std::string_view bytes) {
    for (char c : bytes) {
      if (c == '\n') {
        end_line();
      } else if (line_.size() < 32) {
        line_.push_back(c);
      }
    }
  }
  void end_of_input() {
    if (!line_.empty()) end_line();  // the shell takes a last line without its newline too
  }
  std::uint64_t expected() const noexcept { return expected_; }
  bool quit() const noexcept { return quit_; }

 private:
  void end_line() {
    std::string_view l(line_);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (batch_lines_ > 0) {
      --batch_lines_;  // a line of a batch: the batch has one reply
    } else if (l == "quit") {
      quit_ = true;
    } else {
      ++expected_;
      if (l.size() > 6 && l.substr(0, 6) == "batch ") {
        std::uint64_t n = 0;
        const auto [p, ec] = std::from_chars(l.data() + 6, l.data() + l.size(), n);
        if (ec == std::errc() && p == l.data() + l.size()) batch_lines_ = n;
      }
    }
    line_.clear();
  }
  std::string line_;
  std::uint64_t expected_ = 0, batch_lines_ = 0;
  bool quit_ = false;
};

// The follower's replies as they go by: how many requests they answer
// (KV lines are part of a scan's reply, which END closes).
class reply_counter {
 public:
  void feed(std::string_view bytes) {
    for (char c : bytes) {
      if (c != '\n') {
        if (head_.size() < 9) head_.push_back(c);
        continue;
      }
      const std::string_view h(head_);
      if (h.rfind("OK", 0) == 0 || h.rfind("VALUE ", 0) == 0 || h.rfind("NOTFOUND", 0) == 0 ||
          h.rfind("ERR ", 0) == 0 || h.rfind("END ", 0) == 0 || h.rfind("{", 0) == 0) {
        ++answered_;
      }
      head_.clear();
    }
  }
  std::uint64_t answered() const noexcept { return answered_; }

 private:
  std::string head_;
  std::uint64_t answered_ = 0;
};

}  // namespace

bool relay_shell(int sock, int in_fd, int out_fd) {
  request_counter requests;
  reply_counter replies;
  bool input_done = false, shut = false;
  std::string pending;  // read from the input, not yet taken by the follower
  char buf[65536];
  auto shut_when_sent = [&] {
    if (input_done && pending.empty() && !shut) {
      ::shutdown(sock, SHUT_WR);  // the follower reads the end of input after the last request
      shut = true;
    }
  };
  for (;;) {
    // The input is read only once the follower has taken what came before,
    // and replies are read all the while: a long reply never waits on a
    // relay that waits on the follower.
    pollfd p[2] = {{sock, static_cast<short>(POLLIN | (pending.empty() ? 0 : POLLOUT)), 0},
                   {input_done || !pending.empty() ? -1 : in_fd, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t n = ::read(sock, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // The session is over: every request answered, or the follower
        // stopped first.
        ::close(sock);
        if (!input_done) requests.end_of_input();
        return replies.answered() >= requests.expected() && (input_done || requests.quit());
      }
      replies.feed({buf, static_cast<std::size_t>(n)});
      if (!write_all(out_fd, {buf, static_cast<std::size_t>(n)})) break;
    }
    if ((p[0].revents & POLLOUT) != 0 && !pending.empty()) {
      const ssize_t n = ::send(sock, pending.data(), pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n < 0) {
        // The follower went away: its replies so far are still to be read.
        pending.clear();
        input_done = true;
        shut = true;
        continue;
      }
      pending.erase(0, static_cast<std::size_t>(n));
      shut_when_sent();
    }
    if (p[1].fd >= 0 && p[1].revents != 0) {
      const ssize_t n = ::read(in_fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        input_done = true;
        requests.end_of_input();
        shut_when_sent();
        continue;
      }
      std::string_view got(buf, static_cast<std::size_t>(n));
      // Up to a quit: the follower ends the session after it, and nothing
      // after it is a request.
      std::size_t take = got.size();
      for (std::size_t i = 0; i < got.size(); ++i) {
        requests.feed(got.substr(i, 1));
        if (requests.quit()) {
          take = i + 1;
          break;
        }
      }
      pending.append(got.substr(0, take));
      if (requests.quit()) input_done = true;
      shut_when_sent();
    }
  }
  ::close(sock);
  return false;
}

}  // namespace pageio::kv::tool
