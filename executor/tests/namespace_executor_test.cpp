// The executor end to end on this host (namespaces mode): real jail, real seccomp policy, real
// Debian interpreter, the project's own test scripts.
#include "executor/namespace_executor.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/serialize.hpp>

#include "executor/factory.hpp"
#include "executor/tests/limit_cases.hpp"

namespace pysandbox::executor {
namespace {

using namespace std::chrono_literals;

class NamespaceExecutorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    settings_ = new Settings();
    settings_->data_dir = PYSANDBOX_DATA_DIR;
    settings_->max_output_bytes = kSuiteOutputCap;
    settings_->uid_base = 2000800;
    // The cold path, deterministically (a fresh executor's zygotes are still starting on its
    // first run); the warm path has its own suites (zygote_pool_test, tests/e2e/pool_test).
    settings_->pool = false;
  }
  static void TearDownTestSuite() { delete settings_; }

  RunOutcome run(std::string script, std::chrono::milliseconds timeout = 10s,
                 std::uint64_t memory = 256ull << 20, std::string stdin_data = {},
                 Settings* settings = nullptr) {
    boost::asio::io_context io;
    auto executor = make_executor(io.get_executor(), settings ? *settings : *settings_);
    ExecuteRequest req;
    req.request_id = "test";
    req.script = std::move(script);
    req.timeout = timeout;
    req.memory_bytes = memory;
    req.stdin_data = std::move(stdin_data);
    // Stop the loop when the run is done: an executor may keep background work on it (a pool's
    // supervisors), so "no more work" never comes by itself.
    std::exception_ptr error;
    RunOutcome outcome;
    boost::asio::co_spawn(io, executor->run(std::move(req)),
                          [&](std::exception_ptr e, RunOutcome o) {
                            error = e;
                            outcome = std::move(o);
                            io.stop();
                          });
    io.run();
    if (error) std::rethrow_exception(error);
    return outcome;
  }

  static Settings* settings_;
};
Settings* NamespaceExecutorTest::settings_ = nullptr;

TEST_F(NamespaceExecutorTest, ReturnsMainsResultAndStdout) {
  auto o = run("def main():\n    print('len:', 3)\n    return {'sum': 6, 't': (1, 2)}\n");
  ASSERT_EQ(o.status, Status::kOk) << o.message << o.stderr_data << o.internal_detail;
  EXPECT_EQ(boost::json::serialize(o.result), R"({"sum":6,"t":[1,2]})");
  EXPECT_EQ(o.stdout_data, "len: 3\n");
  EXPECT_EQ(o.isolation, Isolation::kNamespaces);
  expect_usage_measured(o);
}

TEST_F(NamespaceExecutorTest, LimitsEndTheRunAsInEveryMode) {
  for (const auto& c : kLimitCases)
    expect_limit_outcome(c, run(c.script, c.timeout, c.memory_bytes));
}

TEST_F(NamespaceExecutorTest, TruncateModeKeepsTheResult) {
  Settings s = *settings_;
  s.truncate_output = true;
  auto o = run("def main():\n    print('y' * 200000)\n    return 1\n", 10s, 256ull << 20, {}, &s);
  ASSERT_EQ(o.status, Status::kOk) << o.message;
  EXPECT_TRUE(o.truncated);
  EXPECT_EQ(o.stdout_data.size(), 64u * 1024);
}

TEST_F(NamespaceExecutorTest, OversizedResultIsOutputLimit) {
  auto o = run("def main():\n    return 'z' * 200000\n");
  EXPECT_EQ(o.status, Status::kOutputLimit);
}

TEST_F(NamespaceExecutorTest, EarlyExitIsReported) {
  auto o = run("import os\ndef main():\n    os._exit(7)\n");
  EXPECT_EQ(o.status, Status::kException);
  EXPECT_NE(o.message.find("status 7"), std::string::npos);
}

TEST_F(NamespaceExecutorTest, InvalidUtf8OutputIsSanitised) {
  auto o = run("import sys\ndef main():\n    sys.stdout.buffer.write(b'a\\xffb')\n");
  ASSERT_EQ(o.status, Status::kOk);
  EXPECT_EQ(o.stdout_data,
            "a\xEF\xBF\xBD"
            "b");
}

TEST_F(NamespaceExecutorTest, SetupFailureInTheChildIsInternalWithStepAndErrno) {
  // An interpreter that vanished after startup: the child fails at execve, reports it on its
  // setup pipe, and the run ends as `internal` with the step in the (log-only) detail.
  jail::JailConfig config;
  config.executable = "/usr/bin/definitely-not-python3";
  config.argv = {"python3"};
  config.mounts.ro_paths = jail::default_ro_paths();
  config.init_path = PYSANDBOX_INIT_PATH;
  auto spawner = jail::NamespaceSpawner::create(config);
  ASSERT_TRUE(spawner);
  boost::asio::io_context io;
  NamespaceExecutor executor(io.get_executor(), *settings_, nullptr, std::move(*spawner),
                             std::nullopt, {});
  ExecuteRequest req;
  req.script = "def main():\n    return 1\n";
  req.timeout = 5s;
  auto fut = boost::asio::co_spawn(io, executor.run(std::move(req)), boost::asio::use_future);
  io.run();
  auto o = fut.get();
  EXPECT_EQ(o.status, Status::kInternal);
  EXPECT_FALSE(o.ran);
  EXPECT_EQ(o.internal_detail, "sandbox setup failed: execve #0: No such file or directory");
  EXPECT_EQ(o.message.find("execve"), std::string::npos) << "details must stay in the log";
}

TEST_F(NamespaceExecutorTest, BrokenInterpreterFailsAtStartupNotPerRequest) {
  Settings s = *settings_;
  s.python_path = "/definitely/not/python3";
  boost::asio::io_context io;
  EXPECT_THROW(make_executor(io.get_executor(), s), std::runtime_error);
}

TEST_F(NamespaceExecutorTest, FloorAboveTheHostsModeRefusesToStart) {
  Settings s = *settings_;
  s.min_isolation = Isolation::kFull;
  boost::asio::io_context io;
  try {
    make_executor(io.get_executor(), s);
    FAIL() << "expected the floor to refuse";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("floor 'full'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pysandbox::executor
