// Every curl example in README.md runs against the real server and must print what the README
// shows after it. An example is a ```sh block holding a curl command, followed by a ```json
// block with the expected body. Numbers under "usage" vary from run to run: only their presence
// is compared; "request_id" is random and "isolation" depends on the host (namespaces on a
// cgroup v1/v2 hybrid, full on a delegated cgroup v2). Everything else must match exactly.
#include <gtest/gtest.h>

#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/e2e/server_process.hpp"

namespace pysandbox::e2e {
namespace {

struct Example {
  int line = 0;
  std::string command;
  std::string expected;
};

std::vector<Example> readme_examples() {
  std::ifstream in(PYSANDBOX_SOURCE_DIR "/README.md");
  std::vector<Example> out;
  std::string line, fence, block;
  int n = 0, block_start = 0;
  std::optional<Example> pending;
  while (std::getline(in, line)) {
    ++n;
    if (fence.empty()) {
      if (line.rfind("```", 0) == 0) {
        fence = line.substr(3);
        block.clear();
        block_start = n;
      } else if (!line.empty() && pending) {
        pending.reset();  // prose between command and output: not an example pair
      }
      continue;
    }
    if (line.rfind("```", 0) != 0) {
      block += line + "\n";
      continue;
    }
    if (fence == "sh" && block.rfind("curl ", 0) == 0) {
      pending = Example{block_start, block, ""};
    } else if (fence == "json" && pending) {
      pending->expected = block;
      out.push_back(*pending);
      pending.reset();
    } else {
      pending.reset();
    }
    fence.clear();
  }
  return out;
}

std::string run_shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  ::pclose(p);
  return out;
}

// Expected ⊆ actual, with "usage" compared by keys and "request_id" ignored.
void expect_matches(const boost::json::value& expected, const boost::json::value& actual,
                    const std::string& where) {
  if (expected.is_object() && actual.is_object()) {
    const auto& e = expected.as_object();
    const auto& a = actual.as_object();
    for (const auto& [key, value] : e) {
      const auto* got = a.if_contains(key);
      ASSERT_NE(got, nullptr) << where << ": missing \"" << key << "\" in "
                              << boost::json::serialize(actual);
      // Host-dependent: the mode, and warm or cold (cold while the zygotes still start).
      if (key == "request_id" || key == "isolation" || key == "start") continue;
      if (key == "usage") {
        for (const auto& [k, v] : value.as_object()) {
          EXPECT_TRUE(got->as_object().contains(k)) << where << ": usage." << k;
        }
        continue;
      }
      expect_matches(value, *got, where + "." + std::string(key));
    }
    EXPECT_EQ(e.size(), a.size()) << where << ": the README shows other fields than "
                                  << boost::json::serialize(actual);
    return;
  }
  EXPECT_EQ(boost::json::serialize(expected), boost::json::serialize(actual)) << where;
}

TEST(Readme, HasCurlExamples) {
  // The contract's cases: success, pandas, numpy, an error, a timeout.
  EXPECT_GE(readme_examples().size(), 5u);
}

TEST(Readme, EveryCurlExamplePrintsWhatTheReadmeShows) {
  ServerProcess server;
  const std::string address = "127.0.0.1:" + std::to_string(server.port());
  for (const auto& ex : readme_examples()) {
    SCOPED_TRACE("README.md:" + std::to_string(ex.line));
    const std::string command =
        std::regex_replace(ex.command, std::regex("localhost:8080"), address);
    const std::string output = run_shell(command);
    boost::system::error_code ec;
    auto actual = boost::json::parse(output, ec);
    ASSERT_FALSE(ec) << "not JSON: " << output;
    auto expected = boost::json::parse(ex.expected, ec);
    ASSERT_FALSE(ec) << "the README's expected output is not JSON: " << ex.expected;
    expect_matches(expected, actual, "body");
  }
}

}  // namespace
}  // namespace pysandbox::e2e
