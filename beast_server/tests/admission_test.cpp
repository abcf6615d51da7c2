#include "beast_server/admission.hpp"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <memory>
#include <set>
#include <vector>

namespace pysandbox::beast_server {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using Slot = Admission::Slot;

constexpr auto kLong = std::chrono::milliseconds(60000);

// An io_context that ran out of work is stopped; restart so that each step really runs.
void poll(net::io_context& io) {
  io.restart();
  io.poll();
}
void run(net::io_context& io) {
  io.restart();
  io.run();
}

// Acquires into `out` (so that the test holds the slot) and counts completions.
net::awaitable<void> acquire_into(Admission& admission, std::optional<Slot>& out, int& done) {
  out = co_await admission.acquire();
  ++done;
}

TEST(Admission, SlotsUpToTheLimitAreImmediateAndDistinct) {
  net::io_context io;
  Admission admission(io.get_executor(), 2, 4, kLong);
  std::optional<Slot> a, b;
  int done = 0;
  net::co_spawn(io, acquire_into(admission, a, done), net::detached);
  net::co_spawn(io, acquire_into(admission, b, done), net::detached);
  run(io);
  ASSERT_EQ(done, 2);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->index(), b->index());
  EXPECT_LT(a->index(), 2u);
  EXPECT_LT(b->index(), 2u);
  EXPECT_EQ(admission.in_flight(), 2u);
  a.reset();
  EXPECT_EQ(admission.in_flight(), 1u);
  b.reset();
  EXPECT_EQ(admission.in_flight(), 0u);
}

TEST(Admission, WaitersAreServedInFifoOrder) {
  net::io_context io;
  Admission admission(io.get_executor(), 1, 8, kLong);
  std::optional<Slot> held;
  int done = 0;
  net::co_spawn(io, acquire_into(admission, held, done), net::detached);
  run(io);
  ASSERT_TRUE(held);

  std::vector<int> order;
  auto waiter = [&](int id) -> net::awaitable<void> {
    auto slot = co_await admission.acquire();
    EXPECT_TRUE(slot.has_value());
    if (slot) {
      EXPECT_EQ(slot->index(), 0u);
    }
    order.push_back(id);
    // Hold the slot across a suspension so that the next waiter really waits for it.
    net::steady_timer timer(io, 1ms);
    co_await timer.async_wait(net::use_awaitable);
  };
  for (int id = 1; id <= 5; ++id) net::co_spawn(io, waiter(id), net::detached);
  poll(io);
  EXPECT_EQ(admission.queued(), 5u);
  EXPECT_TRUE(order.empty());
  held.reset();  // hands the slot to waiter 1, which hands it to 2, ...
  run(io);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(admission.in_flight(), 0u);
  EXPECT_EQ(admission.queued(), 0u);
}

