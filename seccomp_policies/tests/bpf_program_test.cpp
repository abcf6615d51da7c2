#include "seccomp_policies/bpf_program.hpp"

#include <gtest/gtest.h>
#include <linux/seccomp.h>

#include <cerrno>
#include <utility>

namespace pysandbox::seccomp_policies {
namespace {

BpfProgram allow_all(std::size_t padding) {
  // Element by element: GCC 12 at -O3 reports a false -Wstringop-overflow ("writing 2 bytes
  // into a region of size 0") for a vector filled by its count constructor.
  std::vector<sock_filter> instructions;
  instructions.reserve(padding + 1);
  for (std::size_t i = 0; i < padding; ++i) {
    instructions.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0));
  }
  instructions.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  return BpfProgram(std::move(instructions));
}

void expect_self_contained(const BpfProgram& program) {
  EXPECT_EQ(program.fprog().len, program.instruction_count());
  if (program.instruction_count() == 0) {
    EXPECT_EQ(program.fprog().filter, nullptr);
  } else {
    EXPECT_EQ(program.fprog().filter, program.instructions().data());
  }
}

TEST(BpfProgramTest, EmptyByDefault) {
  const BpfProgram program;
  EXPECT_EQ(program.instruction_count(), 0u);
  expect_self_contained(program);
  EXPECT_EQ(install(program), EINVAL);
}

TEST(BpfProgramTest, FprogFollowsCopies) {
  const BpfProgram original = allow_all(3);
  const BpfProgram copy(original);
  EXPECT_EQ(copy.instruction_count(), 4u);
  EXPECT_NE(copy.fprog().filter, original.fprog().filter);
  expect_self_contained(copy);
  expect_self_contained(original);

  BpfProgram assigned = allow_all(0);
  assigned = original;
  EXPECT_EQ(assigned.instruction_count(), 4u);
  expect_self_contained(assigned);
}

TEST(BpfProgramTest, FprogFollowsMoves) {
  BpfProgram source = allow_all(5);
  BpfProgram moved(std::move(source));
  EXPECT_EQ(moved.instruction_count(), 6u);
  expect_self_contained(moved);
  expect_self_contained(source);  // NOLINT(bugprone-use-after-move): defined to be empty
  EXPECT_EQ(source.instruction_count(), 0u);

  BpfProgram target = allow_all(1);
  target = std::move(moved);
  EXPECT_EQ(target.instruction_count(), 6u);
  expect_self_contained(target);
  expect_self_contained(moved);
  EXPECT_EQ(moved.instruction_count(), 0u);
}

}  // namespace
}  // namespace pysandbox::seccomp_policies
