// How the tools write keys and values (pageio-kv's shell and JSON,
// pageio-wal dump --decode kv): every byte outside '!'..'~', and '%'
// itself, is written %XX (two upper-case hex digits), so a token never
// holds a space, a newline or a non-ASCII byte.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pageio::tools {

std::string escape(std::string_view raw);
// The bytes `escaped` stands for; empty (and *why set) when a '%' is not
// followed by two hex digits or a byte outside '!'..'~' appears unescaped.
std::optional<std::string> unescape(std::string_view escaped, std::string* why);

}  // namespace pageio::tools
