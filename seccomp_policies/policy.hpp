// A seccomp policy read from the text format described in README.md and default.policy.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "seccomp_policies/bpf_program.hpp"
#include "seccomp_policies/rule.hpp"

namespace pysandbox::seccomp_policies {

class Policy {
 public:
  // `origin` names the text in error messages ("origin:line: ..."). Throws PolicyError.
  static Policy parse(std::string_view text, std::string_view origin);
  // Throws PolicyError, also when the file cannot be read (path and strerror).
  static Policy load_file(const std::string& path);

  const Action& default_action() const noexcept { return default_action_; }
  const std::vector<Rule>& rules() const noexcept { return rules_; }
  const std::string& origin() const noexcept { return origin_; }

  // Builds the filter with libseccomp. Throws PolicyError.
  BpfProgram compile() const;

 private:
  Policy(Action default_action, std::vector<Rule> rules, std::string origin);

  Action default_action_;
  std::vector<Rule> rules_;
  std::string origin_;
};

}  // namespace pysandbox::seccomp_policies
