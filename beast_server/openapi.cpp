#include "beast_server/openapi.hpp"

#include <boost/json/array.hpp>
#include <string>

#include "beast_server/api_catalog.hpp"
#include "beast_server/version.hpp"

namespace pysandbox::beast_server {

namespace {

using boost::json::array;
using boost::json::object;
using boost::json::value;

value json_ref(std::string_view where) { return object{{"$ref", std::string(where)}}; }

value schema_ref(std::string_view name) {
  return json_ref("#/components/schemas/" + std::string(name));
}

std::string status_text(unsigned status) { return std::to_string(status); }

// The component name of the error response for one status ("Error422").
std::string error_name(unsigned status) { return "Error" + status_text(status); }

object string_schema(std::string_view description) {
  return object{{"type", "string"}, {"description", description}};
}

object json_content(value schema) {
  return object{{"application/json", object{{"schema", std::move(schema)}}}};
}

object request_id_header() {
  return object{{"description",
                 "Echoed from the request when it carried a valid one (1-64 characters of "
                 "[A-Za-z0-9._-]), otherwise generated; also in the log line of the request."},
                {"schema", object{{"type", "string"}}}};
}

object response_headers(std::initializer_list<std::pair<std::string_view, std::string_view>> more) {
  object headers{{"X-Request-Id", json_ref("#/components/headers/X-Request-Id")}};
  for (const auto& [name, component] : more) {
    headers[name] = json_ref("#/components/headers/" + std::string(component));
  }
  return headers;
}

object execute_request_schema(const Config& config) {
  return object{
      {"type", "object"},
      {"additionalProperties", false},
      {"required", array{"script"}},
      {"description",
       "Unknown fields are rejected (400 invalid_request) so that a misspelt limit is never "
       "silently ignored."},
      {"properties",
       object{
           {"script", object{{"type", "string"},
                             {"minLength", 1},
                             {"maxLength", config.max_script_bytes},
                             {"x-max-bytes", config.max_script_bytes},
                             {"description", "Python source defining main(). At most " +
                                                 std::to_string(config.max_script_bytes) +
                                                 " bytes of UTF-8 (more: 413 too_large)."}}},
           {"timeout_ms", object{{"type", "integer"},
                                 {"minimum", 1},
                                 {"default", config.default_timeout_ms},
                                 {"maximum", config.max_timeout_ms},
                                 {"x-capped", true},
                                 {"description",
                                  "Wall-clock limit in milliseconds. A larger value is capped at " +
                                      std::to_string(config.max_timeout_ms) + ", not refused."}}},
           {"memory_mb",
            object{{"type", "integer"},
                   {"minimum", kMinMemoryMb},
                   {"default", config.default_memory_mb},
                   {"maximum", config.max_memory_mb},
                   {"x-capped", true},
                   {"description", "Memory limit in MiB. A larger value is capped at " +
                                       std::to_string(config.max_memory_mb) + ", not refused."}}},
           {"stdin", object{{"type", "string"},
                            {"default", ""},
                            {"description", "The script's standard input."}}},
       }},
  };
}

// Fields of every response of a run that started, success or not.
object run_properties() {
  return object{
      {"stdout", string_schema("What the script wrote to standard output (capped).")},
      {"stderr", string_schema("What the script wrote to standard error (capped).")},
      {"usage", schema_ref("Usage")},
      {"isolation", schema_ref("Isolation")},
      {"start", object{{"type", "string"},
                       {"enum", array{"warm", "cold"}},
                       {"description",
                        "warm: forked from a pre-initialised interpreter of the pool; cold: a "
                        "fresh interpreter started in the sandbox."}}},
      {"truncated", object{{"type", "boolean"},
                           {"description",
                            "With --truncate-output: output past the cap was cut rather than the "
                            "script stopped."}}},
  };
}

array run_field_names() {
  return array{"stdout", "stderr", "usage", "isolation", "start", "truncated"};
}

object execute_result_schema() {
  object properties = run_properties();
  properties["result"] = object{{"description",
                                 "What main() returned, as JSON: None is null, tuples are "
                                 "arrays, int/float/bool/None dict keys are strings."}};
  array required = run_field_names();
  required.insert(required.begin(), "result");
  return object{{"type", "object"},
                {"additionalProperties", false},
                {"required", std::move(required)},
                {"properties", std::move(properties)}};
}

// error_type for one status: each value with its meaning.
value error_type_schema(unsigned status) {
  array choices;
  for (const auto& kind : error_catalog()) {
    if (kind.status != status) continue;
    choices.push_back(object{{"const", kind.error_type}, {"description", kind.meaning}});
  }
  if (choices.size() == 1) return choices.front();
  return object{{"oneOf", std::move(choices)}};
}

object error_schema(unsigned status) {
  object properties{
      {"error", string_schema("A sentence for a person.")},
      {"error_type", error_type_schema(status)},
      {"request_id", string_schema("The request's id (as in X-Request-Id).")},
  };
  object schema{{"type", "object"},
                {"additionalProperties", false},
                {"required", array{"error", "error_type", "request_id"}}};
  if (status == 422) {
    // The script's own faults and the limits: the run's fields are present whenever it ran
    // (all of them together), `signal` exactly when it was killed.
    for (auto& [name, field] : run_properties()) properties[name] = field;
    properties["trace"] = string_schema(
        "The traceback, with only the script's frames (File \"<script>\", line N); may be "
        "empty.");
    properties["signal"] = string_schema("The signal that killed the script, e.g. SIGSEGV.");
    array together = run_field_names();
    together.push_back("trace");
    schema["dependentRequired"] = object{{"usage", together}};
    schema["if"] = object{{"properties", object{{"error_type", object{{"const", "killed"}}}}}};
    schema["then"] = object{{"required", array{"signal"}}};
    schema["else"] = object{{"not", object{{"required", array{"signal"}}}}};
    schema["description"] =
        "The script failed or hit a limit. stdout, stderr, trace, usage, isolation, start and "
        "truncated are present when the script ran.";
  }
  schema["properties"] = std::move(properties);
  return schema;
}

object any_error_schema() {
  array types;
  for (const auto type : error_types()) types.push_back(value(type));
  object schema = error_schema(422);
  schema["description"] =
      "Any error response; error_type per status as in the Error<status> schemas.";
  schema["properties"].as_object()["error_type"] = object{{"type", "string"}, {"enum", types}};
  return schema;
}

// An object of the given non-negative integer fields, all required, nothing else.
object counts_schema(std::string_view description, std::initializer_list<std::string_view> keys) {
  object properties;
  array required;
  for (const auto key : keys) {
    properties[key] = object{{"type", "integer"}, {"minimum", 0}};
    required.emplace_back(key);
  }
  return object{{"type", "object"},
                {"description", description},
                {"additionalProperties", false},
                {"required", std::move(required)},
                {"properties", std::move(properties)}};
}

object health_schema() {
  return object{
      {"type", "object"},
      {"additionalProperties", false},
      {"required", array{"status", "isolation", "pool", "version", "admission", "connections",
                         "fds", "response_memory"}},
      {"properties",
       object{
           {"status", object{{"type", "string"}, {"enum", array{"ok", "draining"}}}},
           {"isolation",
            object{{"type", "object"},
                   {"required", array{"mode"}},
                   {"description",
                    "What the startup probe found and what each sandbox gets; the detail fields "
                    "depend on the host."},
                   {"properties",
                    object{{"mode", schema_ref("Isolation")},
                           {"reason", string_schema("Why the mode is below full.")},
                           {"namespaces",
                            object{{"type", "array"}, {"items", object{{"type", "string"}}}}},
                           {"capabilities",
                            object{{"type", "object"},
                                   {"additionalProperties", object{{"type", "boolean"}}}}},
                           {"seccomp", object{{"type", "boolean"}}},
                           {"pidfd", object{{"type", "boolean"}}}}}}},
           {"pool",
            object{{"type", "object"},
                   {"required", array{"enabled"}},
                   {"description", "The warm pool of pre-initialised interpreters."},
                   {"properties", object{{"enabled", object{{"type", "boolean"}}},
                                         {"reason", string_schema("Why the pool is off.")},
                                         {"ready", object{{"type", "integer"}, {"minimum", 0}}},
                                         {"busy", object{{"type", "integer"}, {"minimum", 0}}},
                                         {"restarts", object{{"type", "integer"}, {"minimum", 0}}},
                                         {"flavours", object{{"type", "array"}}},
                                         {"zygotes", object{{"type", "array"}}},
                                         {"network_namespaces",
                                          object{{"type", "object"},
                                                 {"description",
                                                  "Network namespaces of warm sandboxes: created, "
                                                  "reused once empty, free for reuse."}}}}}}},
           {"version", object{{"type", "string"}}},
           {"admission",
            object{{"type", "object"},
                   {"additionalProperties", false},
                   {"required", array{"max_concurrency", "in_flight", "queued", "queue_size"}},
                   {"properties", object{{"max_concurrency", object{{"type", "integer"}}},
                                         {"in_flight", object{{"type", "integer"}}},
                                         {"queued", object{{"type", "integer"}}},
                                         {"queue_size", object{{"type", "integer"}}}}}}},
           {"connections", counts_schema("Open HTTP connections and their cap.", {"open", "max"})},
           {"fds", counts_schema("The file-descriptor budget: RLIMIT_NOFILE, open now, kept for "
                                 "the runs, per run.",
                                 {"limit", "open", "reserved", "per_run"})},
           {"response_memory",
            counts_schema("Bytes of responses not yet taken by their clients, and their bound.",
                          {"held_bytes", "limit_bytes"})},
       }},
  };
}

object error_response(unsigned status, std::string_view description) {
  object response{{"description", description},
                  {"content", json_content(schema_ref(error_name(status)))}};
  if (status == 405) {
    response["headers"] = response_headers({{"Allow", "Allow"}});
  } else if (status == 429) {
    response["headers"] = response_headers({{"Retry-After", "Retry-After"}});
  } else {
    response["headers"] = response_headers({});
  }
  return response;
}

// /readyz's 503: the Error503 shape plus why the instance is not ready.
object not_ready_response() {
  object schema = error_schema(503);
  schema["required"].as_array().push_back("status");
  schema["properties"].as_object()["status"] =
      object{{"type", "string"},
             {"enum", array{"starting", "draining"}},
             {"description", "starting: the warm pool is not up yet; draining: shutting down."}};
  return object{{"description", "Not ready yet, or draining."},
                {"headers", response_headers({})},
                {"content", json_content(std::move(schema))}};
}

// Responses any request may get, whatever its path: a malformed message, a header over the
// limit, too many connections or a failure of the service.
object default_response() {
  return object{{"description",
                 "Any other error: 400 invalid_request (malformed HTTP), 431 too_large (header), "
                 "503 unavailable (too many connections, or shutting down), 500 internal."},
                {"headers", response_headers({})},
                {"content", json_content(schema_ref("Error"))}};
}

object read_only_operation(std::string_view summary, std::string_view operation_id,
                           object responses, std::string_view description = "") {
  responses["405"] = json_ref("#/components/responses/MethodNotAllowed");
  responses["default"] = json_ref("#/components/responses/Default");
  object operation{
      {"summary", summary}, {"operationId", operation_id}, {"responses", std::move(responses)}};
  if (!description.empty()) operation["description"] = description;
  return operation;
}

object static_content(std::initializer_list<std::string_view> types) {
  object content;
  for (const auto type : types) content[type] = object{{"schema", object{{"type", "string"}}}};
  return content;
}

object static_ok(std::string_view description, std::initializer_list<std::string_view> types) {
  return object{
      {"description", description},
      {"headers", response_headers({{"Cache-Control", "Cache-Control"},
                                    {"Content-Security-Policy", "Content-Security-Policy"},
                                    {"X-Content-Type-Options", "X-Content-Type-Options"}})},
      {"content", static_content(types)}};
}

}  // namespace

object openapi_document(const Config& config, bool web) {
  object schemas{
      {"ExecuteRequest", execute_request_schema(config)},
      {"ExecuteResult", execute_result_schema()},
      {"Usage",
       object{{"type", "object"},
              {"additionalProperties", false},
              {"required", array{"wall_ms", "cpu_ms", "peak_memory_bytes"}},
              {"properties",
               object{{"wall_ms", object{{"type", "number"}, {"minimum", 0}}},
                      {"cpu_ms", object{{"type", "number"}, {"minimum", 0}}},
                      {"peak_memory_bytes", object{{"type", "integer"}, {"minimum", 0}}}}}}},
      {"Isolation", object{{"type", "string"},
                           {"enum", array{"rlimit", "namespaces", "full"}},
                           {"description", "The isolation mode the run had (see the README)."}}},
      {"Health", health_schema()},
      {"Error", any_error_schema()},
  };
  object responses{
      {"MethodNotAllowed",
       error_response(405, "Wrong method for this path; Allow lists the right ones.")},
      {"NotFound", error_response(404, "No such endpoint.")},
      {"Default", default_response()},
  };
  for (const unsigned status : error_statuses()) schemas[error_name(status)] = error_schema(status);

