// Set arithmetic on argument conditions: which argument values a conjunction admits, whether two
// rules can both match one call, and how to lower kMaskedNe to operators libseccomp has.
#pragma once

#include <vector>

#include "seccomp_policies/rule.hpp"

namespace pysandbox::seccomp_policies {

// Conditions that must all hold, at most one per argument (the parser guarantees it, and
// libseccomp 2.5 rejects two comparisons of one argument in a rule).
using Conjunction = std::vector<Condition>;

// Whether at least one 64-bit value satisfies the condition.
bool satisfiable(const Condition& condition);

// Rewrites a conjunction with at most one kMaskedNe into pairwise disjoint conjunctions that use
// only libseccomp's operators and together admit exactly the same calls. `a & M != V` becomes,
// for every bit b set in M, "bits of M at or above b equal V's, except b which differs": one
// alternative per bit, no two of which can match the same value.
std::vector<Conjunction> expand_masked_ne(const Conjunction& conditions);

// Whether one call can satisfy both conjunctions.
bool overlap(const Conjunction& a, const Conjunction& b);

}  // namespace pysandbox::seccomp_policies
