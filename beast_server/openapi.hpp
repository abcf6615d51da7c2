// GET /openapi.json: an OpenAPI 3.1 description of the HTTP API as this server runs it. Request
// limits and defaults come from the running configuration; every error response and
// `error_type` comes from the error catalogue (api_catalog.hpp).
#pragma once

#include <boost/json/object.hpp>

#include "beast_server/config.hpp"

namespace pysandbox::beast_server {

// `web`: whether the IDE's routes (/, /assets/...) are served (--web and an installed build).
boost::json::object openapi_document(const Config& config, bool web);

}  // namespace pysandbox::beast_server
