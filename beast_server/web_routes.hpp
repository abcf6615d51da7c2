// The routes beside the API: the web IDE (/ and its files) and /openapi.json. What they answer
// is decided here; request_handler routes to them.
#pragma once

#include <string>
#include <string_view>

#include "beast_server/config.hpp"
#include "beast_server/response.hpp"

namespace pysandbox::beast_server {

// Applied to the IDE's files: no inline script or style, nothing from elsewhere, no framing.
inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

// The metrics route label (bounded): "/", "/openapi.json", or "/assets" for every other file.
std::string web_route_label(std::string_view path);

// 404 for / when the IDE is off (--web off) or not installed, saying which.
JsonResponse ide_absent_response(std::string_view request_id, bool web_enabled);

// The serialised OpenAPI document for this configuration (built once, at startup).
std::string openapi_text(const Config& config, bool web);

}  // namespace pysandbox::beast_server
