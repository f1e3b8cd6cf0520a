// pageio's error category (pageio/engine/error.hpp).
#include <pageio/engine/error.hpp>

namespace pageio {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "pageio"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::corruption: return "data on disk is damaged";
      case errc::pool_exhausted: return "every frame of the buffer pool is pinned";
      case errc::log_failed: return "the write-ahead log failed";
      case errc::closed: return "closed";
      case errc::locked: return "in use by another process";
    }
    return "unknown pageio error " + std::to_string(code);
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const category c;
  return c;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

}  // namespace pageio