TEST(Admission, FullQueueIsRefusedImmediately) {
  net::io_context io;
  Admission admission(io.get_executor(), 1, 1, kLong);
  std::optional<Slot> held, queued, refused;
  int done = 0;
  net::co_spawn(io, acquire_into(admission, held, done), net::detached);
  net::co_spawn(io, acquire_into(admission, queued, done), net::detached);
  poll(io);
  EXPECT_EQ(done, 1);
  EXPECT_EQ(admission.queued(), 1u);

  const auto started = std::chrono::steady_clock::now();
  net::co_spawn(io, acquire_into(admission, refused, done), net::detached);
  poll(io);
  EXPECT_EQ(done, 2);
  EXPECT_FALSE(refused.has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_EQ(admission.queued(), 1u);

  held.reset();
  poll(io);
  EXPECT_EQ(done, 3);
  ASSERT_TRUE(queued.has_value());
  EXPECT_EQ(queued->index(), 0u);
}

TEST(Admission, ZeroQueueRefusesWhenAllSlotsAreBusy) {
  net::io_context io;
  Admission admission(io.get_executor(), 1, 0, kLong);
  std::optional<Slot> held, refused;
  int done = 0;
  net::co_spawn(io, acquire_into(admission, held, done), net::detached);
  net::co_spawn(io, acquire_into(admission, refused, done), net::detached);
  poll(io);
  EXPECT_EQ(done, 2);
  EXPECT_TRUE(held.has_value());
  EXPECT_FALSE(refused.has_value());
}

TEST(Admission, DeadlineRefusesAWaiter) {
  net::io_context io;
  Admission admission(io.get_executor(), 1, 4, 50ms);
  std::optional<Slot> held, late;
  int done = 0;
  net::co_spawn(io, acquire_into(admission, held, done), net::detached);
  poll(io);
  const auto started = std::chrono::steady_clock::now();
  net::co_spawn(io, acquire_into(admission, late, done), net::detached);
  run(io);  // returns when the waiter's deadline fired
  EXPECT_GE(std::chrono::steady_clock::now() - started, 50ms);
  EXPECT_EQ(done, 2);
  EXPECT_FALSE(late.has_value());
  EXPECT_EQ(admission.queued(), 0u);
  EXPECT_EQ(admission.in_flight(), 1u);
  held.reset();
  EXPECT_EQ(admission.in_flight(), 0u);
}

TEST(Admission, LiveSlotsNeverShareAnIndex) {
  net::io_context io;
  constexpr unsigned kSlots = 3;
  Admission admission(io.get_executor(), kSlots, 64, kLong);
  std::set<unsigned> live;
  std::size_t most_live = 0;
  int served = 0;
  auto worker = [&](int id) -> net::awaitable<void> {
    auto slot = co_await admission.acquire();
    EXPECT_TRUE(slot.has_value());
    if (!slot) {
      co_return;
    }
    EXPECT_LT(slot->index(), kSlots);
    EXPECT_TRUE(live.insert(slot->index()).second) << "index " << slot->index() << " shared";
    most_live = std::max(most_live, live.size());
    net::steady_timer timer(io, std::chrono::milliseconds(1 + id % 4));
    co_await timer.async_wait(net::use_awaitable);
    live.erase(slot->index());
    ++served;
  };
  for (int id = 0; id < 40; ++id) net::co_spawn(io, worker(id), net::detached);
  run(io);
  EXPECT_EQ(served, 40);
  EXPECT_EQ(most_live, kSlots);
  EXPECT_EQ(admission.in_flight(), 0u);
}

TEST(Admission, CancelledWaiterLeavesTheQueueWithoutLeakingASlot) {
  net::io_context io;
  Admission admission(io.get_executor(), 1, 4, kLong);
  std::optional<Slot> held, cancelled;
  int done = 0;
  net::co_spawn(io, acquire_into(admission, held, done), net::detached);
  net::cancellation_signal signal;
  net::co_spawn(io, acquire_into(admission, cancelled, done),
                net::bind_cancellation_slot(signal.slot(), net::detached));
  poll(io);
  ASSERT_EQ(admission.queued(), 1u);
  signal.emit(net::cancellation_type::terminal);
  poll(io);
  EXPECT_EQ(done, 2);
  EXPECT_FALSE(cancelled.has_value());
  EXPECT_EQ(admission.queued(), 0u);

  held.reset();
  EXPECT_EQ(admission.in_flight(), 0u) << "the slot went to the cancelled waiter";
  std::optional<Slot> again;
  net::co_spawn(io, acquire_into(admission, again, done), net::detached);
  poll(io);
  EXPECT_TRUE(again.has_value());
}

TEST(Admission, GrantRacingWithCancellationIsNotLost) {
  net::io_context io;
  Admission admission(io.get_executor(), 1, 4, kLong);
  std::optional<Slot> held;
  int done = 0;
  net::co_spawn(io, acquire_into(admission, held, done), net::detached);
  net::cancellation_signal signal;
  bool got_slot = false;
  auto waiter = [&]() -> net::awaitable<void> {
    auto slot = co_await admission.acquire();
    got_slot = slot.has_value();
  };  // the slot, if any, is released as the coroutine ends
  net::co_spawn(io, waiter(), net::bind_cancellation_slot(signal.slot(), net::detached));
  poll(io);
  ASSERT_EQ(admission.queued(), 1u);
  held.reset();                                   // grants the waiter...
  signal.emit(net::cancellation_type::terminal);  // ...which is cancelled before it resumes
  poll(io);
  EXPECT_TRUE(got_slot);
  EXPECT_EQ(admission.in_flight(), 0u);
  EXPECT_EQ(admission.queued(), 0u);
}

TEST(Admission, WaiterDestroyedWithItsIoContextLeavesNoTrace) {
  auto io = std::make_unique<net::io_context>();
  Admission admission(io->get_executor(), 1, 4, kLong);
  std::optional<Slot> held, never;
  int done = 0;
  net::co_spawn(*io, acquire_into(admission, held, done), net::detached);
  net::co_spawn(*io, acquire_into(admission, never, done), net::detached);
  io->restart();
  io->poll();
  ASSERT_EQ(admission.queued(), 1u);
  io.reset();  // destroys the suspended waiter's frame
  EXPECT_EQ(admission.queued(), 0u);
  held.reset();
  EXPECT_EQ(admission.in_flight(), 0u);
  EXPECT_EQ(done, 1);
}

TEST(Admission, SlotOutlivingTheAdmissionIsSafe) {
  net::io_context io;
  std::optional<Slot> held;
  int done = 0;
  {
    Admission admission(io.get_executor(), 1, 1, kLong);
    net::co_spawn(io, acquire_into(admission, held, done), net::detached);
    run(io);
  }
  ASSERT_TRUE(held.has_value());
  held.reset();  // must not touch freed memory (checked under ASan)
}

TEST(Admission, CancellingAWaiterTakesItOutOfTheQueueAtOnce) {
  net::io_context io;
  Admission admission(io.get_executor(), 1, 8, kLong);
  std::optional<Slot> held;
  int done = 0;
  net::co_spawn(io, acquire_into(admission, held, done), net::detached);
  run(io);
  ASSERT_TRUE(held);

  executor::CancelSignal cancel;
  std::optional<std::optional<Slot>> result;
  net::co_spawn(
      io, [&]() -> net::awaitable<void> { result.emplace(co_await admission.acquire(&cancel)); },
      net::detached);
  poll(io);
  ASSERT_EQ(admission.queued(), 1u);
  cancel.cancel();
  poll(io);
  ASSERT_TRUE(result.has_value()) << "the cancelled waiter did not return";
  EXPECT_FALSE(result->has_value());
  EXPECT_EQ(admission.queued(), 0u);
  // The slot goes to nobody: released, it is free again.
  held.reset();
  EXPECT_EQ(admission.in_flight(), 0u);
}

TEST(Admission, AlreadyCancelledDoesNotQueue) {
  net::io_context io;
  Admission admission(io.get_executor(), 1, 8, kLong);
  std::optional<Slot> held;
  int done = 0;
  net::co_spawn(io, acquire_into(admission, held, done), net::detached);
  run(io);
  executor::CancelSignal cancel;
  cancel.cancel();
  std::optional<std::optional<Slot>> result;
  net::co_spawn(
      io, [&]() -> net::awaitable<void> { result.emplace(co_await admission.acquire(&cancel)); },
      net::detached);
  run(io);
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(result->has_value());
  EXPECT_EQ(admission.queued(), 0u);
}

}  // namespace
}  // namespace pysandbox::beast_server
