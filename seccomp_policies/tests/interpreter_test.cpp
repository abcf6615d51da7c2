// Debian's interpreter under the default policy runs the project's benign workload to the end:
// the allow-list is complete for what scripts typically do.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "seccomp_policies/policy.hpp"
#include "seccomp_policies/tests/child.hpp"

namespace pysandbox::seccomp_policies {
namespace {

constexpr const char* kPython = "/usr/bin/python3";

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

testing::ChildResult run_python(const std::string& code) {
  const BpfProgram program = Policy::load_file(PYSANDBOX_TEST_DEFAULT_POLICY).compile();
  return testing::run_program(program, {kPython, "-I", "-B", "-u", "-c", code},
                              {"PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8",
                               "OPENBLAS_NUM_THREADS=1", "PYSANDBOX_EXPECT_SECCOMP=1"},
                              std::chrono::seconds(60));
}

TEST(InterpreterTest, WorkloadRunsUnderDefaultPolicy) {
  if (access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " is missing";
  const std::string workload = read_file(PYSANDBOX_TEST_WORKLOAD);
  ASSERT_FALSE(workload.empty()) << PYSANDBOX_TEST_WORKLOAD;
  const testing::ChildResult r = run_python(workload);
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  EXPECT_NE(r.output.find("{\"ok\": true, \"sum\": 499500}"), std::string::npos) << r.output;
}

TEST(InterpreterTest, RefusalsReachPythonAsPermissionError) {
  if (access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " is missing";
  const testing::ChildResult r = run_python(
      "import os, socket\n"
      "try:\n"
      "    socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
      "except PermissionError as e:\n"
      "    print('refused', e.errno)\n");
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  EXPECT_EQ(r.output, "refused 1\n");
}

}  // namespace
}  // namespace pysandbox::seccomp_policies
