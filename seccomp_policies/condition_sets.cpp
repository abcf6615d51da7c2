#include "seccomp_policies/condition_sets.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>

namespace pysandbox::seccomp_policies {
namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

// The values one native-operator condition admits: an interval, everything but one value, or a
// bit pattern.
struct ValueSet {
  enum class Kind { kEmpty, kRange, kAllBut, kPattern } kind = Kind::kEmpty;
  std::uint64_t lo = 0, hi = 0;       // kRange, inclusive
  std::uint64_t mask = 0, value = 0;  // kPattern: x & mask == value; kAllBut: x != value
};

ValueSet range(std::uint64_t lo, std::uint64_t hi) {
  return {ValueSet::Kind::kRange, lo, hi, 0, 0};
}

ValueSet to_set(const Condition& c) {
  using Op = Condition::Op;
  switch (c.op) {
    case Op::kEq:
      return range(c.value, c.value);
    case Op::kNe:
      return {ValueSet::Kind::kAllBut, 0, 0, 0, c.value};
    case Op::kLt:
      return c.value == 0 ? ValueSet{} : range(0, c.value - 1);
    case Op::kLe:
      return range(0, c.value);
    case Op::kGt:
      return c.value == kMax ? ValueSet{} : range(c.value + 1, kMax);
    case Op::kGe:
      return range(c.value, kMax);
    case Op::kMaskedEq:
      if ((c.value & ~c.mask) != 0) return {};
      return {ValueSet::Kind::kPattern, 0, 0, c.mask, c.value};
    case Op::kMaskedNe:
      break;  // callers expand it first
  }
  return {};
}

std::uint64_t bits_below(unsigned bit) { return (std::uint64_t{1} << bit) - 1; }

// Smallest x >= lo with (x & mask) == value, if any. x either is lo, or agrees with lo above
// some bit b where lo has 0 and x has 1, and is minimal below b; the lowest usable b is best.
std::optional<std::uint64_t> min_pattern_at_least(std::uint64_t lo, std::uint64_t mask,
                                                  std::uint64_t value) {
  if ((lo & mask) == value) return lo;
  for (unsigned b = 0; b < 64; ++b) {
    const std::uint64_t bit = std::uint64_t{1} << b;
    const std::uint64_t above = ~bits_below(b) & ~bit;
    if ((lo & bit) != 0) continue;
    if ((mask & bit) != 0 && (value & bit) == 0) continue;
    if (((lo ^ value) & mask & above) != 0) continue;
    return (lo & above) | bit | (value & bits_below(b));
  }
  return std::nullopt;
}

bool intersects(const ValueSet& a, const ValueSet& b) {
  using K = ValueSet::Kind;
  if (a.kind == K::kEmpty || b.kind == K::kEmpty) return false;
  if (a.kind > b.kind) return intersects(b, a);  // now a.kind <= b.kind
  switch (a.kind) {
    case K::kRange:
      switch (b.kind) {
        case K::kRange:
          return std::max(a.lo, b.lo) <= std::min(a.hi, b.hi);
        case K::kAllBut:
          return !(a.lo == a.hi && a.lo == b.value);
        case K::kPattern: {
          const auto x = min_pattern_at_least(a.lo, b.mask, b.value);
          return x && *x <= a.hi;
        }
        default:
          return false;
      }
    case K::kAllBut:
      if (b.kind == K::kAllBut) return true;  // 2^64 - 2 values remain
      return !(b.mask == kMax && b.value == a.value);
    case K::kPattern:
      return ((a.value ^ b.value) & a.mask & b.mask) == 0;
    default:
      return false;
  }
}

const Condition* find_arg(const Conjunction& conditions, unsigned arg) {
  const auto it = std::find_if(conditions.begin(), conditions.end(),
                               [arg](const Condition& c) { return c.arg == arg; });
  return it == conditions.end() ? nullptr : &*it;
}

bool satisfiable_native(const Conjunction& conditions) {
  return std::all_of(conditions.begin(), conditions.end(),
                     [](const Condition& c) { return to_set(c).kind != ValueSet::Kind::kEmpty; });
}

}  // namespace

bool satisfiable(const Condition& condition) {
  if (condition.op == Condition::Op::kMaskedNe) {
    // Unsatisfiable only if the mask pins every value bit to `value` or value leaves the mask.
    return condition.mask != 0 || (condition.value & ~condition.mask) != 0;
  }
  return to_set(condition).kind != ValueSet::Kind::kEmpty;
}

std::vector<Conjunction> expand_masked_ne(const Conjunction& conditions) {
  const auto it = std::find_if(conditions.begin(), conditions.end(),
                               [](const Condition& c) { return c.op == Condition::Op::kMaskedNe; });
  if (it == conditions.end()) return {conditions};

  const std::size_t index = static_cast<std::size_t>(it - conditions.begin());
  const Condition ne = *it;
  std::vector<Conjunction> alternatives;
  if ((ne.value & ~ne.mask) != 0) {
    // `value` has bits the mask clears: every argument differs, so the condition always holds.
    Conjunction rest = conditions;
    rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(index));
    alternatives.push_back(std::move(rest));
    return alternatives;
  }
  for (unsigned b = 64; b-- > 0;) {
    const std::uint64_t bit = std::uint64_t{1} << b;
    if ((ne.mask & bit) == 0) continue;
    const std::uint64_t mask = ne.mask & ~bits_below(b);
    Conjunction alternative = conditions;
    alternative[index] = Condition{ne.arg, Condition::Op::kMaskedEq, mask, (ne.value ^ bit) & mask};
    alternatives.push_back(std::move(alternative));
  }
  return alternatives;
}

bool overlap(const Conjunction& a, const Conjunction& b) {
  for (const Conjunction& ea : expand_masked_ne(a)) {
    if (!satisfiable_native(ea)) continue;
    for (const Conjunction& eb : expand_masked_ne(b)) {
      if (!satisfiable_native(eb)) continue;
      bool all_args_meet = true;
      for (unsigned arg = 0; arg < 6 && all_args_meet; ++arg) {
        const Condition* ca = find_arg(ea, arg);
        const Condition* cb = find_arg(eb, arg);
        if (ca && cb) all_args_meet = intersects(to_set(*ca), to_set(*cb));
      }
      if (all_args_meet) return true;
    }
  }
  return false;
}

}  // namespace pysandbox::seccomp_policies
