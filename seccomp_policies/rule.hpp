// The vocabulary of a seccomp policy: actions, argument conditions and rules.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace pysandbox::seccomp_policies {

// Every failure to read, parse or compile a policy. The message starts with "origin:line:" when
// a line is at fault.
class PolicyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One comparison of a raw 64-bit syscall argument register.
struct Condition {
  enum class Op {
    kEq,
    kNe,
    kLt,
    kLe,
    kGt,
    kGe,
    kMaskedEq,  // (arg & mask) == value
    kMaskedNe,  // (arg & mask) != value; libseccomp has no such operator, the compiler expands it
  };
  static constexpr std::uint64_t kNoMask = ~std::uint64_t{0};

  unsigned arg = 0;  // 0..5
  Op op = Op::kEq;
  std::uint64_t mask = kNoMask;  // only meaningful for the masked operators
  std::uint64_t value = 0;

  bool operator==(const Condition&) const = default;
};

struct Action {
  enum class Kind { kAllow, kErrno, kKillProcess, kKillThread, kTrap, kLog };

  Kind kind = Kind::kAllow;
  int errno_value = 0;  // only meaningful for kErrno

  bool operator==(const Action&) const = default;
};

// One syscall name of one policy line; a line naming several syscalls gives several rules.
struct Rule {
  Action action;
  std::string syscall;
  bool optional = false;  // written with a leading '?': skipped if the name is unknown here
  std::vector<Condition> conditions;  // all must hold; empty = always
  int line = 0;
};

}  // namespace pysandbox::seccomp_policies
