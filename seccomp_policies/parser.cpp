#include "seccomp_policies/parser.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "seccomp_policies/condition_sets.hpp"
#include "seccomp_policies/syscall_table.hpp"
#include "seccomp_policies/validate.hpp"

namespace pysandbox::seccomp_policies {
namespace {

// The kernel keeps the low 16 bits of SECCOMP_RET_ERRNO's data, but errno values above
// MAX_ERRNO would not read as errors to user space.
constexpr std::uint64_t kMaxErrno = 4095;
constexpr unsigned kMaxArg = 5;

constexpr std::array<std::pair<std::string_view, int>, 25> kErrnoNames{{
    {"EPERM", EPERM},
    {"ENOENT", ENOENT},
    {"ESRCH", ESRCH},
    {"EINTR", EINTR},
    {"EIO", EIO},
    {"ENXIO", ENXIO},
    {"E2BIG", E2BIG},
    {"EBADF", EBADF},
    {"EAGAIN", EAGAIN},
    {"ENOMEM", ENOMEM},
    {"EACCES", EACCES},
    {"EFAULT", EFAULT},
    {"EBUSY", EBUSY},
    {"EEXIST", EEXIST},
    {"ENODEV", ENODEV},
    {"EINVAL", EINVAL},
    {"ENOTTY", ENOTTY},
    {"ENOSPC", ENOSPC},
    {"EROFS", EROFS},
    {"ENOSYS", ENOSYS},
    {"EPROTONOSUPPORT", EPROTONOSUPPORT},
    {"ENOTSUP", ENOTSUP},
    {"EOPNOTSUPP", EOPNOTSUPP},
    {"EAFNOSUPPORT", EAFNOSUPPORT},
    {"ENOTCONN", ENOTCONN},
}};

std::string quoted(std::string_view token) {
  // Built by appends: GCC 12 at -O3 reports `"'" + std::string(...)` as an overlapping copy
  // (-Wrestrict false positive, GCC bug 105329).
  std::string out;
  out.reserve(token.size() + 2);
  out.push_back('\'');
  out.append(token);
  out.push_back('\'');
  return out;
}

std::string hex(std::uint64_t value) {
  std::array<char, 20> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value, 16);
  return "0x" + std::string(buffer.data(), result.ptr);
}

class LineParser {
 public:
  LineParser(std::string_view origin, int line) : origin_(origin), line_(line) {}

  [[noreturn]] void fail(const std::string& message) const {
    throw PolicyError(std::string(origin_) + ":" + std::to_string(line_) + ": " + message);
  }

  void tokenize(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
      const char c = text[i];
      if (c == ' ' || c == '\t' || c == '\r') {
        ++i;
      } else if (is_word_char(c)) {
        const std::size_t start = i;
        while (i < text.size() && is_word_char(text[i])) ++i;
        tokens_.emplace_back(text.substr(start, i - start));
      } else if (i + 1 < text.size() && text[i + 1] == '=' &&
                 (c == '=' || c == '!' || c == '<' || c == '>')) {
        tokens_.emplace_back(text.substr(i, 2));
        i += 2;
      } else if (c == '<' || c == '>' || c == '&') {
        tokens_.emplace_back(text.substr(i, 1));
        ++i;
      } else {
        fail("unexpected character " + quoted(text.substr(i, 1)));
      }
    }
  }

  bool empty() const { return tokens_.empty(); }
  bool at_end() const { return pos_ == tokens_.size(); }
  std::string_view peek() const { return at_end() ? std::string_view{} : tokens_[pos_]; }
  std::string_view next(std::string_view expected_what) {
    if (at_end()) fail("expected " + std::string(expected_what) + " at end of line");
    return tokens_[pos_++];
  }

  Action parse_action() {
    const std::string_view word = next("an action");
    if (word == "allow") return {Action::Kind::kAllow, 0};
    if (word == "kill_process") return {Action::Kind::kKillProcess, 0};
    if (word == "kill_thread") return {Action::Kind::kKillThread, 0};
    if (word == "trap") return {Action::Kind::kTrap, 0};
    if (word == "log") return {Action::Kind::kLog, 0};
    if (word == "errno") return {Action::Kind::kErrno, parse_errno()};
    fail("unknown action " + quoted(word) +
         " (expected allow, errno, kill_process, kill_thread, trap or log)");
  }

  // NAME... [if COND (and COND)*] after the action.
  std::vector<Rule> parse_rule_body(const Action& action) {
    std::vector<std::pair<std::string, bool>> names;
    while (!at_end() && peek() != "if") {
      const std::string_view token = next("a syscall name");
      const bool optional = token.front() == '?';
      const std::string name(optional ? token.substr(1) : token);
      if (!is_syscall_name(name)) fail("invalid syscall name " + quoted(token));
      if (!optional && !resolve_syscall(name)) fail("unknown syscall " + quoted(name));
      names.emplace_back(name, optional);
    }
    if (names.empty()) fail("expected at least one syscall name after the action");

    std::vector<Condition> conditions;
    if (!at_end()) {
      next("'if'");
      for (;;) {
        conditions.push_back(parse_condition(conditions));
        if (at_end()) break;
        const std::string_view joiner = next("'and'");
        if (joiner != "and") fail("expected 'and' or end of line, found " + quoted(joiner));
      }
    }

    std::vector<Rule> rules;
    for (auto& [name, optional] : names) {
      rules.push_back(Rule{action, std::move(name), optional, conditions, line_});
    }
    return rules;
  }