  object execute_responses{
      {"200", object{{"description", "main() returned; `result` is its value."},
                     {"headers", response_headers({})},
                     {"content", json_content(schema_ref("ExecuteResult"))}}},
  };
  for (const unsigned status : error_statuses()) {
    if (status == 404 || status == 405 || status == 431) continue;  // not about /execute
    std::string description;
    for (const auto& kind : error_catalog()) {
      if (kind.status != status) continue;
      if (!description.empty()) description += " ";
      description += std::string(kind.error_type) + ": " + std::string(kind.meaning);
    }
    execute_responses[status_text(status)] = error_response(status, description);
  }
  execute_responses["405"] = json_ref("#/components/responses/MethodNotAllowed");
  execute_responses["default"] = json_ref("#/components/responses/Default");

  object paths{
      {"/execute",
       object{{"post",
               object{{"summary", "Run a script in a fresh sandbox"},
                      {"operationId", "execute"},
                      {"description",
                       "Runs the script in a single-use sandbox and answers with what main() "
                       "returned and what the script printed, or with an error."},
                      {"requestBody",
                       object{{"required", true},
                              {"description", "At most " + std::to_string(config.max_body_bytes) +
                                                  " bytes (more: 413 too_large)."},
                              {"content", json_content(schema_ref("ExecuteRequest"))}}},
                      {"responses", std::move(execute_responses)}}}}},
      {"/healthz",
       object{{"get",
               read_only_operation(
                   "Isolation mode, warm pool and admission state", "healthz",
                   object{{"200", object{{"description", "Serving."},
                                         {"headers", response_headers({})},
                                         {"content", json_content(schema_ref("Health"))}}},
                          {"503", object{{"description",
                                          "Draining (shutting down), with the state as for 200; or "
                                          "refused (too many open connections), as an error."},
                                         {"headers", response_headers({})},
                                         {"content",
                                          json_content(object{{"anyOf", array{schema_ref("Health"),
                                                                              schema_ref(error_name(
                                                                                  503))}}})}}}})}}},
      {"/readyz",
       object{{"get",
               read_only_operation(
                   "Readiness: whether this instance takes requests now", "readyz",
                   object{{"200",
                           object{{"description", "Ready: the warm pool is up, not draining."},
                                  {"headers", response_headers({})},
                                  {"content",
                                   json_content(object{
                                       {"type", "object"},
                                       {"additionalProperties", false},
                                       {"required", array{"status"}},
                                       {"properties",
                                        object{{"status", object{{"type", "string"},
                                                                 {"enum", array{"ready"}}}}}}})}}},
                          {"503", not_ready_response()}})}}},
      {"/metrics",
       object{{"get",
               read_only_operation(
                   "Prometheus metrics", "metrics",
                   object{{"200",
                           object{{"description", "Prometheus text format 0.0.4."},
                                  {"headers", response_headers({})},
                                  {"content",
                                   object{{"text/plain",
                                           object{{"schema", object{{"type", "string"}}}}}}}}}})}}},
      {"/openapi.json",
       object{{"get",
               read_only_operation(
                   "This document", "openapi",
                   object{{"200",
                           object{{"description", "OpenAPI 3.1, for this server's configuration."},
                                  {"headers", response_headers({})},
                                  {"content", json_content(object{{"type", "object"}})}}}})}}},
  };
  const std::string web_note =
      web ? "Served (--web on)."
          : "Not served on this server (--web off, or the IDE is not installed): 404.";
  paths["/"] = object{
      {"get",
       read_only_operation(
           "The web IDE", "ide",
           object{
               {"200", static_ok("The IDE's index.html.", {"text/html"})},
               {"404",
                object{
                    {"description",
                     "The IDE is disabled (--web off) or not installed; the sentence says which."},
                    {"headers", response_headers({})},
                    {"content", json_content(schema_ref(error_name(404)))}}}},
           web_note)}};
  paths["/assets/{file}"] = object{
      {"parameters",
       array{object{
           {"name", "file"},
           {"in", "path"},
           {"required", true},
           {"schema", object{{"type", "string"}, {"pattern", "^[A-Za-z0-9_][A-Za-z0-9_.-]*$"}}}}}},
      {"get",
       read_only_operation(
           "The IDE's bundled scripts and styles (content-hashed names, cached immutably)",
           "ideAsset",
           object{{"200", static_ok("The file.", {"text/javascript", "text/css", "image/svg+xml"})},
                  {"404", json_ref("#/components/responses/NotFound")}},
           web_note)}};

