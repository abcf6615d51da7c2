#include <gtest/gtest.h>

#include <cerrno>
#include <ostream>
#include <string>

#include "seccomp_policies/policy.hpp"

namespace pysandbox::seccomp_policies {
namespace {

using Kind = Action::Kind;
using Op = Condition::Op;

Policy parse(const std::string& text) { return Policy::parse(text, "test.policy"); }

// The PolicyError message for `text`, or "" if it parsed.
std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const PolicyError& e) {
    return e.what();
  }
  return "";
}

TEST(ParserTest, ParsesEveryActionForm) {
  const Policy policy = parse(
      "default errno ENOSYS\n"
      "allow read\n"
      "errno EPERM mount\n"
      "errno 13 chroot\n"
      "kill_process kexec_load\n"
      "kill_thread getppid\n"
      "trap getpgrp\n"
      "log getsid\n");
  EXPECT_EQ(policy.default_action(), (Action{Kind::kErrno, ENOSYS}));
  ASSERT_EQ(policy.rules().size(), 7u);
  EXPECT_EQ(policy.rules()[0].action, (Action{Kind::kAllow, 0}));
  EXPECT_EQ(policy.rules()[1].action, (Action{Kind::kErrno, EPERM}));
  EXPECT_EQ(policy.rules()[2].action, (Action{Kind::kErrno, 13}));
  EXPECT_EQ(policy.rules()[3].action, (Action{Kind::kKillProcess, 0}));
  EXPECT_EQ(policy.rules()[4].action, (Action{Kind::kKillThread, 0}));
  EXPECT_EQ(policy.rules()[5].action, (Action{Kind::kTrap, 0}));
  EXPECT_EQ(policy.rules()[6].action, (Action{Kind::kLog, 0}));
  EXPECT_EQ(policy.rules()[6].syscall, "getsid");
  EXPECT_EQ(policy.rules()[6].line, 8);
}

TEST(ParserTest, KnowsErrnoNames) {
  const std::pair<const char*, int> cases[] = {
      {"EPERM", EPERM},     {"ENOSYS", ENOSYS},
      {"EACCES", EACCES},   {"EINVAL", EINVAL},
      {"ENOTSUP", ENOTSUP}, {"EOPNOTSUPP", EOPNOTSUPP},
      {"ENOENT", ENOENT},   {"EAFNOSUPPORT", EAFNOSUPPORT}};
  for (const auto& [name, value] : cases) {
    const Policy policy = parse(std::string("default errno ") + name + "\n");
    EXPECT_EQ(policy.default_action().errno_value, value) << name;
  }
  EXPECT_EQ(parse("default errno 0x26").default_action().errno_value, 38);
  EXPECT_EQ(parse("default errno 4095").default_action().errno_value, 4095);
}

TEST(ParserTest, OneLineNamingSeveralSyscallsGivesOneRuleEach) {
  const Policy policy = parse("default kill_process\n\nallow read write close\n");
  ASSERT_EQ(policy.rules().size(), 3u);
  EXPECT_EQ(policy.rules()[1].syscall, "write");
  for (const Rule& rule : policy.rules()) {
    EXPECT_EQ(rule.line, 3);
    EXPECT_TRUE(rule.conditions.empty());
    EXPECT_FALSE(rule.optional);
  }
}

TEST(ParserTest, ParsesConditions) {
  const Policy policy = parse(
      "default errno ENOSYS\n"
      "allow socket if arg0 == 1\n"
      "allow getpriority if arg0 != 2 and arg1 < 3\n"
      "allow sched_getparam if arg0 <= 0x10 and arg1 > 5 and arg2 >= 18446744073709551615\n"
      "allow clone if arg0 & 0x7E020080 == 0\n"
      "allow ioctl if arg1 & 0xffffffff != 0x5412\n"
      "allow kill if arg5==7\n");
  const auto& rules = policy.rules();
  ASSERT_EQ(rules.size(), 6u);
  EXPECT_EQ(rules[0].conditions, (std::vector<Condition>{{0, Op::kEq, Condition::kNoMask, 1}}));
  EXPECT_EQ(rules[1].conditions, (std::vector<Condition>{{0, Op::kNe, Condition::kNoMask, 2},
                                                         {1, Op::kLt, Condition::kNoMask, 3}}));
  EXPECT_EQ(rules[2].conditions,
            (std::vector<Condition>{{0, Op::kLe, Condition::kNoMask, 16},
                                    {1, Op::kGt, Condition::kNoMask, 5},
                                    {2, Op::kGe, Condition::kNoMask, ~std::uint64_t{0}}}));
  EXPECT_EQ(rules[3].conditions, (std::vector<Condition>{{0, Op::kMaskedEq, 0x7E020080, 0}}));
  EXPECT_EQ(rules[4].conditions, (std::vector<Condition>{{1, Op::kMaskedNe, 0xffffffff, 0x5412}}));
  EXPECT_EQ(rules[5].conditions, (std::vector<Condition>{{5, Op::kEq, Condition::kNoMask, 7}}));
}

