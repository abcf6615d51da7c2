// The IDE's routes and /openapi.json through the real HTTP stack (in-process server, fake
// executor, a scratch data directory): headers, methods, path traversal, --web off, no build;
// and the error catalogue against what the code emits.
#include "beast_server/web_routes.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "beast_server/api_catalog.hpp"
#include "beast_server/config.hpp"
#include "beast_server/http_types.hpp"
#include "beast_server/openapi.hpp"
#include "beast_server/response.hpp"
#include "beast_server/server.hpp"
#include "beast_server/tests/fake_executor.hpp"

namespace pysandbox::beast_server {
namespace {

namespace fs = std::filesystem;
namespace net = boost::asio;
using net::ip::tcp;
using ClientResponse = http::response<http::string_body>;

class WebServer {
 public:
  explicit WebServer(Config config) {
    executor.set_io(io->get_executor());
    server = std::make_unique<Server>(*io, std::move(config), executor, log);
    port = server->listen();
    server->start(/*handle_signals=*/false);
    thread = std::thread([this] { io->run(); });
  }
  ~WebServer() {
    executor.open_gate();
    net::post(*io, [this] { server->request_stop(); });
    thread.join();
    server.reset();
    io.reset();
  }

  // One request on a fresh connection; the raw target goes out as given.
  ClientResponse get(const std::string& target, http::verb method = http::verb::get,
                     std::vector<std::pair<std::string, std::string>> headers = {}) const {
    net::io_context client_io;
    tcp::socket socket(client_io);
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    timeval tv{10, 0};
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    http::request<http::string_body> request{method, target, 11};
    request.set(http::field::host, "127.0.0.1");
    for (const auto& [name, value] : headers) request.set(name, value);
    request.prepare_payload();
    http::write(socket, request);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.skip(method == http::verb::head);
    parser.body_limit(16 << 20);
    http::read(socket, buffer, parser);
    return parser.release();
  }

  testing::FakeExecutor executor;
  std::ostringstream log;
  std::unique_ptr<net::io_context> io = std::make_unique<net::io_context>(1);
  std::unique_ptr<Server> server;
  std::uint16_t port = 0;
  std::thread thread;
};

class WebRoutes : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = fs::temp_directory_path() /
            ("pysandbox-web-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(data_);
    fs::create_directories(data_ / "web" / "assets");
    write(data_ / "web" / "index.html", kIndex);
    write(data_ / "web" / "assets" / "index-abc123.js", kScript);
    write(data_ / "web" / "assets" / "index-abc123.js.gz", "gzipped-bytes");
    write(data_ / "default.policy", "not for the web");
    fs::create_symlink(data_ / "default.policy", data_ / "web" / "assets" / "policy.js");
  }
  void TearDown() override { fs::remove_all(data_); }

  static void write(const fs::path& path, const std::string& data) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  }

  Config config(bool web = true) const {
    Config c;
    c.listen_address = "127.0.0.1";
    c.port = 0;
    c.web = web;
    c.executor.data_dir = data_.string();
    return c;
  }

  static constexpr const char* kIndex =
      "<!doctype html><script type=module src=./assets/index-abc123.js></script>";
  static constexpr const char* kScript = "console.log('ide')";
  fs::path data_;
};

std::string error_type_of(const ClientResponse& response) {
  return std::string(boost::json::parse(response.body()).at("error_type").as_string());
}