  object components{
      {"schemas", std::move(schemas)},
      {"responses", std::move(responses)},
      {"headers",
       object{
           {"X-Request-Id", request_id_header()},
           {"Allow", object{{"description", "The methods the path takes."},
                            {"schema", object{{"type", "string"}}}}},
           {"Retry-After", object{{"description", "Seconds to wait before retrying."},
                                  {"schema", object{{"type", "integer"}}}}},
           {"Cache-Control",
            object{{"description",
                    "API responses: no-store. IDE: no-cache for index.html, "
                    "public, max-age=31536000, immutable for content-hashed assets."},
                   {"schema", object{{"type", "string"}}}}},
           {"Content-Security-Policy",
            object{{"description", "default-src 'self' (nothing inline, nothing from elsewhere)."},
                   {"schema", object{{"type", "string"}}}}},
           {"X-Content-Type-Options",
            object{{"description", "nosniff"}, {"schema", object{{"type", "string"}}}}}}},
  };

  array catalog;
  for (const auto& kind : error_catalog()) {
    catalog.push_back(object{{"error_type", kind.error_type},
                             {"status", kind.status},
                             {"class", to_string(kind.error_class)},
                             {"meaning", kind.meaning}});
  }

  return object{
      {"openapi", "3.1.0"},
      {"info",
       object{{"title", "pysandbox"},
              {"version", kVersion},
              {"description",
               "Runs untrusted Python scripts in a Linux sandbox. Every error is a JSON body "
               "{error, error_type, request_id} with a non-2xx status; x-error-catalog lists every "
               "error_type with its status and meaning. Limits and defaults in this document are "
               "this server's configuration."}}},
      {"jsonSchemaDialect", "https://spec.openapis.org/oas/3.1/dialect/base"},
      {"servers", array{object{{"url", "/"}}}},
      {"paths", std::move(paths)},
      {"components", std::move(components)},
      {"x-error-catalog", std::move(catalog)},
  };
}

}  // namespace pysandbox::beast_server
