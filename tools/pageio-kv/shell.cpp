#include "shell.hpp"

#include "escape.hpp"
#include "stats_json.hpp"

#include <pageio/version.hpp>

#include <charconv>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace pageio::kv::tool {

using pageio::tools::escape;
using pageio::tools::unescape;

namespace {

class bad_request : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> t;
  std::size_t at = 0;
  for (;;) {
    const std::size_t sp = line.find(' ', at);
    t.push_back(line.substr(at, sp == std::string_view::npos ? std::string_view::npos : sp - at));
    if (sp == std::string_view::npos) break;
    at = sp + 1;
  }
  return t;
}

std::string arg(std::string_view token, const char* what) {
  if (token.empty()) throw bad_request(std::string("empty ") + what + " (tokens are separated by one space)");
  std::string why;
  auto raw = unescape(token, &why);
  if (!raw) throw bad_request(std::string(what) + ": " + why);
  return std::move(*raw);
}

void want_tokens(const std::vector<std::string_view>& t, std::size_t n, const char* usage) {
  if (t.size() != n) throw bad_request(std::string("usage: ") + usage);
}

std::uint64_t number(std::string_view token, const char* what) {
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
  if (ec != std::errc() || p != token.data() + token.size() || token.empty()) {
    throw bad_request(std::string(what) + " must be a whole number, not \"" + escape(token) + "\"");
  }
  return v;
}

// One line of a batch, added to `b`.
void batch_line(std::string_view line, write_batch& b) {
  const auto t = split(line);
  if (t[0] == "put") {
    want_tokens(t, 3, "put K V");
    b.put(arg(t[1], "key"), arg(t[2], "value"));
  } else if (t[0] == "del") {
    want_tokens(t, 2, "del K");
    b.del(arg(t[1], "key"));
  } else {
    throw bad_request("a batch holds put and del lines only, not \"" + escape(t[0]) + "\"");
  }
}

// A reply's reason: one line, whatever the error said.
std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

}  // namespace

void run_shell(store& db, std::istream& in, std::ostream& out, const shell_options& so) {
  auto writes = [&] {
    if (so.reads_only) throw bad_request(so.why_reads_only);
  };
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    try {
      const auto t = split(line);
      const std::string_view cmd = t[0];
      if (cmd.empty()) throw bad_request("empty request");
      if (cmd == "quit") {
        want_tokens(t, 1, "quit");
        break;
      } else if (cmd == "put") {
        want_tokens(t, 3, "put K V");
        writes();
        const std::string k = arg(t[1], "key"), v = arg(t[2], "value");
        // The store answers first: a refusal is then the only reply (the
        // operands of << run left to right, "OK " first).
        const lsn_t l = db.put(k, v);
        out << "OK " << l << '\n';
      } else if (cmd == "get") {
        want_tokens(t, 2, "get K");
        const auto v = db.get(arg(t[1], "key"));
        if (v) {
          out << "VALUE " << escape(*v) << '\n';
        } else {
          out << "NOTFOUND\n";
        }
      } else if (cmd == "del") {
        want_tokens(t, 2, "del K");
        writes();
        const lsn_t l = db.del(arg(t[1], "key"));
        if (l == 0) {
          out << "NOTFOUND\n";
        } else {
          out << "OK " << l << '\n';
        }
      } else if (cmd == "batch") {
        want_tokens(t, 2, "batch N");
        const std::uint64_t n = number(t[1], "N");
        // The N lines are read whatever they hold, so that one bad line
        // does not turn the rest of the batch into requests.
        write_batch b;
        std::string bad;
        for (std::uint64_t i = 0; i < n; ++i) {
          std::string l;
          if (!std::getline(in, l)) throw bad_request("the input ended inside a batch of " + std::to_string(n));
          if (!l.empty() && l.back() == '\r') l.pop_back();
          if (!bad.empty()) continue;
          try {
            batch_line(l, b);
          } catch (const std::exception& e) {
            bad = "batch line " + std::to_string(i + 1) + ": " + e.what();
          }
        }
        if (!bad.empty()) throw bad_request(bad + " (nothing of the batch was applied)");
        writes();
        const lsn_t l = db.write(b);
        out << "OK " << l << '\n';
      } else if (cmd == "scan") {
        want_tokens(t, 4, "scan FROM TO LIMIT (- for an open end)");
        std::optional<std::string> from, to;
        if (t[1] != "-") from = arg(t[1], "FROM");
        if (t[2] != "-") to = arg(t[2], "TO");
        const std::uint64_t limit = number(t[3], "LIMIT");
        // Gathered first: an error halfway gets an ERR line, not a cut list.
        std::string lines;
        std::uint64_t count = 0;
        for (auto it = db.scan(from, to, limit); it.valid(); it.next()) {
          lines += "KV " + escape(it.key()) + " " + escape(it.value()) + "\n";
          ++count;
        }
        out << lines << "END " << count << '\n';
      } else if (cmd == "checkpoint") {
        want_tokens(t, 1, "checkpoint");
        writes();
        const lsn_t l = db.checkpoint();
        out << "OK " << l << '\n';
      } else if (cmd == "backup") {
        want_tokens(t, 2, "backup B");
        writes();
        const lsn_t l = db.backup(arg(t[1], "B")).lsn;
        out << "OK " << l << '\n';
      } else if (cmd == "stats") {
        want_tokens(t, 1, "stats");
        nlohmann::json j = stats_json(db.stats());
        j["version"] = pageio::version_string;  // as in every JSON output
        out << j.dump() << '\n';
      } else {
        throw bad_request("unknown request \"" + escape(cmd) +
                          "\": put, get, del, batch, scan, checkpoint, backup, stats or quit");
      }
    } catch (const bad_request& e) {
      out << "ERR " << one_line(e.what()) << '\n';
    } catch (const std::invalid_argument& e) {
      out << "ERR " << one_line(e.what()) << '\n';
    } catch (const std::exception& e) {
      // The store's own failure (a damaged page, the disk): said, and the
      // shell goes on; the next request may fail the same way.
      out << "ERR " << one_line(e.what()) << '\n';
    }
    out.flush();
  }
}

}  // namespace pageio::kv::tool
