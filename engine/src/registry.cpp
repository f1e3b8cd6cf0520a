// Building backends by name, and finding which ones start here.
#include <pageio/engine/backend.hpp>

#include "aio_backend.hpp"
#include "sync_backend.hpp"
#include "uring_backend.hpp"

namespace pageio {

namespace {

struct entry {
  const char* name;
  std::unique_ptr<io_backend> (*make)(const backend_options&);
};
// Best first.
constexpr entry backends[] = {
    {"uring", detail::make_uring_backend},
    {"aio", detail::make_aio_backend},
    {"sync", detail::make_sync_backend},
};

}  // namespace

std::unique_ptr<io_backend> make_backend(std::string_view name, const backend_options& opts) {
  if (name == "default") {
    std::string reasons;
    for (const entry& e : backends) {
      try {
        return e.make(opts);
      } catch (const backend_unavailable& ex) {
        reasons += std::string(reasons.empty() ? "" : "; ") + ex.what();
      }
    }
    throw backend_unavailable(std::make_error_code(std::errc::not_supported),
                              "no backend starts here: " + reasons);
  }
  for (const entry& e : backends) {
    if (name == e.name) return e.make(opts);
  }
  std::string known;
  for (const entry& e : backends) known += std::string(known.empty() ? "" : ", ") + e.name;
  throw backend_unavailable(std::make_error_code(std::errc::invalid_argument),
                            "unknown backend '" + std::string(name) + "'; choose one of: " + known +
                                ", default");
}

std::vector<std::string> backend_names() {
  std::vector<std::string> out;
  for (const entry& e : backends) out.emplace_back(e.name);
  return out;
}

std::vector<backend_status> probe_backends() {
  std::vector<backend_status> out;
  backend_options small;
  small.queue_depth = 8;
  for (const entry& e : backends) {
    backend_status st{e.name, false, {}};
    try {
      e.make(small);
      st.available = true;
    } catch (const std::exception& ex) {
      st.reason = ex.what();
    }
    out.push_back(std::move(st));
  }
  return out;
}

std::vector<std::string> available_backends() {
  std::vector<std::string> out;
  for (auto& st : probe_backends()) {
    if (st.available) out.push_back(st.name);
  }
  return out;
}

}  // namespace pageio
