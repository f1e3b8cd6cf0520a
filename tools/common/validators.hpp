// One checker per kind of value the tools take, so that every option of a
// kind accepts the same spellings and refuses a bad one with the same words:
//
//   seconds  "2", "0.5", or with fio's units "500ms", "10s", "2m", "1h"
//            (us, ms, s, m or min, h); a plain number is seconds
//   size     bytes, or a binary suffix: "4096", "4k", "64KiB", "1.5m", "1g"
//   count    a whole number in a range: "1", "32"
//   number   a number in a range: "0.99"
//   choice   one of a list of words: "randread"
//
// Each as_*() attaches its checker to an option: the text is checked while
// CLI11 parses (before the tool does anything), a duration is rewritten to
// plain seconds for the option's variable, the help shows the kind (SECONDS,
// SIZE, N, NUMBER, TEXT:{the choices}), and a bad value is refused by throwing bad_value
// (command_line.hpp) with one line:
//
//   --warmup -1: must be 0 or more seconds, up to a week (e.g. 2, 0.5, 500ms, 2m)
//
// The check_*() functions behind them return that line ("" when the value is
// good) and are what the tests call.
#pragma once

#include "cli_fwd.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pageio::tools {

// The longest duration any option takes: a week.
inline constexpr double max_seconds = 7 * 24 * 3600;

// The parsers: nullopt when `text` is not a value of the kind. parse_size
// says why in `why` (no number, unknown suffix, not a whole number of bytes,
// too large).
std::optional<double> parse_seconds(std::string_view text);
std::optional<std::uint64_t> parse_size(std::string_view text, std::string* why = nullptr);

// Durations: more than 0 seconds, or 0 and more.
enum class seconds_from { zero, above_zero };

// "" when good. check_seconds rewrites `text` to plain seconds.
std::string check_seconds(std::string_view option, std::string& text, seconds_from low);
std::string check_size(std::string_view option, std::string_view text, std::uint64_t min_bytes = 0);
std::string check_count(std::string_view option, std::string_view text, long long min,
                        unsigned long long max = UINT64_MAX);
std::string check_number(std::string_view option, std::string_view text, double min, double max);
std::string check_choice(std::string_view option, std::string_view text, const std::vector<std::string>& choices);

// The option's own variable may be any floating type (seconds, number), any
// integer type that holds the range (count), or a string (size: the text is
// kept as typed, "1g", and parsed again where it is used).
CLI::Option* as_seconds(CLI::Option* opt, seconds_from low);
CLI::Option* as_size(CLI::Option* opt, std::uint64_t min_bytes = 0);
CLI::Option* as_count(CLI::Option* opt, long long min, unsigned long long max = UINT64_MAX);
CLI::Option* as_number(CLI::Option* opt, double min, double max);
CLI::Option* as_choice(CLI::Option* opt, std::vector<std::string> choices);

// The value as it appears in a message: quoted when empty or holding spaces.
std::string shown(std::string_view text);

}  // namespace pageio::tools
