// A bound on the bytes of responses the server holds for clients that have not taken them yet.
// A response is held from the moment it is built until the client has received it or the write
// timeout cut it off; a client that does not read would otherwise pin its response (up to a few
// times --max-output-bytes) for the whole write timeout, and many such clients the server's
// memory. A finished run whose response does not fit waits for room (FIFO) while it still holds
// its sandbox slot, so that what waits is bounded by max_concurrency too.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>

#include "executor/cancel.hpp"

namespace pysandbox::beast_server {

class ResponseBudget {
  struct State;

 public:
  // Bytes reserved for one response; returned on destruction, which lets waiters in.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    std::size_t bytes() const { return bytes_; }

   private:
    friend class ResponseBudget;
    Lease(std::shared_ptr<State> state, std::size_t bytes);
    void release() noexcept;

    std::shared_ptr<State> state_;
    std::size_t bytes_ = 0;
  };

  // Single-threaded: every call on `executor`'s thread.
  ResponseBudget(boost::asio::any_io_executor executor, std::size_t limit);
  ~ResponseBudget();
  ResponseBudget(const ResponseBudget&) = delete;
  ResponseBudget& operator=(const ResponseBudget&) = delete;

  // Reserves `bytes` at once if they fit (or if nothing is held: a response larger than the
  // whole budget goes alone), else waits in FIFO order up to `timeout`. nullopt when the timeout
  // passes or `cancel` is cancelled first.
  boost::asio::awaitable<std::optional<Lease>> reserve(std::size_t bytes,
                                                       std::chrono::milliseconds timeout,
                                                       executor::CancelSignal* cancel = nullptr);

  // Reserves without waiting, over the limit if need be: for small responses (errors, probes)
  // whose number the connection cap already bounds.
  Lease force(std::size_t bytes);

  // Whether reserve(bytes) would have to wait now.
  bool would_wait(std::size_t bytes) const;

  std::size_t held() const;
  std::size_t limit() const;
  std::size_t waiting() const;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace pysandbox::beast_server
