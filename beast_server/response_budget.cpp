#include "beast_server/response_budget.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>

namespace pysandbox::beast_server {

namespace net = boost::asio;

namespace {

struct Waiter {
  Waiter(const net::any_io_executor& executor, std::size_t bytes_in,
         std::chrono::steady_clock::time_point deadline)
      : bytes(bytes_in), timer(executor, deadline) {}

  std::size_t bytes;
  net::steady_timer timer;
  bool granted = false;  // the bytes were added to `held` for this waiter
  bool claimed = false;  // the grant became a Lease
};

}  // namespace

struct ResponseBudget::State {
  net::any_io_executor executor;
  std::size_t limit = 0;
  std::size_t held = 0;
  std::deque<std::shared_ptr<Waiter>> queue;

  bool fits(std::size_t bytes) const { return held == 0 || bytes <= limit - std::min(limit, held); }

  // Grants waiters in order while the head fits: a large response is not overtaken forever.
  void wake() {
    while (!queue.empty() && fits(queue.front()->bytes)) {
      std::shared_ptr<Waiter> next = std::move(queue.front());
      queue.pop_front();
      held += next->bytes;
      next->granted = true;
      next->timer.cancel();
    }
  }

  void release(std::size_t bytes) {
    held -= std::min(held, bytes);
    wake();
  }

  void forget(const std::shared_ptr<Waiter>& waiter) {
    if (auto it = std::find(queue.begin(), queue.end(), waiter); it != queue.end()) {
      queue.erase(it);
    }
    // The head may have been the one blocking the others.
    wake();
  }
};

ResponseBudget::Lease::Lease(std::shared_ptr<State> state, std::size_t bytes)
    : state_(std::move(state)), bytes_(bytes) {}

ResponseBudget::Lease::Lease(Lease&& other) noexcept
    : state_(std::move(other.state_)), bytes_(other.bytes_) {}

ResponseBudget::Lease& ResponseBudget::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    state_ = std::move(other.state_);
    bytes_ = other.bytes_;
  }
  return *this;
}

ResponseBudget::Lease::~Lease() { release(); }

void ResponseBudget::Lease::release() noexcept {
  if (auto state = std::move(state_)) state->release(bytes_);
}

ResponseBudget::ResponseBudget(net::any_io_executor executor, std::size_t limit)
    : state_(std::make_shared<State>()) {
  state_->executor = std::move(executor);
  state_->limit = limit;
}

ResponseBudget::~ResponseBudget() = default;

net::awaitable<std::optional<ResponseBudget::Lease>> ResponseBudget::reserve(
    std::size_t bytes, std::chrono::milliseconds timeout, executor::CancelSignal* cancel) {
  std::shared_ptr<State> state = state_;
  if (cancel != nullptr && cancel->cancelled()) co_return std::nullopt;
  if (state->queue.empty() && state->fits(bytes)) {
    state->held += bytes;
    co_return Lease(state, bytes);
  }
  auto waiter =
      std::make_shared<Waiter>(state->executor, bytes, std::chrono::steady_clock::now() + timeout);
  state->queue.push_back(waiter);
  // However the wait ends (even with the frame destroyed unresumed): out of the queue, and a
  // grant nobody claimed handed back.
  struct Guard {
    std::shared_ptr<State> state;
    std::shared_ptr<Waiter> waiter;
    executor::CancelSignal* cancel;
    ~Guard() {
      if (cancel != nullptr) cancel->clear();
      if (waiter->granted) {
        if (!waiter->claimed) state->release(waiter->bytes);
      } else {
        state->forget(waiter);
      }
    }
  } guard{state, waiter, cancel};
  if (cancel != nullptr) {
    std::weak_ptr<Waiter> weak = waiter;
    cancel->on_cancel([weak] {
      if (auto w = weak.lock()) w->timer.cancel();
    });
  }
  co_await waiter->timer.async_wait(net::as_tuple(net::use_awaitable));
  if (waiter->granted && !(cancel != nullptr && cancel->cancelled())) {
    waiter->claimed = true;
    co_return Lease(state, bytes);
  }
  co_return std::nullopt;
}

ResponseBudget::Lease ResponseBudget::force(std::size_t bytes) {
  state_->held += bytes;
  return Lease(state_, bytes);
}

bool ResponseBudget::would_wait(std::size_t bytes) const {
  return !state_->queue.empty() || !state_->fits(bytes);
}

std::size_t ResponseBudget::held() const { return state_->held; }

std::size_t ResponseBudget::limit() const { return state_->limit; }

std::size_t ResponseBudget::waiting() const { return state_->queue.size(); }

}  // namespace pysandbox::beast_server
