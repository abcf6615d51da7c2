// Prometheus counters and histograms for GET /metrics. Single-threaded like the server: no
// atomics, updated and rendered on the io_context's thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "beast_server/request_record.hpp"
#include "executor/pool_stats.hpp"

namespace pysandbox::beast_server {

// Point-in-time values the server owns; passed in at render time.
struct Gauges {
  unsigned in_flight = 0;
  std::size_t queued = 0;
  unsigned max_concurrency = 0;
  std::size_t queue_size = 0;
  std::size_t connections = 0;
  bool draining = false;
  std::string isolation;  // exported as an info metric
  // Warm pool (zeros when it is off).
  executor::PoolStats pool;
  // Runs start warm (GET /readyz answers 200 unless draining).
  bool ready = true;
  // File-descriptor budget (fd_budget.hpp): RLIMIT_NOFILE, descriptors open now, and the
  // connection cap derived from them.
  std::uint64_t fds_limit = 0;
  std::uint64_t fds_open = 0;
  std::size_t max_connections = 0;
  // Bytes of responses held for clients that have not taken them yet, and the bound.
  std::size_t response_memory_bytes = 0;
  std::size_t response_memory_limit_bytes = 0;
};

// Why the server closed a connection on its own.
enum class CloseReason : std::size_t {
  kReadTimeout,   // a request (or a new connection's first byte) did not arrive in time
  kIdleTimeout,   // a kept-alive connection sent nothing for idle_timeout_ms
  kWriteTimeout,  // the client did not take a response within write_timeout_ms
  kEvicted,       // the oldest idle connection, closed to make room for a new one at the cap
};
inline constexpr std::size_t kCloseReasonCount = 4;

class Metrics {
 public:
  enum class Phase : std::size_t { kQueue, kSpawn, kRun, kTeardown, kTotal };
  static constexpr std::size_t kPhaseCount = 5;
  // Upper bounds in seconds: from a warm fork (~ms) to the longest allowed run.
  static constexpr std::array<double, 15> kBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

  // A delivered request is counted by route, status and error_type and its phases observed
  // (only those it reached; total for /execute only, so that health probes do not dilute the
  // latencies). One the client abandoned is counted by route and phase instead, and one cut by
  // the write timeout as cut: neither is an answer the client got.
  void record(const RequestRecord& record);
  void observe(Phase phase, double ms);
  // A connection over max_connections, answered 503 and closed.
  void connection_refused() { ++connections_refused_; }
  void connection_closed(CloseReason reason) {
    ++connections_closed_[static_cast<std::size_t>(reason)];
  }
  // The response memory budget was full: a finished run waited for room (response_budget.hpp).
  void response_memory_wait() { ++response_memory_waits_; }

  // Prometheus text exposition format 0.0.4.
  std::string render(const Gauges& gauges) const;

  std::uint64_t requests(std::string_view route, unsigned status,
                         std::string_view error_type) const;
  std::uint64_t abandoned(std::string_view route, std::string_view phase) const;
  std::uint64_t cut(std::string_view route) const;
  std::uint64_t connections_closed(CloseReason reason) const {
    return connections_closed_[static_cast<std::size_t>(reason)];
  }

 private:
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};  // non-cumulative
    std::uint64_t count = 0;
    double sum_seconds = 0;
  };

  std::map<std::tuple<std::string, unsigned, std::string>, std::uint64_t, std::less<>> requests_;
  std::array<Histogram, kPhaseCount> phases_{};
  std::uint64_t connections_refused_ = 0;
  std::map<std::pair<std::string, std::string>, std::uint64_t, std::less<>> abandoned_;
  std::map<std::string, std::uint64_t, std::less<>> cut_;
  std::array<std::uint64_t, kCloseReasonCount> connections_closed_{};
  std::uint64_t response_memory_waits_ = 0;
};

}  // namespace pysandbox::beast_server
