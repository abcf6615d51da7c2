#include "beast_server/web_routes.hpp"

#include "beast_server/json_text.hpp"
#include "beast_server/openapi.hpp"
#include "beast_server/request_handler.hpp"

namespace pysandbox::beast_server {

std::string web_route_label(std::string_view path) {
  if (path == "/" || path == "/openapi.json") return std::string(path);
  return "/assets";
}

JsonResponse ide_absent_response(std::string_view request_id, bool web_enabled) {
  return error_response(
      404, "not_found",
      web_enabled ? "The web IDE is not installed on this server (it is built with npm; see the "
                    "README). The API is POST /execute, described at GET /openapi.json."
                  : "The web IDE is disabled on this server (--web off). The API is POST "
                    "/execute, described at GET /openapi.json.",
      request_id);
}

std::string openapi_text(const Config& config, bool web) {
  return to_json_text(openapi_document(config, web));
}

Response RequestHandler::static_file(const StaticFile& file, const Request& request,
                                     RequestRecord& record) const {
  Response response{http::status::ok, request.version()};
  response.set(http::field::content_type, file.content_type);
  response.set(http::field::cache_control, file.cache_control);
  response.set("Content-Security-Policy", kContentSecurityPolicy);
  response.set("X-Content-Type-Options", "nosniff");
  response.set("Referrer-Policy", "no-referrer");
  if (!file.gzip_body.empty()) {
    // Caches must key the two encodings apart.
    response.set(http::field::vary, "Accept-Encoding");
    if (accepts_gzip(request[http::field::accept_encoding])) {
      response.set(http::field::content_encoding, "gzip");
      response.body() = file.gzip_body;
    }
  }
  if (response.body().empty()) response.body() = file.body;
  record.status = 200;
  return response;
}

Response RequestHandler::openapi(const Request& request, RequestRecord& record) const {
  Response response{http::status::ok, request.version()};
  response.set(http::field::content_type, "application/json");
  response.set("X-Content-Type-Options", "nosniff");
  response.body() = openapi_json_;
  record.status = 200;
  return response;
}

}  // namespace pysandbox::beast_server
