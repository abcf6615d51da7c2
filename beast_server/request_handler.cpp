#include "beast_server/request_handler.hpp"

#include <boost/beast/core/string.hpp>
#include <chrono>
#include <exception>
#include <string>
#include <utility>
#include <variant>

#include "beast_server/http_validation.hpp"
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
                               Services services)
    : config_(config),
      executor_(executor),
      services_(std::move(services)),
      limits_(request_limits(config)),
      output_cap_{.max_escaped_bytes = config.executor.max_output_bytes,
                  .truncate = config.executor.truncate_output},
      web_(config.web ? StaticFiles::load(web_root(config.executor.data_dir)) : StaticFiles()),
      openapi_json_(openapi_text(config, web_.has_index())) {}

std::optional<Response> RequestHandler::check_header(const RequestHeader& header,
                                                     RequestRecord& record) const {
  const std::string_view path = route_path(header.target());
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
  if (path == "/healthz" || path == "/readyz" || path == "/metrics") {
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

boost::asio::awaitable<RequestHandler::Answer> RequestHandler::handle(
    const Request& request, RequestRecord& record, std::shared_ptr<executor::CancelSignal> cancel) {
  const std::string_view path = route_path(request.target());
  if (path == "/healthz") co_return Answer{healthz(request, record), std::nullopt};
  if (path == "/readyz") co_return Answer{readyz(request, record), std::nullopt};
  if (path == "/metrics") co_return Answer{metrics(request, record), std::nullopt};
  if (path == "/openapi.json") co_return Answer{openapi(request, record), std::nullopt};
  if (const StaticFile* file = web_.find(path))
    co_return Answer{static_file(*file, request, record), std::nullopt};
  co_return co_await execute(request, record, std::move(cancel));
}

boost::asio::awaitable<RequestHandler::Answer> RequestHandler::execute(
    const Request& request, RequestRecord& record, std::shared_ptr<executor::CancelSignal> cancel) {
  const auto respond = [&](const JsonResponse& json) {
    record.status = json.status;
    record.error_type = json.error_type;
    return Answer{make_http_response(json, request.version()), std::nullopt};
  };
  const auto gone = [&] { return cancel != nullptr && cancel->cancelled(); };

  // The header may have been accepted before a drain began (e.g. awaiting 100 Continue).
  if (draining_) co_return respond(unavailable_response(record.request_id));
  auto parsed = parse_execute_request(request.body(), limits_);
  if (const auto* error = std::get_if<ApiError>(&parsed)) {
    co_return respond(error_response(*error, record.request_id));
  }
  auto& run_request = std::get<executor::ExecuteRequest>(parsed);
  run_request.request_id = record.request_id;

  const auto queued_at = std::chrono::steady_clock::now();
  std::optional<Admission::Slot> slot = co_await services_.admission.acquire(cancel.get());
  record.queue_ms = elapsed_ms(queued_at);
  if (gone()) {
    record.abandoned = "queued";
    record.error_type = "cancelled";
    co_return Answer{};
  }
  if (!slot) {
    co_return respond(
        overloaded_response(record.request_id, services_.admission.retry_after_seconds()));
  }
  // A run that would find no descriptors for its pipes fails half-way with a 500; refuse it
  // cleanly instead (the connection cap leaves room for max_concurrency runs, so this is a
  // backstop).
  if (services_.fds.limit != 0 && !room_for_run(count_open_fds(), services_.fds.limit)) {
    record.detail = "file descriptors exhausted";
    auto json =
        error_response(503, "unavailable", "The service is out of file descriptors; retry later.",
                       record.request_id);
    json.headers.emplace_back("Retry-After", "1");
    co_return respond(json);
  }
  run_request.slot = slot->index();
  run_request.cancel = cancel;

  executor::RunOutcome outcome = co_await run_catching(std::move(run_request), record);
  if (gone() || (record.detail.empty() && outcome.status == executor::Status::kCancelled)) {
    // Nobody is waiting for this answer: the sandbox was killed when the client left.
    slot.reset();
    record.abandoned = "running";
    record.error_type = "cancelled";
    record.start = executor::start_label(outcome);
    co_return Answer{};
  }
  if (!record.detail.empty()) {
    slot.reset();
    co_return respond(internal_error_response(record.request_id));
  }

  note_outcome(outcome, record);
  Answer answer = respond(map_outcome(outcome, record.request_id, output_cap_));
  outcome = {};  // the response holds what it needs; the raw output goes now

  // Room for the response among those not yet taken by their clients. Waiting with the slot
  // held keeps what waits bounded by max_concurrency.
  const std::size_t bytes = answer.response.body().size();
  if (services_.responses.would_wait(bytes)) services_.metrics.response_memory_wait();
  answer.lease = co_await services_.responses.reserve(
      bytes, std::chrono::milliseconds(config_.write_timeout_ms), cancel.get());
  slot.reset();
  if (gone()) {
    record.abandoned = "writing";
    co_return Answer{};
  }
  if (!answer.lease) {
    auto json = error_response(
        503, "unavailable",
        "Responses not yet read by their clients fill the service's memory; retry later.",
        record.request_id);
    json.headers.emplace_back("Retry-After", "1");
    co_return respond(json);
  }
  co_return answer;
}

boost::asio::awaitable<executor::RunOutcome> RequestHandler::run_catching(
    executor::ExecuteRequest run_request, RequestRecord& record) {
  executor::RunOutcome outcome;
  try {
    outcome = co_await executor_.run(std::move(run_request));
  } catch (const std::exception& e) {
    record.detail = std::string("executor threw: ") + e.what();
  } catch (...) {
    record.detail = "executor threw a non-standard exception";
  }
  co_return outcome;
}

void RequestHandler::note_outcome(const executor::RunOutcome& outcome, RequestRecord& record) {
  record.isolation = std::string(executor::to_string(outcome.isolation));
  record.start = executor::start_label(outcome);
  if (outcome.ran) {
    record.spawn_ms = outcome.phases.spawn_ms;
    record.run_ms = outcome.phases.run_ms;
    record.teardown_ms = outcome.phases.teardown_ms;
  }
  if (outcome.status == executor::Status::kInternal) {
    record.detail = outcome.internal_detail.empty() ? "executor reported an internal error"
                                                    : outcome.internal_detail;
  }
}

Response RequestHandler::readyz(const Request& request, RequestRecord& record) const {
  JsonResponse json;
  if (draining_) {
    json = error_response(503, "unavailable", "The service is shutting down.", record.request_id);
    json.body["status"] = "draining";
  } else if (!executor_.ready()) {
    json = error_response(503, "unavailable",
                          "The warm pool is starting: runs would start cold; retry shortly.",
                          record.request_id);
    json.body["status"] = "starting";
  } else {
    json.status = 200;
    json.body["status"] = "ready";
  }
  record.status = json.status;
  record.error_type = json.error_type;
  return make_http_response(json, request.version());
}

Response RequestHandler::healthz(const Request& request, RequestRecord& record) const {
  JsonResponse json;
  json.status = draining_ ? 503 : 200;
  json.body["status"] = draining_ ? "draining" : "ok";
  json.body["isolation"] = executor_.describe();
  json.body["pool"] = executor_.pool_state();
  json.body["version"] = kVersion;
  const Admission& admission = services_.admission;
  json.body["admission"] = boost::json::object{
      {"max_concurrency", admission.max_concurrency()},
      {"in_flight", admission.in_flight()},
      {"queued", admission.queued()},
      {"queue_size", admission.queue_size()},
  };
  json.body["connections"] = boost::json::object{
      {"open", services_.connection_count ? services_.connection_count() : 0},
      {"max", services_.fds.max_connections},
  };
  // The file-descriptor budget (fd_budget.hpp): what the limit is, what is open, and what is
  // kept back for runs and the warm pool.
  json.body["fds"] = boost::json::object{
      {"limit", services_.fds.limit},
      {"open", count_open_fds()},
      {"reserved", services_.fds.reserved},
      {"per_run", kFdsPerRun},
  };
  json.body["response_memory"] = boost::json::object{
      {"held_bytes", services_.responses.held()},
      {"limit_bytes", services_.responses.limit()},
  };
  record.status = json.status;
  return make_http_response(json, request.version());
}

Response RequestHandler::metrics(const Request& request, RequestRecord& record) const {
  Response response{http::status::ok, request.version()};
  response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  response.body() = services_.metrics.render(gauges());
  record.status = 200;
  return response;
}

Gauges RequestHandler::gauges() const {
  const Admission& admission = services_.admission;
  return Gauges{
      .in_flight = admission.in_flight(),
      .queued = admission.queued(),
      .max_concurrency = admission.max_concurrency(),
      .queue_size = admission.queue_size(),
      .connections = services_.connection_count ? services_.connection_count() : 0,
      .draining = draining_,
      .isolation = std::string(executor::to_string(executor_.isolation())),
      .pool = executor_.pool_stats(),
      .ready = executor_.ready() && !draining_,
      .fds_limit = services_.fds.limit,
      .fds_open = count_open_fds(),
      .max_connections = services_.fds.max_connections,
      .response_memory_bytes = services_.responses.held(),
      .response_memory_limit_bytes = services_.responses.limit(),
  };
}

}  // namespace pysandbox::beast_server
