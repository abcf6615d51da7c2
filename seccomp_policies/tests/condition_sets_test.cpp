#include "seccomp_policies/condition_sets.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <random>

namespace pysandbox::seccomp_policies {
namespace {

using Op = Condition::Op;
constexpr std::uint64_t kAll = Condition::kNoMask;

bool holds(const Condition& c, std::uint64_t x) {
  switch (c.op) {
    case Op::kEq:
      return x == c.value;
    case Op::kNe:
      return x != c.value;
    case Op::kLt:
      return x < c.value;
    case Op::kLe:
      return x <= c.value;
    case Op::kGt:
      return x > c.value;
    case Op::kGe:
      return x >= c.value;
    case Op::kMaskedEq:
      return (x & c.mask) == c.value;
    case Op::kMaskedNe:
      return (x & c.mask) != c.value;
  }
  return false;
}

const std::uint64_t kProbes[] = {0,
                                 1,
                                 0x5412,
                                 0x5413,
                                 0x10005412,
                                 0xffffffff,
                                 0x100000000,
                                 0x100005412,
                                 0xffffffff00005412,
                                 0x7E020080,
                                 0x10000000,
                                 0x10000011,
                                 0x8000000000000000,
                                 kAll - 1,
                                 kAll};

TEST(ConditionSetsTest, Satisfiable) {
  EXPECT_TRUE(satisfiable({0, Op::kEq, kAll, 0}));
  EXPECT_FALSE(satisfiable({0, Op::kLt, kAll, 0}));
  EXPECT_TRUE(satisfiable({0, Op::kLe, kAll, 0}));
  EXPECT_FALSE(satisfiable({0, Op::kGt, kAll, kAll}));
  EXPECT_TRUE(satisfiable({0, Op::kGe, kAll, kAll}));
  EXPECT_FALSE(satisfiable({0, Op::kMaskedEq, 0x1, 0x2}));
  EXPECT_TRUE(satisfiable({0, Op::kMaskedEq, 0x0, 0x0}));
  EXPECT_FALSE(satisfiable({0, Op::kMaskedNe, 0x0, 0x0}));
  EXPECT_TRUE(satisfiable({0, Op::kMaskedNe, 0x1, 0x1}));
}

TEST(ConditionSetsTest, ExpansionWithoutMaskedNeIsIdentity) {
  const Conjunction c{{0, Op::kEq, kAll, 1}, {1, Op::kMaskedEq, 0xf, 3}};
  EXPECT_EQ(expand_masked_ne(c), std::vector<Conjunction>{c});
}

TEST(ConditionSetsTest, ExpansionIsDisjointAndExact) {
  for (const auto& [mask, value] : {std::pair<std::uint64_t, std::uint64_t>{0xffffffff, 0x5412},
                                    {0x7E020080, 0},
                                    {kAll, 7},
                                    {0x1, 0x1},
                                    {0xf0f0, 0x1010}}) {
    const Conjunction c{{2, Op::kMaskedNe, mask, value}, {0, Op::kEq, kAll, 9}};
    const std::vector<Conjunction> alternatives = expand_masked_ne(c);
    ASSERT_EQ(alternatives.size(), static_cast<std::size_t>(std::popcount(mask)));
    for (const Conjunction& alternative : alternatives) {
      ASSERT_EQ(alternative.size(), 2u);
      EXPECT_EQ(alternative[0].op, Op::kMaskedEq);
      EXPECT_EQ(alternative[0].arg, 2u);
      EXPECT_EQ(alternative[1], c[1]);  // other conditions ride along unchanged
    }
    std::vector<std::uint64_t> xs(std::begin(kProbes), std::end(kProbes));
    for (std::uint64_t bit = 1; bit != 0; bit <<= 1) xs.push_back(value ^ bit);
    for (const std::uint64_t x : xs) {
      int matches = 0;
      for (const Conjunction& alternative : alternatives) matches += holds(alternative[0], x);
      EXPECT_EQ(matches, (x & mask) != value ? 1 : 0) << std::hex << "x=" << x << " mask=" << mask;
    }
  }
}

TEST(ConditionSetsTest, OverlapOfHandPickedPairs) {
  const auto overlap1 = [](Condition a, Condition b) {
    return overlap(Conjunction{a}, Conjunction{b});
  };
  EXPECT_FALSE(overlap1({0, Op::kEq, kAll, 1}, {0, Op::kNe, kAll, 1}));
  EXPECT_TRUE(overlap1({0, Op::kNe, kAll, 1}, {0, Op::kNe, kAll, 2}));
  EXPECT_FALSE(overlap1({0, Op::kLt, kAll, 5}, {0, Op::kGe, kAll, 5}));
  EXPECT_TRUE(overlap1({0, Op::kLe, kAll, 5}, {0, Op::kGe, kAll, 5}));
  EXPECT_FALSE(
      overlap1({0, Op::kMaskedEq, 0xffffffff, 0x5412}, {0, Op::kMaskedNe, 0xffffffff, 0x5412}));
  // The classic TIOCSTI bypass: a full-width != leaves 0x1_00005412 to both rules.
  EXPECT_TRUE(overlap1({0, Op::kMaskedEq, 0xffffffff, 0x5412}, {0, Op::kNe, kAll, 0x5412}));
  EXPECT_FALSE(overlap1({0, Op::kMaskedEq, 0xff, 0x12}, {0, Op::kLt, kAll, 0x12}));
  EXPECT_TRUE(overlap1({0, Op::kMaskedEq, 0xff, 0x12}, {0, Op::kGt, kAll, 0x12}));
  EXPECT_FALSE(overlap1({0, Op::kMaskedEq, 0xff00000000000000, 0x0100000000000000},
                        {0, Op::kLe, kAll, 0x00ffffffffffffff}));
  EXPECT_TRUE(overlap1({0, Op::kMaskedEq, 0xff00000000000000, 0x0100000000000000},
                       {0, Op::kLe, kAll, 0x0100000000000000}));
  EXPECT_FALSE(overlap1({0, Op::kMaskedEq, kAll, 3}, {0, Op::kNe, kAll, 3}));
  EXPECT_TRUE(overlap1({0, Op::kMaskedEq, 0x1, 1}, {0, Op::kNe, kAll, 3}));
  EXPECT_TRUE(overlap1({0, Op::kMaskedEq, 0x3, 1}, {0, Op::kMaskedEq, 0x6, 4}));   // x = 5
  EXPECT_FALSE(overlap1({0, Op::kMaskedEq, 0x3, 1}, {0, Op::kMaskedEq, 0x6, 6}));  // bit 1
}

TEST(ConditionSetsTest, OverlapNeedsEveryArgumentToMeet) {
  const Conjunction a{{0, Op::kEq, kAll, 1}, {1, Op::kEq, kAll, 2}};
  EXPECT_TRUE(overlap(a, {{0, Op::kEq, kAll, 1}}));
  EXPECT_TRUE(overlap(a, {{2, Op::kEq, kAll, 7}}));
  EXPECT_TRUE(overlap(a, {}));
  EXPECT_FALSE(overlap(a, {{0, Op::kEq, kAll, 1}, {1, Op::kEq, kAll, 3}}));
}

// With constants below 16, whether two conditions share a value is decided within [0, 64).
TEST(ConditionSetsTest, OverlapAgreesWithBruteForce) {
  std::mt19937_64 rng(12345);
  const Op ops[] = {Op::kEq, Op::kNe, Op::kLt,       Op::kLe,
                    Op::kGt, Op::kGe, Op::kMaskedEq, Op::kMaskedNe};
  const auto random_condition = [&] {
    Condition c{0, ops[rng() % 8], kAll, rng() % 16};
    if (c.op == Op::kMaskedEq || c.op == Op::kMaskedNe) {
      c.mask = rng() % 16;
      c.value &= c.mask;
    }
    return c;
  };
  for (int i = 0; i < 5000; ++i) {
    const Condition a = random_condition();
    const Condition b = random_condition();
    bool brute = false;
    for (std::uint64_t x = 0; x < 64 && !brute; ++x) brute = holds(a, x) && holds(b, x);
    EXPECT_EQ(overlap({a}, {b}), brute)
        << "a: op " << static_cast<int>(a.op) << " mask " << a.mask << " value " << a.value
        << "; b: op " << static_cast<int>(b.op) << " mask " << b.mask << " value " << b.value;
  }
}

}  // namespace
}  // namespace pysandbox::seccomp_policies
