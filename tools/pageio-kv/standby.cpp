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
#include <cerrno>
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
  {
    // Each session reads the end of its stream and finishes its reply.
    std::unique_lock lock(s_->mu);
    for (int fd : s_->sessions) ::shutdown(fd, SHUT_RDWR);
    s_->idle.wait(lock, [&] { return s_->running == 0; });
  }
  ::close(s_->listen_fd);
  ::close(s_->stop_pipe[0]);
  ::close(s_->stop_pipe[1]);
  std::error_code ec;
  std::filesystem::remove(s_->socket_path, ec);
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
    sessions.insert(fd);
    ++running;
    std::thread([this, fd] { session(fd); }).detach();
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

bool relay_shell(int sock, int in_fd, int out_fd) {
  bool input_done = false;
  std::string line;  // the request being forwarded, to see a quit
  char buf[65536];
  for (;;) {
    pollfd p[2] = {{sock, POLLIN, 0}, {input_done ? -1 : in_fd, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[0].revents != 0) {
      const ssize_t n = ::read(sock, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(sock);
        return input_done;  // the replies are all in, or the follower stopped first
      }
      if (!write_all(out_fd, {buf, static_cast<std::size_t>(n)})) break;
    }
    if (!input_done && p[1].revents != 0) {
      const ssize_t n = ::read(in_fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        input_done = true;
        ::shutdown(sock, SHUT_WR);
        continue;
      }
      const std::string_view got(buf, static_cast<std::size_t>(n));
      if (!write_all(sock, got)) {
        ::close(sock);
        return false;
      }
      for (char c : got) {
        if (c != '\n') {
          line.push_back(c);
          if (line.size() > 8) line.erase(0, line.size() - 8);
          continue;
        }
        if (line == "quit" || line == "quit\r") {
          input_done = true;  // the follower ends the session after it
          ::shutdown(sock, SHUT_WR);
        }
        line.clear();
      }
    }
  }
  ::close(sock);
  return false;
}

}  // namespace pageio::kv::tool