 private:
  static bool is_word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '?';
  }

  static bool is_syscall_name(std::string_view name) {
    if (name.empty() || (name.front() >= '0' && name.front() <= '9')) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
  }

  std::uint64_t parse_number(std::string_view what) {
    const std::string_view token = next(what);
    std::string_view digits = token;
    int base = 10;
    if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
      digits.remove_prefix(2);
      base = 16;
    }
    std::uint64_t value = 0;
    const auto [ptr, ec] =
        std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
    if (ec == std::errc::result_out_of_range) fail("number " + quoted(token) + " exceeds 64 bits");
    if (ec != std::errc{} || ptr != digits.data() + digits.size()) {
      fail("expected " + std::string(what) + ", found " + quoted(token));
    }
    return value;
  }

  int parse_errno() {
    const std::string_view token = peek();
    if (!token.empty() && token.front() >= '0' && token.front() <= '9') {
      const std::uint64_t value = parse_number("an errno value");
      if (value > kMaxErrno) fail("errno value " + std::to_string(value) + " exceeds 4095");
      return static_cast<int>(value);
    }
    const std::string_view name = next("an errno name or number after 'errno'");
    for (const auto& [known, value] : kErrnoNames) {
      if (known == name) return value;
    }
    fail("unknown errno " + quoted(name));
  }

  Condition parse_condition(const std::vector<Condition>& earlier) {
    const std::string_view arg_token = next("a condition");
    if (arg_token.size() != 4 || arg_token.substr(0, 3) != "arg" || arg_token[3] < '0' ||
        arg_token[3] > static_cast<char>('0' + kMaxArg)) {
      fail("expected arg0..arg5, found " + quoted(arg_token));
    }
    Condition condition;
    condition.arg = static_cast<unsigned>(arg_token[3] - '0');
    const bool masked = peek() == "&";
    if (masked) {
      next("'&'");
      condition.mask = parse_number("a mask");
    }
    const std::string_view op = next("a comparison operator");
    using Op = Condition::Op;
    if (op == "==") {
      condition.op = masked ? Op::kMaskedEq : Op::kEq;
    } else if (op == "!=") {
      condition.op = masked ? Op::kMaskedNe : Op::kNe;
    } else if (masked) {
      fail("a masked comparison supports only == and !=, found " + quoted(op));
    } else if (op == "<") {
      condition.op = Op::kLt;
    } else if (op == "<=") {
      condition.op = Op::kLe;
    } else if (op == ">") {
      condition.op = Op::kGt;
    } else if (op == ">=") {
      condition.op = Op::kGe;
    } else {
      fail("expected a comparison operator, found " + quoted(op));
    }
    condition.value = parse_number("a value");

    if (masked && (condition.value & ~condition.mask) != 0) {
      fail("value " + hex(condition.value) + " has bits outside mask " + hex(condition.mask));
    }
    if (!satisfiable(condition)) fail("condition on " + std::string(arg_token) + " never holds");
    for (const Condition& other : earlier) {
      if (other.arg == condition.arg) {
        // libseccomp 2.5 rejects a rule comparing one argument twice.
        fail(std::string(arg_token) + " is compared twice in one rule");
      }
      if (other.op == Op::kMaskedNe && condition.op == Op::kMaskedNe) {
        fail("at most one masked != comparison per rule");
      }
    }
    return condition;
  }

  std::string_view origin_;
  int line_;
  std::vector<std::string_view> tokens_;
  std::size_t pos_ = 0;
};

}  // namespace

ParsedPolicy parse_policy(std::string_view text, std::string_view origin) {
  ParsedPolicy policy;
  int default_line = 0;
  int line_number = 0;
  while (!text.empty() || line_number == 0) {
    ++line_number;
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    line = line.substr(0, line.find('#'));

    LineParser parser(origin, line_number);
    parser.tokenize(line);
    if (parser.empty()) continue;

    if (parser.peek() == "default") {
      parser.next("'default'");
      if (default_line != 0) {
        parser.fail("duplicate default action (first at line " + std::to_string(default_line) +
                    ")");
      }
      policy.default_action = parser.parse_action();
      if (!parser.at_end()) {
        parser.fail("unexpected " + quoted(parser.peek()) + " after the default action");
      }
      default_line = line_number;
      continue;
    }
    const Action action = parser.parse_action();
    for (Rule& rule : parser.parse_rule_body(action)) policy.rules.push_back(std::move(rule));
  }
  if (default_line == 0) {
    throw PolicyError(std::string(origin) +
                      ": no default action (add a line such as 'default errno ENOSYS')");
  }
  check_rule_conflicts(policy.rules, origin);
  return policy;
}

}  // namespace pysandbox::seccomp_policies