TEST(ParserTest, IgnoresCommentsAndBlankLines) {
  const Policy policy = parse(
      "# header\n"
      "\n"
      "   \t\n"
      "default errno EPERM   # trailing comment\n"
      "allow read # write\n"
      "# allow mount\n");
  EXPECT_EQ(policy.default_action(), (Action{Kind::kErrno, EPERM}));
  ASSERT_EQ(policy.rules().size(), 1u);
  EXPECT_EQ(policy.rules()[0].line, 5);
}

TEST(ParserTest, OptionalNamesMayBeUnknown) {
  const Policy policy = parse(
      "default errno ENOSYS\nallow ?no_such_syscall_here ?read\nerrno EPERM ?nope2 if arg0 == 1\n");
  ASSERT_EQ(policy.rules().size(), 3u);
  EXPECT_EQ(policy.rules()[0].syscall, "no_such_syscall_here");
  EXPECT_TRUE(policy.rules()[0].optional);
  EXPECT_EQ(policy.rules()[1].syscall, "read");
  EXPECT_TRUE(policy.rules()[1].optional);
  // Compiling skips the unknown ones.
  EXPECT_GT(policy.compile().instruction_count(), 0u);
}

TEST(ParserTest, AcceptsExclusiveConditionalRulesWithDifferentActions) {
  EXPECT_EQ(error_of("default errno ENOSYS\n"
                     "allow socket if arg0 == 1\n"
                     "errno EPERM socket if arg0 != 1\n"
                     "allow clone if arg0 & 0x7E020080 == 0\n"
                     "errno EPERM clone if arg0 & 0x7E020080 != 0\n"
                     "errno EPERM ioctl if arg1 & 0xffffffff == 0x5412\n"
                     "allow ioctl if arg1 & 0xffffffff != 0x5412\n"
                     "allow getpriority if arg0 < 5\n"
                     "errno EPERM getpriority if arg0 >= 5\n"
                     "allow kill if arg0 == 1\n"
                     "allow kill if arg1 == 1\n"),
            "");
}

struct ErrorCase {
  const char* text;
  const char* expected;  // "test.policy:LINE: ..." prefix and a distinctive fragment
  const char* fragment;
};

void PrintTo(const ErrorCase& c, std::ostream* out) { *out << c.expected << "..." << c.fragment; }

class ParserErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ParserErrorTest, NamesLineAndProblem) {
  const ErrorCase& c = GetParam();
  const std::string message = error_of(c.text);
  ASSERT_FALSE(message.empty()) << "parsed without error:\n" << c.text;
  EXPECT_EQ(message.rfind(c.expected, 0), 0u) << message;
  EXPECT_NE(message.find(c.fragment), std::string::npos) << message;
}

constexpr const char* kDefault = "default errno ENOSYS\n";

