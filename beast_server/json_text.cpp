#include "beast_server/json_text.hpp"

#include "base/log.hpp"

namespace pysandbox::beast_server {

// One writer for responses and log lines (base/log.hpp): doubles in their shortest round-trip
// form, strings as valid UTF-8 (U+FFFD per invalid byte).
std::string to_json_text(const boost::json::value& value) { return base::to_json(value); }

}  // namespace pysandbox::beast_server
