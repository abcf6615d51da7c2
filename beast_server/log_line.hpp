// One line of the server's log as it is finally written: a JSON object with "ts". What other
// parts of the process (and the warm pool's zygotes, which share its stderr) write is made to
// fit: a JSON object without "ts" gets one, anything else becomes
// {"ts", "event": "log", "component": "stderr", "message": <the text>}.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace pysandbox::beast_server {

// Longest line kept whole; a longer one is cut there and the rest logged as further lines.
inline constexpr std::size_t kMaxLogLine = 64u << 10;

// `line` (without its newline) as a JSON text line (without a newline), stamped `now` if it
// has no "ts". Always valid JSON: bytes that are not UTF-8 are replaced.
std::string stamp_log_line(std::string_view line, std::chrono::system_clock::time_point now);

}  // namespace pysandbox::beast_server
