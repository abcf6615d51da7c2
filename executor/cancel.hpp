// A run's cancellation, shared by whoever started it (the HTTP session, which sees its client
// go away) and the run itself (which kills its sandbox when told). Single-threaded: both sides
// live on the io_context.
#pragma once

#include <functional>
#include <utility>

namespace pysandbox::executor {

class CancelSignal {
 public:
  // Idempotent. Runs the handler the run registered, if any, at most once.
  void cancel() {
    if (cancelled_) return;
    cancelled_ = true;
    if (auto handler = std::exchange(handler_, nullptr)) handler();
  }
  bool cancelled() const noexcept { return cancelled_; }

  // The run's side: what to do on cancel (kill the sandbox). Runs at once if already cancelled.
  // clear() before the handler's captures go away.
  void on_cancel(std::function<void()> handler) {
    if (cancelled_) {
      handler();
      return;
    }
    handler_ = std::move(handler);
  }
  void clear() noexcept { handler_ = nullptr; }

 private:
  bool cancelled_ = false;
  std::function<void()> handler_;
};

}  // namespace pysandbox::executor
