// The open HTTP connections and what each is doing, so that a drain can close the idle ones at
// once and wait for the busy ones, and so that max_connections can be enforced.
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <utility>

namespace pysandbox::beast_server {

class ConnectionRegistry {
 public:
  enum class Phase {
    kIdle,  // waiting for the first byte of a request: safe to close
    kBusy,  // reading a request, running it, or writing the response
  };

  struct Connection {
    Phase phase = Phase::kIdle;
    std::function<void()> close;  // cancels the connection's pending I/O
  };
  using Handle = std::list<Connection>::iterator;

  Handle add(std::function<void()> close) {
    return connections_.insert(connections_.end(), Connection{Phase::kIdle, std::move(close)});
  }

  void remove(Handle handle) {
    connections_.erase(handle);
    if (connections_.empty() && on_empty_) {
      // Moved out first: the callback may install another one.
      auto callback = std::exchange(on_empty_, nullptr);
      callback();
    }
  }

  static void set_phase(Handle handle, Phase phase) { handle->phase = phase; }

  std::size_t size() const { return connections_.size(); }
  bool empty() const { return connections_.empty(); }

  void close_idle() {
    for (auto& connection : connections_) {
      if (connection.phase == Phase::kIdle && connection.close) connection.close();
    }
  }

  // Called once, when the last connection goes.
  void on_empty(std::function<void()> callback) { on_empty_ = std::move(callback); }

 private:
  std::list<Connection> connections_;
  std::function<void()> on_empty_;
};

}  // namespace pysandbox::beast_server
