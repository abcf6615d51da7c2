// JSON text for responses and log lines. Boost.JSON 1.81 prints every double in exponent form
// ("3.1E0"); valid, but the contract's examples and every human reader expect "3.1". This
// writer prints doubles in their shortest round-trip form instead and defers everything else
// to Boost.JSON. Strings that are not valid UTF-8 (a client's path, a script's bytes) are
// written with U+FFFD in place of each invalid byte: the output is always valid JSON.
#pragma once

#include <boost/json/value.hpp>
#include <string>

namespace pysandbox::beast_server {

// Compact JSON text. Doubles: shortest form that parses back to the same value, with ".0" kept
// on integral values so that a float stays a float for the client (100.0 -> "100.0").
std::string to_json_text(const boost::json::value& value);

}  // namespace pysandbox::beast_server
