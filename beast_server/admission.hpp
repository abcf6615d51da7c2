// Admission control: at most N sandboxes at once, a bounded FIFO queue of waiters, each with a
// deadline. Refusing early (429) is cheaper for everyone than accepting work that would time out
// in a queue or exhaust the host.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>

#include "executor/cancel.hpp"

namespace pysandbox::beast_server {

class Admission {
  struct State;

 public:
  // Permission to run one sandbox; released on destruction, which hands the slot straight to
  // the oldest waiter. Holds the admission's state alive, so it may outlive the Admission.
  class Slot {
   public:
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot();

    // In [0, max_concurrency); no two live slots share an index (the executor derives the
    // sandbox's host uid from it).
    unsigned index() const { return index_; }

   private:
    friend class Admission;
    Slot(std::shared_ptr<State> state, unsigned index);
    void release() noexcept;

    std::shared_ptr<State> state_;
    unsigned index_ = 0;
  };

  // Single-threaded: every call, and every acquire's completion, on `executor`'s thread.
  Admission(boost::asio::any_io_executor executor, unsigned max_concurrency, std::size_t queue_size,
            std::chrono::milliseconds queue_timeout);
  ~Admission();
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  // A slot at once if one is free; else waits in FIFO order up to queue_timeout. nullopt at once
  // when queue_size requests are already waiting, or when the deadline passes, or when the
  // awaiting coroutine is cancelled (per-operation cancellation). A waiter whose coroutine is
  // destroyed while queued (e.g. with its io_context) leaves the queue and passes on a slot it
  // was handed. With `cancel`, cancelling it (the client went away) takes the waiter out of the
  // queue at once, also with nullopt; the caller tells the cases apart by cancel->cancelled().
  boost::asio::awaitable<std::optional<Slot>> acquire(executor::CancelSignal* cancel = nullptr);

  unsigned in_flight() const;
  std::size_t queued() const;
  unsigned max_concurrency() const;
  std::size_t queue_size() const;
  // Retry-After for a refusal: runs typically end within a second or two, so a short hint
  // spreads retries without idling the client long.
  unsigned retry_after_seconds() const { return 1; }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace pysandbox::beast_server
