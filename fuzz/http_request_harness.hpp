// The request path of the HTTP server without sockets, for the fuzz target and its corpus
// replay: bytes a client sends go through what a session does with them (empty lines skipped,
// Beast's request parser with the session's limits, the framing and Host checks, routing,
// the body limit, the /execute body's validation), one pipelined request after another, and
// every response the server would send, and the log line it would write, must be valid JSON.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pysandbox::fuzz {

// What went wrong (a response or log line that is not valid JSON, an exception), or "" if
// nothing did.
std::string check_http_request(const std::uint8_t* data, std::size_t size);

}  // namespace pysandbox::fuzz
