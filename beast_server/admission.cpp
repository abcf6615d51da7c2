#include "beast_server/admission.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <vector>

namespace pysandbox::beast_server {

namespace net = boost::asio;

namespace {

// A queued acquire(). Woken by cancelling its timer: either a slot was handed over (granted) or
// the deadline passed / the coroutine was cancelled (not granted).
struct Waiter {
  Waiter(const net::any_io_executor& executor, std::chrono::steady_clock::time_point deadline)
      : timer(executor, deadline) {}

  net::steady_timer timer;
  std::optional<unsigned> granted;
  bool claimed = false;  // the grant became a Slot; the Slot now owns the index
};

}  // namespace

struct Admission::State {
  net::any_io_executor executor;
  unsigned max_concurrency;
  std::size_t queue_size;
  std::chrono::milliseconds queue_timeout;
  std::vector<unsigned> free;  // stack of free indices, lowest on top
  std::deque<std::shared_ptr<Waiter>> queue;

  // Hands the index to the oldest waiter, or frees it.
  void release(unsigned index) {
    if (!queue.empty()) {
      std::shared_ptr<Waiter> next = std::move(queue.front());
      queue.pop_front();
      next->granted = index;
      next->timer.cancel();
      return;
    }
    free.push_back(index);
  }

  void forget(const std::shared_ptr<Waiter>& waiter) {
    if (auto it = std::find(queue.begin(), queue.end(), waiter); it != queue.end()) {
      queue.erase(it);
    }
  }
};

namespace {

// Runs when acquire()'s frame ends, however it ends (return, exception, or the frame being
// destroyed unresumed): the waiter must not stay queued, and an index granted to it but never
// claimed must go to the next waiter.
template <class StatePtr>
struct WaiterGuard {
  WaiterGuard(StatePtr state_in, std::shared_ptr<Waiter> waiter_in)
      : state(std::move(state_in)), waiter(std::move(waiter_in)) {}
  WaiterGuard(const WaiterGuard&) = delete;
  WaiterGuard& operator=(const WaiterGuard&) = delete;
  ~WaiterGuard() {
    if (waiter->granted) {
      if (!waiter->claimed) state->release(*waiter->granted);
    } else {
      state->forget(waiter);
    }
  }

  StatePtr state;
  std::shared_ptr<Waiter> waiter;
};

}  // namespace

Admission::Slot::Slot(std::shared_ptr<State> state, unsigned index)
    : state_(std::move(state)), index_(index) {}

Admission::Slot::Slot(Slot&& other) noexcept
    : state_(std::move(other.state_)), index_(other.index_) {}

Admission::Slot& Admission::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    release();
    state_ = std::move(other.state_);
    index_ = other.index_;
  }
  return *this;
}

Admission::Slot::~Slot() { release(); }

void Admission::Slot::release() noexcept {
  if (auto state = std::move(state_)) state->release(index_);
}

Admission::Admission(net::any_io_executor executor, unsigned max_concurrency,
                     std::size_t queue_size, std::chrono::milliseconds queue_timeout)
    : state_(std::make_shared<State>()) {
  state_->executor = std::move(executor);
  state_->max_concurrency = std::max(1u, max_concurrency);
  state_->queue_size = queue_size;
  state_->queue_timeout = queue_timeout;
  for (unsigned i = state_->max_concurrency; i-- > 0;) state_->free.push_back(i);
}

Admission::~Admission() = default;

net::awaitable<std::optional<Admission::Slot>> Admission::acquire(executor::CancelSignal* cancel) {
  std::shared_ptr<State> state = state_;
  if (cancel != nullptr && cancel->cancelled()) co_return std::nullopt;
  if (!state->free.empty()) {
    const unsigned index = state->free.back();
    state->free.pop_back();
    co_return Slot(state, index);
  }
  if (state->queue.size() >= state->queue_size) co_return std::nullopt;

  auto waiter = std::make_shared<Waiter>(state->executor,
                                         std::chrono::steady_clock::now() + state->queue_timeout);
  state->queue.push_back(waiter);
  WaiterGuard<std::shared_ptr<State>> guard{state, waiter};
  // Unregistered however the wait ends (the frame may also be destroyed unresumed).
  struct CancelGuard {
    executor::CancelSignal* signal;
    ~CancelGuard() {
      if (signal != nullptr) signal->clear();
    }
  } cancel_guard{cancel};
  if (cancel != nullptr) {
    std::weak_ptr<Waiter> weak = waiter;
    cancel->on_cancel([weak] {
      if (auto w = weak.lock()) w->timer.cancel();
    });
  }
  // The error code does not matter: a grant is recorded in the waiter before its timer is
  // cancelled, and a grant that races with the deadline or a cancellation is still honoured.
  co_await waiter->timer.async_wait(net::as_tuple(net::use_awaitable));
  if (waiter->granted) {
    waiter->claimed = true;
    co_return Slot(state, *waiter->granted);
  }
  co_return std::nullopt;
}

unsigned Admission::in_flight() const {
  return state_->max_concurrency - static_cast<unsigned>(state_->free.size());
}

std::size_t Admission::queued() const { return state_->queue.size(); }

unsigned Admission::max_concurrency() const { return state_->max_concurrency; }

std::size_t Admission::queue_size() const { return state_->queue_size; }

}  // namespace pysandbox::beast_server
