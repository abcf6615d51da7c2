// GET /openapi.json against the real server: it carries the running configuration, every error
// the server can be made to emit (each entry of the error catalogue but `internal`, which only
// an executor failure produces: beast_server_tests covers it with a fake executor) validates
// against it, and so does every README example response. The validator is Debian's
// python3-jsonschema (openapi_validate.py next to this file).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <array>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/http_client.hpp"
#include "tests/e2e/server_process.hpp"

namespace pysandbox::e2e {
namespace {

using namespace std::chrono_literals;

constexpr const char* kValidator = PYSANDBOX_SOURCE_DIR "/tests/e2e/openapi_validate.py";
constexpr int kSkipStatus = 77;

struct Seen {
  std::string method, target;
  HttpResponse response;
};

std::string scratch_dir() {
  const auto dir =
      std::filesystem::temp_directory_path() / ("pysandbox-openapi-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

void write_records(const std::string& path, const std::vector<Seen>& seen) {
  std::ofstream out(path, std::ios::trunc);
  for (const auto& s : seen) {
    out << boost::json::serialize(boost::json::object{
               {"method", s.method},
               {"target", s.target},
               {"status", s.response.status},
               {"content_type", s.response.header("content-type")},
               {"body", s.response.body},
           })
        << "\n";
  }
}

// Runs the validator; returns its exit status and output.
std::pair<int, std::string> validate(const std::string& arguments) {
  const std::string command =
      "/usr/bin/python3 " + std::string(kValidator) + " " + arguments + " 2>&1";
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string fetch_document(unsigned short port, const std::string& dir) {
  // A test may just have held every connection the server allows: it notices their close
  // asynchronously, so a 503 (no room yet) is retried for a moment.
  auto response = http(port, {.target = "/openapi.json"});
  for (int i = 0; i < 100 && response.status == 503u; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    response = http(port, {.target = "/openapi.json"});
  }
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.header("content-type"), "application/json");
  const std::string path = dir + "/openapi.json";
  std::ofstream(path, std::ios::trunc) << response.body;
  return path;
}

// A connection refused for being over --max-connections gets a canned 503 without sending
// anything: read it whole from a socket that never writes (a request written into a socket the
// server is closing could turn the answer into a reset).
HttpResponse read_refusal(unsigned short port) {
  HttpConnection connection(port);
  std::string raw;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{connection.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    char buffer[4096];
    const ssize_t n = ::recv(connection.native_handle(), buffer, sizeof buffer, 0);
    if (n <= 0) break;
    raw.append(buffer, static_cast<std::size_t>(n));
  }
  HttpResponse response;
  if (raw.rfind("HTTP/1.1 ", 0) == 0)
    response.status = static_cast<unsigned>(std::stoul(raw.substr(9, 3)));
  const auto split = raw.find("\r\n\r\n");
  if (split != std::string::npos) {
    response.body = raw.substr(split + 4);
    if (raw.find("Content-Type: application/json") < split) {
      response.headers["content-type"] = "application/json";
    }
  }
  return response;
}

TEST(OpenApi, DocumentCarriesThisServersLimits) {
  ServerProcess server({"--default-timeout-ms", "1234", "--max-timeout-ms", "23456",
                        "--default-memory-mb", "96", "--max-memory-mb", "512", "--max-script-bytes",
                        "100K", "--pool", "off"});
  const auto response = http(server.port(), {.target = "/openapi.json"});
  ASSERT_EQ(response.status, 200u);
  const auto doc = response.json().as_object();
  EXPECT_EQ(doc.at("openapi").as_string(), "3.1.0");
  const auto& props =
      doc.at("components").at("schemas").at("ExecuteRequest").at("properties").as_object();
  EXPECT_EQ(props.at("timeout_ms").at("default").to_number<int>(), 1234);
  EXPECT_EQ(props.at("timeout_ms").at("maximum").to_number<int>(), 23456);
  EXPECT_EQ(props.at("memory_mb").at("default").to_number<int>(), 96);
  EXPECT_EQ(props.at("memory_mb").at("maximum").to_number<int>(), 512);
  EXPECT_EQ(props.at("script").at("x-max-bytes").to_number<int>(), 100 * 1024);
  for (const char* path : {"/execute", "/healthz", "/readyz", "/metrics", "/openapi.json", "/"}) {
    EXPECT_TRUE(doc.at("paths").as_object().contains(path)) << path;
  }
}

TEST(OpenApi, EveryErrorTheServerEmitsMatchesTheDocument) {
  ServerProcess server({"--max-concurrency", "1", "--queue-size", "0", "--max-body-bytes", "64K",
                        "--max-script-bytes", "32K", "--max-output-bytes", "64K",
                        "--max-connections", "4"});
  const unsigned short port = server.port();
  const std::string dir = scratch_dir();
  std::vector<Seen> seen;
  const auto send = [&](HttpRequest request) {
    auto response = http(port, request);
    seen.push_back({request.method, request.target, response});
    return response;
  };
  const auto post = [&](const std::string& body, const std::string& type = "application/json") {
    return send({.method = "POST",
                 .target = "/execute",
                 .body = body,
                 .headers = {{"Content-Type", type}}});
  };
  const auto run = [&](const std::string& script, const std::string& extra = "") {
    return post("{\"script\": " + quote(script) + (extra.empty() ? "" : ", " + extra) + "}");
  };

  // Successes and the read-only endpoints.
  EXPECT_EQ(run("def main():\n    print('hi')\n    return {'a': (1, 2)}\n").status, 200u);
  EXPECT_EQ(send({.target = "/healthz"}).status, 200u);
  EXPECT_EQ(send({.target = "/metrics"}).status, 200u);
  EXPECT_EQ(send({.target = "/openapi.json"}).status, 200u);
  // The request's faults.
  EXPECT_EQ(post("{").status, 400u);
  EXPECT_EQ(post(R"({"scrpt": "x"})").status, 400u);
  EXPECT_EQ(post(R"({"script": ""})").status, 400u);
  EXPECT_EQ(post(R"({"script": "def main(): pass", "timeout_ms": -1})").status, 400u);
  EXPECT_EQ(post(std::string(70 * 1024, ' ')).status, 413u);
  EXPECT_EQ(run(std::string(40 * 1024, '#')).status, 413u);
  EXPECT_EQ(
      send({.target = "/healthz", .headers = {{"X-Big", std::string(20 * 1024, 'x')}}}).status,
      431u);
  EXPECT_EQ(post(R"({"script": "x"})", "text/plain").status, 415u);
  EXPECT_EQ(send({.target = "/no-such-endpoint"}).status, 404u);
  EXPECT_EQ(send({.method = "GET", .target = "/execute"}).status, 405u);
  EXPECT_EQ(send({.method = "POST",
                  .target = "/healthz",
                  .body = "{}",
                  .headers = {{"Content-Type", "application/json"}}})
                .status,
            405u);
  // The script's faults and the limits.
  EXPECT_EQ(run("def main(:\n    pass\n").status, 422u);
  EXPECT_EQ(run("x = 1\n").status, 422u);
  EXPECT_EQ(run("main = 42\n").status, 422u);
  EXPECT_EQ(run("def main():\n    return 1 / 0\n").status, 422u);
  EXPECT_EQ(run("import numpy as np\ndef main():\n    return np.float64(0.5)\n").status, 422u);
  EXPECT_EQ(run("def main():\n    while True:\n        pass\n", R"("timeout_ms": 300)").status,
            422u);
  EXPECT_EQ(run("def main():\n    b = []\n    while True:\n        b.append(bytearray(16 << 20))\n",
                R"("memory_mb": 64)")
                .status,
            422u);
  EXPECT_EQ(run("import sys\ndef main():\n    sys.stdout.write('x' * (1 << 20))\n").status, 422u);
  EXPECT_EQ(run("import ctypes\ndef main():\n    return ctypes.string_at(0)\n").status, 422u);

  // overloaded: the only sandbox busy, no queue.
  std::thread busy([&] {
    const auto response =
        http(port, {.method = "POST",
                    .target = "/execute",
                    .body = R"({"script": "import time\ndef main():\n    time.sleep(3)\n"})",
                    .headers = {{"Content-Type", "application/json"}}});
    EXPECT_EQ(response.status, 200u) << response.body;
  });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (http(port, {.target = "/healthz"}).json().at("admission").at("in_flight").as_int64() ==
         0) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the long run never started";
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(run("def main():\n    return 1\n").status, 429u);
  busy.join();

  // unavailable: over --max-connections, none of them idle.
  {
    // Each in the middle of a request, so none is idle (an idle one would be evicted to make
    // room for the newcomer).
    std::vector<std::unique_ptr<HttpConnection>> held;
    for (int i = 0; i < 4; ++i) {
      held.push_back(std::make_unique<HttpConnection>(port));
      const std::string partial = "GET /healthz HTTP/1.1\r\n";
      ASSERT_EQ(::send(held.back()->native_handle(), partial.data(), partial.size(), MSG_NOSIGNAL),
                static_cast<ssize_t>(partial.size()));
    }
    // Accepting is asynchronous: the server counts a connection once it has accepted it.
    HttpResponse refused;
    for (int attempt = 0; attempt < 50 && refused.status != 503u; ++attempt) {
      refused = read_refusal(port);
      if (refused.status != 503u) std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(refused.status, 503u);
    seen.push_back({"GET", "/healthz", refused});
  }

  const std::string records = dir + "/responses.jsonl";
  write_records(records, seen);
  const std::string doc = fetch_document(port, dir);
  const auto [status, output] = validate(
      "--doc " + doc + " --responses " + records +
      " --readme " PYSANDBOX_SOURCE_DIR "/README.md --require-errors --allow-missing internal:500");
  if (status == kSkipStatus) GTEST_SKIP() << output;
  EXPECT_EQ(status, 0) << output;
  std::filesystem::remove_all(dir);
}

// Registered as the cleanup of the e2e suite (tests/CMakeLists.txt): every response the suite's
// client recorded must match the document.
TEST(OpenApi, RecordedResponsesMatchTheDocument) {
  const char* records = std::getenv("PYSANDBOX_E2E_RESPONSES_CHECK");
  if (records == nullptr || *records == '\0') {
    GTEST_SKIP() << "runs as e2e.openapi.responses after the e2e suite";
  }
  if (!std::filesystem::exists(records)) GTEST_SKIP() << "no responses were recorded";
  ServerProcess server({"--pool", "off"});
  const std::string dir = scratch_dir();
  const std::string doc = fetch_document(server.port(), dir);
  const auto [status, output] = validate("--doc " + doc + " --responses " + records);
  if (status == kSkipStatus) GTEST_SKIP() << output;
  EXPECT_EQ(status, 0) << output;
  std::cout << output.substr(
      output.rfind("openapi:") == std::string::npos ? 0 : output.rfind("openapi:"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pysandbox::e2e
