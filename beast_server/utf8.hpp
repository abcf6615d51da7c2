// UTF-8 hygiene for everything the service writes as JSON (responses and log lines): bytes a
// client or a script chose may be anything, and JSON text must be valid UTF-8.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pysandbox::beast_server {

// True if `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past
// U+10FFFF).
bool is_valid_utf8(std::string_view text);

// `text` with every byte that does not start a well-formed sequence replaced by U+FFFD, one
// replacement per byte: the same rule the executor applies to a script's stdout and stderr, so
// that one stray byte reads the same wherever it is echoed.
std::string to_valid_utf8(std::string_view text);

// The longest prefix of `text` of at most `max_bytes` bytes that does not end inside a UTF-8
// sequence (cutting a request-controlled string must not create an invalid tail).
std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes);

// Bytes `text` takes inside a JSON string once escaped as Boost.JSON writes it ('"' and '\\'
// and \b \f \n \r \t take 2, other control characters 6 as \u00XX); `text` must be valid UTF-8.
std::size_t json_escaped_size(std::string_view text);

// The longest prefix of valid UTF-8 `text` whose escaped size is at most `max_escaped` bytes,
// cut at a character boundary.
std::string_view escaped_prefix(std::string_view text, std::size_t max_escaped);

}  // namespace pysandbox::beast_server
