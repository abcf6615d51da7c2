#include "beast_server/request_handler.hpp"

#include <boost/beast/core/string.hpp>
#include <chrono>
#include <exception>
#include <string>
#include <utility>
#include <variant>

#include "beast_server/json_text.hpp"
#include "beast_server/version.hpp"
#include "beast_server/web_routes.hpp"

namespace pysandbox::beast_server {

namespace {

constexpr std::string_view kExecuteAllow = "POST";
constexpr std::string_view kReadOnlyAllow = "GET, HEAD";

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
      .count();
}

// Routing ignores the query string.
std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool is_read_only(http::verb method) {
  return method == http::verb::get || method == http::verb::head;
}

}  // namespace

bool is_json_media_type(std::string_view content_type) {
  return beast::iequals(trim(content_type.substr(0, content_type.find(';'))), "application/json");
}

Response make_http_response(const JsonResponse& json, unsigned version) {
  Response response{static_cast<http::status>(json.status), version};
  response.set(http::field::content_type, "application/json");
  for (const auto& [name, value] : json.headers) response.set(name, value);
  response.body() = to_json_text(json.body);
  return response;
}

RequestHandler::RequestHandler(const Config& config, executor::Executor& executor,
                               Admission& admission, Metrics& metrics,
                               std::function<std::size_t()> connection_count)
    : config_(config),
      executor_(executor),
      admission_(admission),
      metrics_(metrics),
      connection_count_(std::move(connection_count)),
      limits_(request_limits(config)),
      web_(config.web ? StaticFiles::load(web_root(config.executor.data_dir)) : StaticFiles()),
      openapi_json_(openapi_text(config, web_.has_index())) {}

std::optional<Response> RequestHandler::check_header(const RequestHeader& header,
                                                     RequestRecord& record) const {
  const std::string_view path = path_of(header.target());
  const auto answer = [&](const JsonResponse& json) {
    record.status = json.status;
    record.error_type = json.error_type;
    return std::optional<Response>(make_http_response(json, header.version()));
  };

  if (path == "/execute") {
    record.route = "/execute";
    if (header.method() != http::verb::post) {
      return answer(method_not_allowed_response(record.request_id, header.method_string(), path,
                                                kExecuteAllow));
    }
    if (draining_) return answer(unavailable_response(record.request_id));
    const auto content_type = header[http::field::content_type];
    if (!is_json_media_type(content_type)) {
      return answer(unsupported_media_type_response(record.request_id, content_type));
    }
    return std::nullopt;
  }
  if (path == "/healthz" || path == "/metrics") {
    record.route = std::string(path);
    if (!is_read_only(header.method())) {
      return answer(method_not_allowed_response(record.request_id, header.method_string(), path,
                                                kReadOnlyAllow));
    }
    return std::nullopt;
  }
  if (path == "/" || path == "/openapi.json" || web_.find(path) != nullptr) {
    record.route = web_route_label(path);
    if (!is_read_only(header.method())) {
      return answer(method_not_allowed_response(record.request_id, header.method_string(), path,
                                                kReadOnlyAllow));
    }
    if (path == "/" && !web_.has_index()) {
      return answer(ide_absent_response(record.request_id, config_.web));
    }
    return std::nullopt;
  }
  record.route = "other";
  return answer(not_found_response(record.request_id, path));
}

boost::asio::awaitable<Response> RequestHandler::handle(const Request& request,
                                                        RequestRecord& record) {
  const std::string_view path = path_of(request.target());
  if (path == "/healthz") co_return healthz(request, record);
  if (path == "/metrics") co_return metrics(request, record);
  if (path == "/openapi.json") co_return openapi(request, record);
  if (const StaticFile* file = web_.find(path)) co_return static_file(*file, request, record);
  co_return co_await execute(request, record);
}

boost::asio::awaitable<Response> RequestHandler::execute(const Request& request,
                                                         RequestRecord& record) {
  const auto respond = [&](const JsonResponse& json) {
    record.status = json.status;
    record.error_type = json.error_type;
    return make_http_response(json, request.version());
  };

  // The header may have been accepted before a drain began (e.g. awaiting 100 Continue).
  if (draining_) co_return respond(unavailable_response(record.request_id));
  auto parsed = parse_execute_request(request.body(), limits_);
  if (const auto* error = std::get_if<ApiError>(&parsed)) {
    co_return respond(error_response(*error, record.request_id));
  }
  auto& run_request = std::get<executor::ExecuteRequest>(parsed);
  run_request.request_id = record.request_id;

  const auto queued_at = std::chrono::steady_clock::now();
  std::optional<Admission::Slot> slot = co_await admission_.acquire();
  record.queue_ms = elapsed_ms(queued_at);
  if (!slot) {
    co_return respond(overloaded_response(record.request_id, admission_.retry_after_seconds()));
  }
  run_request.slot = slot->index();

  executor::RunOutcome outcome;
  try {
    outcome = co_await executor_.run(std::move(run_request));
  } catch (const std::exception& e) {
    record.detail = std::string("executor threw: ") + e.what();
  } catch (...) {
    record.detail = "executor threw a non-standard exception";
  }
  // Hand the sandbox slot to the next waiter before the response is even serialised.
  slot.reset();
  if (!record.detail.empty()) co_return respond(internal_error_response(record.request_id));

  record.isolation = std::string(executor::to_string(outcome.isolation));
  record.start = outcome.start == "warm" ? "warm:" + outcome.zygote : outcome.start;
  if (outcome.ran) {
    record.spawn_ms = outcome.phases.spawn_ms;
    record.run_ms = outcome.phases.run_ms;
    record.teardown_ms = outcome.phases.teardown_ms;
  }
  if (outcome.status == executor::Status::kInternal) {
    record.detail = outcome.internal_detail.empty() ? "executor reported an internal error"
                                                    : outcome.internal_detail;
  }
  co_return respond(map_outcome(outcome, record.request_id));
}

Response RequestHandler::healthz(const Request& request, RequestRecord& record) const {
  JsonResponse json;
  json.status = draining_ ? 503 : 200;
  json.body["status"] = draining_ ? "draining" : "ok";
  json.body["isolation"] = executor_.describe();
  json.body["pool"] = executor_.pool_state();
  json.body["version"] = kVersion;
  json.body["admission"] = boost::json::object{
      {"max_concurrency", admission_.max_concurrency()},
      {"in_flight", admission_.in_flight()},
      {"queued", admission_.queued()},
      {"queue_size", admission_.queue_size()},
  };
  record.status = json.status;
  return make_http_response(json, request.version());
}

Response RequestHandler::metrics(const Request& request, RequestRecord& record) const {
  Response response{http::status::ok, request.version()};
  response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  response.body() = metrics_.render(gauges());
  record.status = 200;
  return response;
}

Gauges RequestHandler::gauges() const {
  const auto pool = executor_.pool_state();
  const auto count = [&pool](const char* key) -> unsigned {
    const auto* v = pool.if_contains(key);
    boost::system::error_code ec;
    const auto n = v != nullptr && v->is_number() ? v->to_number<unsigned>(ec) : 0u;
    return ec ? 0u : n;
  };
  return Gauges{
      .in_flight = admission_.in_flight(),
      .queued = admission_.queued(),
      .max_concurrency = admission_.max_concurrency(),
      .queue_size = admission_.queue_size(),
      .connections = connection_count_ ? connection_count_() : 0,
      .draining = draining_,
      .isolation = std::string(executor::to_string(executor_.isolation())),
      .pool_ready = count("ready"),
      .pool_busy = count("busy"),
      .pool_restarts = count("restarts"),
  };
}

}  // namespace pysandbox::beast_server
