#include "beast_server/response_budget.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <optional>
#include <vector>

namespace pysandbox::beast_server {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using Lease = ResponseBudget::Lease;

void poll(net::io_context& io) {
  io.restart();
  io.poll();
}

void reserve_into(net::io_context& io, ResponseBudget& budget, std::size_t bytes,
                  std::optional<std::optional<Lease>>& out, std::chrono::milliseconds timeout = 60s,
                  executor::CancelSignal* cancel = nullptr) {
  net::co_spawn(
      io,
      [&budget, &out, bytes, timeout, cancel]() -> net::awaitable<void> {
        out.emplace(co_await budget.reserve(bytes, timeout, cancel));
      },
      net::detached);
}

TEST(ResponseBudget, FitsAtOnceAndReturnsOnRelease) {
  net::io_context io;
  ResponseBudget budget(io.get_executor(), 100);
  std::optional<std::optional<Lease>> a, b;
  reserve_into(io, budget, 60, a);
  reserve_into(io, budget, 40, b);
  poll(io);
  ASSERT_TRUE(a && *a && b && *b);
  EXPECT_EQ(budget.held(), 100u);
  a->reset();
  EXPECT_EQ(budget.held(), 40u);
  b->reset();
  EXPECT_EQ(budget.held(), 0u);
}

TEST(ResponseBudget, WaitersGetInInOrderAsRoomFrees) {
  net::io_context io;
  ResponseBudget budget(io.get_executor(), 100);
  std::optional<std::optional<Lease>> big, second, third;
  reserve_into(io, budget, 90, big);
  poll(io);
  reserve_into(io, budget, 50, second);
  reserve_into(io, budget, 5, third);  // would fit, but must not overtake
  poll(io);
  EXPECT_FALSE(second.has_value());
  EXPECT_FALSE(third.has_value());
  EXPECT_EQ(budget.waiting(), 2u);
  big->reset();
  poll(io);
  ASSERT_TRUE(second && *second && third && *third);
  EXPECT_EQ(budget.held(), 55u);
}

TEST(ResponseBudget, OneResponseLargerThanTheBudgetGoesAlone) {
  net::io_context io;
  ResponseBudget budget(io.get_executor(), 100);
  std::optional<std::optional<Lease>> huge, small;
  reserve_into(io, budget, 500, huge);
  poll(io);
  ASSERT_TRUE(huge && *huge);
  reserve_into(io, budget, 1, small);
  poll(io);
  EXPECT_FALSE(small.has_value());
  huge->reset();
  poll(io);
  ASSERT_TRUE(small && *small);
}

TEST(ResponseBudget, TimeoutAndCancelGiveNothing) {
  net::io_context io;
  ResponseBudget budget(io.get_executor(), 100);
  Lease held = budget.force(100);
  std::optional<std::optional<Lease>> timed_out, cancelled;
  executor::CancelSignal cancel;
  reserve_into(io, budget, 10, timed_out, 20ms);
  reserve_into(io, budget, 10, cancelled, 60s, &cancel);
  poll(io);
  cancel.cancel();
  poll(io);
  ASSERT_TRUE(cancelled.has_value());
  EXPECT_FALSE(cancelled->has_value());
  io.restart();
  io.run_for(2s);
  ASSERT_TRUE(timed_out.has_value());
  EXPECT_FALSE(timed_out->has_value());
  EXPECT_EQ(budget.waiting(), 0u);
  EXPECT_EQ(budget.held(), 100u);
}

TEST(ResponseBudget, WouldWaitMatchesReserve) {
  net::io_context io;
  ResponseBudget budget(io.get_executor(), 100);
  EXPECT_FALSE(budget.would_wait(1000));  // alone, even over the limit
  Lease held = budget.force(60);
  EXPECT_FALSE(budget.would_wait(40));
  EXPECT_TRUE(budget.would_wait(41));
}

TEST(ResponseBudget, ForceGoesOverTheLimit) {
  net::io_context io;
  ResponseBudget budget(io.get_executor(), 10);
  Lease a = budget.force(8);
  Lease b = budget.force(8);
  EXPECT_EQ(budget.held(), 16u);
  Lease moved = std::move(a);
  EXPECT_EQ(budget.held(), 16u);
}

}  // namespace
}  // namespace pysandbox::beast_server
