// The open HTTP connections and what each is doing, so that a drain can close the idle ones at
// once and wait for the busy ones, and so that the connection cap can make room by closing the
// connection that has been idle longest.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <utility>

namespace pysandbox::beast_server {

class ConnectionRegistry {
 public:
  using Clock = std::chrono::steady_clock;

  enum class Phase {
    kIdle,     // waiting for the first byte of a request: safe to close
    kBusy,     // reading a request, running it, or writing the response
    kClosing,  // told to close (drain or eviction); gone once its session notices
  };

  struct Connection {
    Phase phase = Phase::kIdle;
    Clock::time_point idle_since;
    std::function<void()> close;  // cancels the connection's pending I/O
  };
  using Handle = std::list<Connection>::iterator;

  Handle add(std::function<void()> close) {
    return connections_.insert(connections_.end(),
                               Connection{Phase::kIdle, Clock::now(), std::move(close)});
  }

  void remove(Handle handle) {
    if (handle->phase == Phase::kClosing) --closing_;
    connections_.erase(handle);
    if (connections_.empty() && on_empty_) {
      // Moved out first: the callback may install another one.
      auto callback = std::exchange(on_empty_, nullptr);
      callback();
    }
  }

  // A connection told to close stays closing: it cannot become idle or busy again.
  static void set_phase(Handle handle, Phase phase) {
    if (handle->phase == Phase::kClosing) return;
    if (phase == Phase::kIdle && handle->phase != Phase::kIdle) handle->idle_since = Clock::now();
    handle->phase = phase;
  }

  std::size_t size() const { return connections_.size(); }
  bool empty() const { return connections_.empty(); }
  // Connections told to close that have not gone yet (they still hold their fd).
  std::size_t closing() const { return closing_; }

  void close_idle() {
    for (auto it = connections_.begin(); it != connections_.end(); ++it) {
      if (it->phase == Phase::kIdle) close(it);
    }
  }

  // Closes the connection idle the longest (a kept-alive one between requests, or a new one
  // that has not sent its first byte); false if none is idle.
  bool evict_oldest_idle() {
    auto oldest = connections_.end();
    for (auto it = connections_.begin(); it != connections_.end(); ++it) {
      if (it->phase == Phase::kIdle &&
          (oldest == connections_.end() || it->idle_since < oldest->idle_since)) {
        oldest = it;
      }
    }
    if (oldest == connections_.end()) return false;
    close(oldest);
    return true;
  }

  // Called once, when the last connection goes.
  void on_empty(std::function<void()> callback) { on_empty_ = std::move(callback); }

 private:
  void close(Handle handle) {
    handle->phase = Phase::kClosing;
    ++closing_;
    // Copied: the callback may run code that removes the entry.
    if (auto callback = handle->close) callback();
  }

  std::list<Connection> connections_;
  std::size_t closing_ = 0;
  std::function<void()> on_empty_;
};

}  // namespace pysandbox::beast_server
