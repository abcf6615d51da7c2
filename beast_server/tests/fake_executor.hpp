// A deterministic Executor for the HTTP tests: no sandbox, an asio timer instead of a process.
// The script is a directive:
//   "wait"            block until open_gate() (lets a test hold sandboxes busy on purpose)
//   "sleep:<ms>"      take <ms> milliseconds
//   "throw"           throw from run() (the server must answer 500 internal)
//   "status:<type>"   finish with that error_type (e.g. "status:timeout"), as if the script ran
//   "out:<n>"         succeed with n bytes of 'x' on stdout
//   "ctrl:<n>"        succeed with n control bytes (\x01) on stdout (6 bytes each as JSON)
//   anything else     take 2 ms and succeed
// A cancelled run (ExecuteRequest::cancel) ends at once with kCancelled, as the real one does
// once its sandbox is killed.
// A success echoes the request into the result and the script into stdout, so that a test can
// match each response to its request.
#pragma once

#include <signal.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <list>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>

#include "executor/cancel.hpp"
#include "executor/executor.hpp"

namespace pysandbox::beast_server::testing {

class FakeExecutor : public executor::Executor {
 public:
  boost::asio::awaitable<executor::RunOutcome> run(executor::ExecuteRequest request) override {
    namespace net = boost::asio;
    using executor::Status;
    const auto io = co_await net::this_coro::executor;

    // Bookkeeping for the concurrency assertions; released however the run ends.
    struct Running {
      FakeExecutor& self;
      unsigned slot;
      Running(FakeExecutor& s, unsigned slot_in) : self(s), slot(slot_in) {
        std::lock_guard lock(self.mutex_);
        if (!self.live_slots_.insert(slot).second) self.slot_shared_ = true;
        const int now = ++self.running_;
        if (now > self.most_running_) self.most_running_ = now;
        ++self.runs_;
      }
      ~Running() {
        std::lock_guard lock(self.mutex_);
        self.live_slots_.erase(slot);
        --self.running_;
      }
    } running(*this, request.slot);

    const std::string& script = request.script;
    if (script == "throw") throw std::runtime_error("fake executor exploded");

    net::steady_timer timer(io);
    // Cancelling wakes the run, which then reports kCancelled.
    bool cancelled = false;
    if (request.cancel) {
      request.cancel->on_cancel([&] {
        cancelled = true;
        timer.cancel();
      });
    }
    struct ClearCancel {
      executor::CancelSignal* signal;
      ~ClearCancel() {
        if (signal != nullptr) signal->clear();
      }
    } clear_cancel{request.cancel.get()};
    if (cancelled) {
      // already cancelled before the run
    } else if (script == "wait") {
      timer.expires_after(std::chrono::seconds(30));
      if (!gate_open_) {
        auto it = gate_.insert(gate_.end(), &timer);
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        gate_.erase(it);
      }
    } else {
      std::chrono::milliseconds delay(2);
      if (script.starts_with("sleep:"))
        delay = std::chrono::milliseconds(std::stoi(script.substr(6)));
      timer.expires_after(delay);
      co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    }

    executor::RunOutcome outcome;
    if (cancelled) {
      ++cancelled_;
      outcome.status = Status::kCancelled;
      co_return outcome;
    }
    outcome.ran = true;
    outcome.isolation = executor::Isolation::kNamespaces;
    outcome.stdout_data = script;
    outcome.usage = {.wall_ms = 2.0, .cpu_ms = 1.0, .peak_memory_bytes = 1 << 20};
    outcome.phases = {.spawn_ms = 0.5, .run_ms = 1.0, .teardown_ms = 0.25};
    if (script.starts_with("status:")) {
      const std::string type = script.substr(7);
      for (int s = 0; s <= static_cast<int>(Status::kInternal); ++s) {
        if (executor::error_type(static_cast<Status>(s)) == type) {
          outcome.status = static_cast<Status>(s);
        }
      }
      outcome.signal = SIGKILL;
      outcome.trace = "Traceback (fake)";
      outcome.internal_detail = "fake internal detail";
      co_return outcome;
    }
    outcome.status = Status::kOk;
    if (script.starts_with("out:")) outcome.stdout_data.assign(std::stoul(script.substr(4)), 'x');
    if (script.starts_with("ctrl:")) {
      outcome.stdout_data.assign(std::stoul(script.substr(5)), '\x01');
    }
    outcome.result = boost::json::object{
        {"script", script},
        {"stdin", request.stdin_data},
        {"request_id", request.request_id},
        {"timeout_ms", request.timeout.count()},
        {"memory_mb", request.memory_bytes >> 20},
        {"slot", request.slot},
    };
    co_return outcome;
  }

  executor::Isolation isolation() const override { return executor::Isolation::kNamespaces; }

  bool ready() const override { return ready_.load(); }
  void set_ready(bool ready) { ready_ = ready; }

  boost::json::object describe() const override { return {{"mode", "namespaces"}, {"fake", true}}; }

  // Releases every "wait" run, now and later. Callable from any thread once set_io was called.
  void open_gate() {
    boost::asio::post(executor_, [this] {
      gate_open_ = true;
      for (auto* timer : gate_) timer->cancel();
    });
  }

  void set_io(boost::asio::any_io_executor io) { executor_ = std::move(io); }

  int running() const { return running_.load(); }
  int most_running() const { return most_running_.load(); }
  int runs() const { return runs_.load(); }
  int cancelled() const { return cancelled_.load(); }
  bool slot_shared() const {
    std::lock_guard lock(mutex_);
    return slot_shared_;
  }

 private:
  boost::asio::any_io_executor executor_;
  bool gate_open_ = false;  // io thread only
  std::list<boost::asio::steady_timer*> gate_;
  mutable std::mutex mutex_;
  std::set<unsigned> live_slots_;
  bool slot_shared_ = false;
  std::atomic<int> running_{0};
  std::atomic<int> most_running_{0};
  std::atomic<int> runs_{0};
  std::atomic<int> cancelled_{0};
  std::atomic<bool> ready_{true};
};

}  // namespace pysandbox::beast_server::testing
