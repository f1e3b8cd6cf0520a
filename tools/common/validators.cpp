#include "validators.hpp"

#include "command_line.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>

namespace pageio::tools {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The leading unsigned decimal number of `text` ("1.5" of "1.5m"); `used`
// is how many characters it took. nullopt when there is none.
std::optional<double> leading_number(std::string_view text, std::size_t& used) {
  used = 0;
  while (used < text.size() && (std::isdigit(static_cast<unsigned char>(text[used])) || text[used] == '.')) ++used;
  if (used == 0) return std::nullopt;
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + used, v);
  if (ec != std::errc() || end != text.data() + used || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Plain decimal text for a number of seconds ("0.5", "120"), exact enough
// for CLI11 to read back.
std::string plain(double v) { return fmt::format("{}", v); }

// Builds the CLI11 validator around a check: the message, when there is
// one, leaves CLI11 as bad_value so that it is printed as it stands.
template <typename Check>
CLI::Validator validator(Check check, std::string description) {
  return CLI::Validator(
      [check](std::string& text) -> std::string {
        if (std::string message = check(text); !message.empty()) throw bad_value(std::move(message));
        return {};
      },
      std::move(description));
}

}  // namespace

std::string shown(std::string_view text) {
  const bool quote = text.empty() || text.find_first_of(" \t\n") != std::string_view::npos;
  return quote ? fmt::format("'{}'", text) : std::string(text);
}

std::optional<double> parse_seconds(std::string_view text) {
  std::size_t used = 0;
  const auto number = leading_number(text, used);
  if (!number) return std::nullopt;
  const std::string unit = lower(text.substr(used));
  double scale = 0;
  if (unit.empty() || unit == "s" || unit == "sec") {
    scale = 1;
  } else if (unit == "ms" || unit == "msec") {
    scale = 1e-3;
  } else if (unit == "us" || unit == "usec") {
    scale = 1e-6;
  } else if (unit == "m" || unit == "min") {
    scale = 60;
  } else if (unit == "h") {
    scale = 3600;
  } else {
    return std::nullopt;
  }
  return *number * scale;
}

std::optional<std::uint64_t> parse_size(std::string_view text, std::string* why) {
  auto fail = [&](std::string reason) -> std::optional<std::uint64_t> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  std::size_t used = 0;
  const auto number = leading_number(text, used);
  if (!number) return fail(used == 0 ? "no number" : "malformed number");
  const std::string suffix = lower(text.substr(used));
  int power = 0;
  std::string rest = suffix;
  if (!rest.empty()) {
    switch (rest.front()) {
      case 'k': power = 1; break;
      case 'm': power = 2; break;
      case 'g': power = 3; break;
      case 't': power = 4; break;
      case 'b': break;
      default: return fail("unknown suffix '" + suffix + "'");
    }
    if (power > 0) rest.erase(0, 1);
    if (!(rest.empty() || rest == "b" || rest == "ib")) return fail("unknown suffix '" + suffix + "'");
  }
  const double bytes = *number * std::pow(1024.0, power);
  if (bytes >= 0x1p63) return fail("too large");
  if (bytes != std::floor(bytes)) return fail("not a whole number of bytes");
  return static_cast<std::uint64_t>(bytes);
}

std::string check_seconds(std::string_view option, std::string& text, seconds_from low) {
  const auto v = parse_seconds(text);
  const bool ok = v && *v <= max_seconds && (low == seconds_from::zero ? *v >= 0 : *v > 0);
  if (!ok) {
    return fmt::format("{} {}: must be {} seconds, up to a week (e.g. 2, 0.5, 500ms, 2m)", option, shown(text),
                       low == seconds_from::zero ? "0 or more" : "more than 0");
  }
  text = plain(*v);
  return {};
}

std::string check_size(std::string_view option, std::string_view text, std::uint64_t min_bytes) {
  std::string why;
  const auto v = parse_size(text, &why);
  if (v && *v >= min_bytes) return {};
  if (v) why = fmt::format("less than {} byte{}", min_bytes, min_bytes == 1 ? "" : "s");
  return fmt::format("{} {}: {}; give a size {}, with an optional suffix k, m, g or t (e.g. 64k, 1m, 1g)", option,
                     shown(text), why, min_bytes > 1 ? fmt::format("of at least {} bytes", min_bytes) : "in bytes");
}

std::string check_count(std::string_view option, std::string_view text, long long min, unsigned long long max) {
  const bool negative = !text.empty() && text.front() == '-';
  const std::string_view digits = negative ? text.substr(1) : text;
  unsigned long long magnitude = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude);
  bool ok = !digits.empty() && ec == std::errc() && end == digits.data() + digits.size();
  if (ok && negative) {
    // -magnitude >= min, with min < 0 (a negative value below a non-negative min fails).
    ok = min < 0 && magnitude <= static_cast<unsigned long long>(-(min + 1)) + 1;
  } else if (ok) {
    ok = (min <= 0 || magnitude >= static_cast<unsigned long long>(min)) && magnitude <= max;
  }
  if (ok) return {};
  if (max == UINT64_MAX) return fmt::format("{} {}: must be a whole number, {} or more", option, shown(text), min);
  return fmt::format("{} {}: must be a whole number from {} to {}", option, shown(text), min, max);
}

std::string check_number(std::string_view option, std::string_view text, double min, double max) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (!text.empty() && ec == std::errc() && end == text.data() + text.size() && v >= min && v <= max) return {};
  return fmt::format("{} {}: must be a number from {} to {}", option, shown(text), min, max);
}

std::string check_choice(std::string_view option, std::string_view text, const std::vector<std::string>& choices) {
  std::string list;
  for (const auto& c : choices) {
    if (c == text) return {};
    list += (list.empty() ? "" : ", ") + c;
  }
  return fmt::format("{} {}: must be one of {}", option, shown(text), list);
}

CLI::Option* as_seconds(CLI::Option* opt, seconds_from low) {
  const std::string name = opt->get_name();
  opt->transform(validator([name, low](std::string& t) { return check_seconds(name, t, low); }, ""));
  return opt->type_name("SECONDS");
}

CLI::Option* as_size(CLI::Option* opt, std::uint64_t min_bytes) {
  const std::string name = opt->get_name();
  opt->check(validator([name, min_bytes](const std::string& t) { return check_size(name, t, min_bytes); }, ""));
  return opt->type_name("SIZE");
}

CLI::Option* as_count(CLI::Option* opt, long long min, unsigned long long max) {
  const std::string name = opt->get_name();
  opt->check(validator([name, min, max](const std::string& t) { return check_count(name, t, min, max); }, ""));
  return opt->type_name(max == UINT64_MAX ? fmt::format("N>={}", min) : fmt::format("N:{}..{}", min, max));
}

CLI::Option* as_number(CLI::Option* opt, double min, double max) {
  const std::string name = opt->get_name();
  opt->check(validator([name, min, max](const std::string& t) { return check_number(name, t, min, max); }, ""));
  return opt->type_name(fmt::format("NUMBER:{}..{}", min, max));
}

CLI::Option* as_choice(CLI::Option* opt, std::vector<std::string> choices) {
  const std::string name = opt->get_name();
  std::string braces;
  for (const auto& c : choices) braces += (braces.empty() ? "" : ",") + c;
  opt->check(validator([name, choices](const std::string& t) { return check_choice(name, t, choices); }, ""));
  return opt->type_name("TEXT:{" + braces + "}");
}

}  // namespace pageio::tools