TEST_F(WebRoutes, IndexAndAssetsCarryTheirHeaders) {
  WebServer server(config());
  const auto index = server.get("/");
  EXPECT_EQ(index.result_int(), 200u);
  EXPECT_EQ(index.body(), kIndex);
  EXPECT_EQ(index[http::field::content_type], "text/html; charset=utf-8");
  EXPECT_EQ(index[http::field::cache_control], "no-cache");
  EXPECT_EQ(index["Content-Security-Policy"], kContentSecurityPolicy);
  EXPECT_TRUE(index["Content-Security-Policy"].starts_with("default-src 'self'"));
  EXPECT_EQ(index["X-Content-Type-Options"], "nosniff");
  EXPECT_FALSE(index["X-Request-Id"].empty());

  const auto script = server.get("/assets/index-abc123.js");
  EXPECT_EQ(script.result_int(), 200u);
  EXPECT_EQ(script.body(), kScript);
  EXPECT_EQ(script[http::field::content_type], "text/javascript; charset=utf-8");
  EXPECT_EQ(script[http::field::cache_control], "public, max-age=31536000, immutable");
  EXPECT_EQ(script[http::field::vary], "Accept-Encoding");
  EXPECT_EQ(script[http::field::content_encoding], "");

  const auto gzipped = server.get("/assets/index-abc123.js", http::verb::get,
                                  {{"Accept-Encoding", "gzip, deflate"}});
  EXPECT_EQ(gzipped.body(), "gzipped-bytes");
  EXPECT_EQ(gzipped[http::field::content_encoding], "gzip");

  const auto head = server.get("/", http::verb::head);
  EXPECT_EQ(head.result_int(), 200u);
  EXPECT_EQ(head[http::field::content_length], std::to_string(std::string(kIndex).size()));
  EXPECT_TRUE(head.body().empty());

  // The API keeps its own policy.
  EXPECT_EQ(server.get("/healthz")[http::field::cache_control], "no-store");
}

TEST_F(WebRoutes, NoTargetReachesAFileOutsideTheBuild) {
  WebServer server(config());
  for (const char* target :
       {"/../default.policy", "/assets/../../default.policy",
        "/assets/%2e%2e/%2e%2e/default.policy", "/%2e%2e/default.policy",
        "/assets/..%2f..%2fdefault.policy", "//default.policy", "/assets//index-abc123.js",
        "/assets/policy.js", "/web/index.html", "/default.policy", "/assets/./index-abc123.js",
        "/assets/index-abc123.js.gz", "/index.html/", "http://127.0.0.1/default.policy",
        "/assets/index-abc123.js%00.html"}) {
    const auto response = server.get(target);
    EXPECT_EQ(response.result_int(), 404u) << target;
    EXPECT_EQ(response[http::field::content_type], "application/json") << target;
    EXPECT_EQ(response.body().find("not for the web"), std::string::npos) << target;
  }
  // An absolute path on the host is just an unknown endpoint.
  EXPECT_EQ(server.get("/etc/passwd").result_int(), 404u);
}

TEST_F(WebRoutes, OnlyGetAndHead) {
  WebServer server(config());
  for (const char* target : {"/", "/assets/index-abc123.js", "/openapi.json"}) {
    const auto response = server.get(target, http::verb::delete_);
    EXPECT_EQ(response.result_int(), 405u) << target;
    EXPECT_EQ(response[http::field::allow], "GET, HEAD") << target;
    EXPECT_EQ(error_type_of(response), "method_not_allowed");
  }
}

TEST_F(WebRoutes, WebOffServesNoFileAndSaysSoAtTheRoot) {
  WebServer server(config(/*web=*/false));
  const auto root = server.get("/");
  EXPECT_EQ(root.result_int(), 404u);
  EXPECT_EQ(error_type_of(root), "not_found");
  EXPECT_NE(root.body().find("--web off"), std::string::npos) << root.body();
  EXPECT_EQ(server.get("/assets/index-abc123.js").result_int(), 404u);
  EXPECT_EQ(server.get("/openapi.json").result_int(), 200u);
}

TEST_F(WebRoutes, WithoutABuildTheRootSaysSoInOneJsonLine) {
  fs::remove_all(data_ / "web");
  WebServer server(config());
  const auto root = server.get("/");
  EXPECT_EQ(root.result_int(), 404u);
  EXPECT_EQ(root.body().find('\n'), std::string::npos);
  EXPECT_EQ(error_type_of(root), "not_found");
  EXPECT_NE(root.body().find("not installed"), std::string::npos) << root.body();
  EXPECT_EQ(server.get("/healthz").result_int(), 200u);
}

