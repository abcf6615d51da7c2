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

#include "beast_server/request_record.hpp"

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
  unsigned pool_ready = 0;
  unsigned pool_busy = 0;
  unsigned pool_restarts = 0;
};

class Metrics {
 public:
  enum class Phase : std::size_t { kQueue, kSpawn, kRun, kTeardown, kTotal };
  static constexpr std::size_t kPhaseCount = 5;
  // Upper bounds in seconds: from a warm fork (~ms) to the longest allowed run.
  static constexpr std::array<double, 15> kBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

  // Counts the request by route, status and error_type and observes its phases (only those it
  // reached; total for /execute only, so that health probes do not dilute the latencies).
  void record(const RequestRecord& record);
  void observe(Phase phase, double ms);
  // A connection over max_connections, answered 503 and closed.
  void connection_refused() { ++connections_refused_; }

  // Prometheus text exposition format 0.0.4.
  std::string render(const Gauges& gauges) const;

  std::uint64_t requests(std::string_view route, unsigned status,
                         std::string_view error_type) const;

 private:
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};  // non-cumulative
    std::uint64_t count = 0;
    double sum_seconds = 0;
  };

  std::map<std::tuple<std::string, unsigned, std::string>, std::uint64_t, std::less<>> requests_;
  std::array<Histogram, kPhaseCount> phases_{};
  std::uint64_t connections_refused_ = 0;
};

}  // namespace pysandbox::beast_server
