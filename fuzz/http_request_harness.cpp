#include "fuzz/http_request_harness.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <string_view>
#include <variant>

#include "beast_server/admission.hpp"
#include "beast_server/config.hpp"
#include "beast_server/execute_request.hpp"
#include "beast_server/fd_budget.hpp"
#include "beast_server/http_session.hpp"
#include "beast_server/http_validation.hpp"
#include "beast_server/json_text.hpp"
#include "beast_server/metrics.hpp"
#include "beast_server/request_handler.hpp"
#include "beast_server/request_id.hpp"
#include "beast_server/request_log.hpp"
#include "beast_server/response.hpp"
#include "beast_server/response_budget.hpp"
#include "beast_server/utf8.hpp"

namespace pysandbox::fuzz {

namespace {

namespace bs = beast_server;
namespace http = bs::http;

// Never asked to run anything: check_header and the body's validation do not reach it.
class NoExecutor final : public executor::Executor {
 public:
  boost::asio::awaitable<executor::RunOutcome> run(executor::ExecuteRequest) override {
    co_return executor::RunOutcome{};
  }
  executor::Isolation isolation() const override { return executor::Isolation::kNamespaces; }
  boost::json::object describe() const override { return {{"mode", "namespaces"}}; }
};

bs::Config fuzz_config() {
  bs::Config config;
  // Small limits, so that the fuzzer reaches them.
  config.max_body_bytes = 4096;
  config.max_script_bytes = 1024;
  return config;
}

// What a server shares with its handler, built once.
struct Front {
  bs::Config config = fuzz_config();
  NoExecutor executor;
  boost::asio::io_context io;
  bs::Metrics metrics;
  bs::Admission admission{io.get_executor(), 1, 1, std::chrono::milliseconds(1)};
  bs::ResponseBudget responses{io.get_executor(), 1u << 20};
  bs::FdPlan fds;
  bs::RequestHandler handler{config, executor,
                             bs::RequestHandler::Services{.admission = admission,
                                                          .metrics = metrics,
                                                          .responses = responses,
                                                          .fds = fds,
                                                          .connection_count = nullptr}};
};

Front& front() {
  static Front instance;
  return instance;
}

// "" if `text` is a JSON document (strictly: UTF-8 included), else why not.
std::string json_problem(std::string_view what, std::string_view text) {
  boost::system::error_code ec;
  boost::json::parse(text, ec);
  if (ec) return std::string(what) + " is not valid JSON (" + ec.message() + ")";
  return "";
}

std::string check_response(const bs::JsonResponse& json) {
  const std::string body = bs::to_json_text(json.body);
  if (auto problem = json_problem("a response body", body); !problem.empty()) return problem;
  for (const auto& [name, value] : json.headers) {
    for (const char c : value) {
      if (c == '\r' || c == '\n') return "header " + name + " carries a line break";
    }
  }
  return "";
}

std::string check_log(const bs::RequestRecord& record) {
  return json_problem("a log line",
                      bs::to_json_text(bs::request_line(record, std::chrono::system_clock::now())));
}

std::string check_response(const bs::Response& response) {
  if (response[http::field::content_type] != "application/json") return "";
  return json_problem("a response body", response.body());
}

// One request from the front of `input`; false when the connection would close.
bool one_request(std::string_view& input, std::string& problem) {
  Front& f = front();
  const bs::BlankLines blank = bs::leading_blank_lines(input);
  input.remove_prefix(blank.skip);
  if (input.empty() || blank.need_more) return false;

  http::request_parser<http::string_body> parser;
  parser.header_limit(bs::kHeaderLimit);
  parser.body_limit(boost::none);
  parser.eager(false);
  bs::RequestRecord record;
  record.route = "other";
  bs::beast::error_code ec;
  while (!parser.is_header_done()) {
    const std::size_t used = parser.put(boost::asio::buffer(input.data(), input.size()), ec);
    input.remove_prefix(used);
    if (ec == http::error::need_more) return false;  // the client would have to send more
    if (ec) {
      record.request_id = bs::generate_request_id();
      const auto json =
          ec == http::error::header_limit
              ? bs::error_response(431, "too_large", "header too large", record.request_id)
              : bs::error_response(400, "invalid_request",
                                   "Malformed HTTP request: " + ec.message() + ".",
                                   record.request_id);
      problem = check_response(json);
      return false;
    }
    if (used == 0) return false;
  }

  const bs::Request& request = parser.get();
  record.request_id = bs::choose_request_id(request["X-Request-Id"]);
  if (!bs::is_valid_request_id(record.request_id)) {
    problem = "an unsafe request id was chosen";
    return false;
  }
  record.method = std::string(request.method_string());
  record.target = std::string(request.target());
  if (auto error = bs::header_error(request)) {
    problem = check_response(bs::error_response(400, "invalid_request", *error, record.request_id));
    if (problem.empty()) problem = check_log(record);
    return false;
  }
  // As the session: a Content-Length over the limit is refused before any body is read (Beast
  // would reserve that much for it), and a refused request that awaits 100 Continue gets its
  // answer without its body being read.
  std::optional<bs::Response> early = f.handler.check_header(request, record);
  const auto content_length = parser.content_length();
  const bool body_too_large = content_length && *content_length > f.config.max_body_bytes;
  if (!early && body_too_large) {
    problem =
        check_response(bs::error_response(413, "too_large", "body too large", record.request_id));
    return false;
  }
  if (early) {
    problem = check_response(*early);
    if (problem.empty()) problem = check_log(record);
    if (!problem.empty()) return false;
    if (!parser.is_done() && (bs::wants_continue(request) || body_too_large)) return false;
  }
  if (!parser.is_done()) {
    parser.body_limit(f.config.max_body_bytes);
    while (!parser.is_done()) {
      const std::size_t used = parser.put(boost::asio::buffer(input.data(), input.size()), ec);
      input.remove_prefix(used);
      if (ec == http::error::need_more) return false;
      if (ec) {
        problem = check_response(bs::error_response(
            ec == http::error::body_limit ? 413 : 400, "invalid_request",
            "Malformed HTTP request body: " + ec.message() + ".", record.request_id));
        return false;
      }
      if (used == 0) return false;
    }
  }
  if (!early && bs::route_path(request.target()) == "/execute") {
    auto parsed = bs::parse_execute_request(request.body(), bs::request_limits(f.config));
    if (const auto* error = std::get_if<bs::ApiError>(&parsed)) {
      problem = check_response(bs::error_response(*error, record.request_id));
    } else {
      const auto& run = std::get<executor::ExecuteRequest>(parsed);
      if (run.script.empty() || run.script.size() > f.config.max_script_bytes) {
        problem = "an /execute request with an invalid script was accepted";
      } else if (run.timeout.count() <= 0 || run.timeout.count() > f.config.max_timeout_ms) {
        problem = "an /execute request with an invalid timeout was accepted";
      }
    }
    if (problem.empty()) problem = check_log(record);
  }
  if (!problem.empty()) return false;
  return request.keep_alive();
}

}  // namespace

std::string check_http_request(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string problem;
  try {
    // A connection's requests, as long as it would stay open (bounded by the input).
    while (one_request(input, problem)) {
    }
  } catch (const std::exception& e) {
    problem = std::string("exception: ") + e.what();
  }
  return problem;
}

}  // namespace pysandbox::fuzz