TEST_F(WebRoutes, OpenApiDocumentIsServedAndCarriesTheConfiguration) {
  Config c = config();
  c.default_timeout_ms = 777;
  c.max_memory_mb = 999;
  WebServer server(c);
  const auto response = server.get("/openapi.json");
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_EQ(response[http::field::content_type], "application/json");
  const auto doc = boost::json::parse(response.body());
  EXPECT_EQ(doc.at("openapi").as_string(), "3.1.0");
  const auto& props = doc.at("components").at("schemas").at("ExecuteRequest").at("properties");
  EXPECT_EQ(props.at("timeout_ms").at("default").to_number<unsigned>(), 777u);
  EXPECT_EQ(props.at("memory_mb").at("maximum").to_number<unsigned>(), 999u);
}

// Every status a run can end with is answered with an entry of the catalogue, and the catalogue
// has no run error the executor cannot produce. (kCancelled is never answered: the client is
// gone.)
TEST(ErrorCatalog, RunOutcomesMapToCatalogEntries) {
  using executor::Status;
  std::set<std::string> produced;
  for (int s = 0; s <= static_cast<int>(Status::kInternal); ++s) {
    const auto status = static_cast<Status>(s);
    if (status == Status::kOk || status == Status::kCancelled) continue;
    executor::RunOutcome outcome;
    outcome.status = status;
    outcome.ran = true;
    outcome.signal = 11;
    const auto response = map_outcome(outcome, "id");
    EXPECT_NE(find_error_kind(response.error_type, response.status), nullptr)
        << response.error_type << " " << response.status;
    produced.insert(response.error_type);
  }
  for (const auto& kind : error_catalog()) {
    if (kind.error_class == ErrorClass::kScript || kind.error_class == ErrorClass::kLimit) {
      EXPECT_TRUE(produced.contains(std::string(kind.error_type))) << kind.error_type;
    }
  }
  EXPECT_EQ(find_error_kind(executor::error_type(Status::kCancelled), 422), nullptr);
}

TEST(ErrorCatalog, ServiceErrorsBuiltByTheCodeAreInTheCatalogue) {
  for (const auto& response :
       {overloaded_response("id", 1), unavailable_response("id"), not_found_response("id", "/x"),
        method_not_allowed_response("id", "PUT", "/x", "GET"),
        unsupported_media_type_response("id", "text/plain"), internal_error_response("id"),
        ide_absent_response("id", true), ide_absent_response("id", false)}) {
    EXPECT_NE(find_error_kind(response.error_type, response.status), nullptr)
        << response.error_type << " " << response.status;
  }
}

TEST(ErrorCatalog, DocumentListsEveryEntryUnderItsStatus) {
  const auto doc = openapi_document(Config{}, true);
  const auto& catalog = doc.at("x-error-catalog").as_array();
  EXPECT_EQ(catalog.size(), error_catalog().size());
  const auto& schemas = doc.at("components").at("schemas").as_object();
  for (const auto& kind : error_catalog()) {
    const auto& schema = schemas.at("Error" + std::to_string(kind.status)).as_object();
    const auto& error_type = schema.at("properties").at("error_type").as_object();
    bool listed = false;
    if (const auto* one = error_type.if_contains("const"))
      listed = one->as_string() == kind.error_type;
    if (const auto* choices = error_type.if_contains("oneOf")) {
      for (const auto& choice : choices->as_array()) {
        listed = listed || choice.at("const").as_string() == kind.error_type;
      }
    }
    EXPECT_TRUE(listed) << kind.error_type << " under " << kind.status;
  }
}

}  // namespace
}  // namespace pysandbox::beast_server