INSTANTIATE_TEST_SUITE_P(
    Cases, ParserErrorTest,
    ::testing::Values(
        ErrorCase{"default errno ENOSYS\n\nallow mont\n",
                  "test.policy:3: ", "unknown syscall 'mont'"},
        ErrorCase{"default errno ENOSYS\nalow read\n", "test.policy:2: ", "unknown action 'alow'"},
        ErrorCase{"default errno EFOO\n", "test.policy:1: ", "unknown errno 'EFOO'"},
        ErrorCase{"default errno ENOSYS\nerrno 4096 read\n", "test.policy:2: ", "exceeds 4095"},
        ErrorCase{"default errno\n", "test.policy:1: ", "expected an errno"},
        ErrorCase{"# c\ndefault allow\ndefault errno EPERM\n",
                  "test.policy:3: ", "duplicate default action (first at line 2)"},
        ErrorCase{"allow read\n", "test.policy: ", "no default action"},
        ErrorCase{"default allow read\n", "test.policy:1: ", "unexpected 'read'"},
        ErrorCase{"default errno ENOSYS\nallow\n", "test.policy:2: ", "syscall name"},
        ErrorCase{"default errno ENOSYS\nallow if arg0 == 1\n", "test.policy:2: ", "syscall name"},
        ErrorCase{"default errno ENOSYS\nallow Read\n",
                  "test.policy:2: ", "invalid syscall name 'Read'"},
        ErrorCase{"default errno ENOSYS\nallow re?ad\n", "test.policy:2: ", "invalid syscall name"},
        ErrorCase{"default errno ENOSYS\nallow read if\n", "test.policy:2: ", "condition"},
        ErrorCase{"default errno ENOSYS\nallow read if arg6 == 1\n",
                  "test.policy:2: ", "arg0..arg5, found 'arg6'"},
        ErrorCase{"default errno ENOSYS\nallow read if x == 1\n", "test.policy:2: ", "found 'x'"},
        ErrorCase{"default errno ENOSYS\nallow read if arg0 1\n",
                  "test.policy:2: ", "comparison operator"},
        ErrorCase{"default errno ENOSYS\nallow read if arg0 ==\n",
                  "test.policy:2: ", "expected a value"},
        ErrorCase{"default errno ENOSYS\nallow read if arg0 == 0xZZ\n",
                  "test.policy:2: ", "found '0xZZ'"},
        ErrorCase{"default errno ENOSYS\nallow read if arg0 == 18446744073709551616\n",
                  "test.policy:2: ", "exceeds 64 bits"},
        ErrorCase{"default errno ENOSYS\nallow read if arg0 == 1 or arg1 == 2\n",
                  "test.policy:2: ", "expected 'and'"},
        ErrorCase{"default errno ENOSYS\nallow read if arg0 = 1\n",
                  "test.policy:2: ", "unexpected character '='"},
        ErrorCase{"default errno ENOSYS\nallow read if arg0 & 0xff < 3\n",
                  "test.policy:2: ", "only == and !="},
        ErrorCase{"default errno ENOSYS\nallow read if arg0 & 0x1 == 0x2\n",
                  "test.policy:2: ", "bits outside mask"},
        ErrorCase{"default errno ENOSYS\nallow read if arg0 < 0\n",
                  "test.policy:2: ", "never holds"},
        ErrorCase{"default errno ENOSYS\nallow read if arg0 > 1 and arg0 < 5\n",
                  "test.policy:2: ", "arg0 is compared twice"},
        ErrorCase{"default errno ENOSYS\nallow read if arg0 & 1 != 0 and arg1 & 1 != 0\n",
                  "test.policy:2: ", "at most one masked !="},
        ErrorCase{"default errno ENOSYS\nallow read\n\nallow read\n",
                  "test.policy:4: ", "duplicate rule for 'read' (first at line 2)"},
        ErrorCase{"default errno ENOSYS\nallow ioctl\nerrno EPERM ioctl if arg1 == 0x5412\n",
                  "test.policy:3: ", "already has a rule without conditions at line 2"},
        ErrorCase{"default errno ENOSYS\nerrno EPERM clone if arg0 & 0x10000000 == 0x10000000\n"
                  "allow clone\n",
                  "test.policy:3: ", "would silently override the rule at line 2"},
        ErrorCase{"default errno ENOSYS\nallow socket if arg0 != 2\n"
                  "errno EPERM socket if arg0 > 0\n",
                  "test.policy:3: ", "overlap the rule at line 2"},
        ErrorCase{"default errno ENOSYS\nallow ioctl if arg1 != 0x5412\n"
                  "errno EPERM ioctl if arg1 & 0xffffffff == 0x5412\n",
                  "test.policy:3: ", "overlap"},
        ErrorCase{"default errno ENOSYS\nallow kill if arg0 == 1\n"
                  "errno EPERM kill if arg1 == 1\n",
                  "test.policy:3: ", "overlap"}));

TEST(ParserTest, EmptyTextHasNoDefault) {
  EXPECT_NE(error_of("").find("no default action"), std::string::npos);
  EXPECT_EQ(error_of(std::string(kDefault) + "#only\n"), "");
}

}  // namespace
}  // namespace pysandbox::seccomp_policies
