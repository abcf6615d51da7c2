#include "seccomp_policies/policy.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "base/sys/unique_fd.hpp"
#include "seccomp_policies/compiler.hpp"
#include "seccomp_policies/parser.hpp"

namespace pysandbox::seccomp_policies {

Policy::Policy(Action default_action, std::vector<Rule> rules, std::string origin)
    : default_action_(default_action), rules_(std::move(rules)), origin_(std::move(origin)) {}

Policy Policy::parse(std::string_view text, std::string_view origin) {
  ParsedPolicy parsed = parse_policy(text, origin);
  return Policy(parsed.default_action, std::move(parsed.rules), std::string(origin));
}

Policy Policy::load_file(const std::string& path) {
  const auto fail = [&path](const char* step) {
    return PolicyError(path + ": cannot " + step + ": " + std::strerror(errno));
  };
  base::sys::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw fail("open");
  std::string text;
  char buffer[8192];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw fail("read");
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  return parse(text, path);
}

BpfProgram Policy::compile() const { return compile_rules(default_action_, rules_, origin_); }

}  // namespace pysandbox::seccomp_policies
