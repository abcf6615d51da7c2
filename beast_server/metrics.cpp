#include "beast_server/metrics.hpp"

#include <sstream>

namespace pysandbox::beast_server {

namespace {

constexpr std::array<std::string_view, kCloseReasonCount> kCloseReasonNames = {
    "read_timeout", "idle_timeout", "write_timeout", "evicted"};

constexpr std::array<std::string_view, Metrics::kPhaseCount> kPhaseNames = {"queue", "spawn", "run",
                                                                            "teardown", "total"};

// Label values come from a fixed set except isolation; escape anyway (exposition format rules).
std::string escape_label(std::string_view value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

void Metrics::record(const RequestRecord& record) {
  if (record.abandoned) {
    ++abandoned_[{record.route, *record.abandoned}];
    return;
  }
  if (record.cut) {
    ++cut_[record.route];
    return;
  }
  ++requests_[{record.route, record.status, record.error_type}];
  if (record.queue_ms) observe(Phase::kQueue, *record.queue_ms);
  if (record.spawn_ms) observe(Phase::kSpawn, *record.spawn_ms);
  if (record.run_ms) observe(Phase::kRun, *record.run_ms);
  if (record.teardown_ms) observe(Phase::kTeardown, *record.teardown_ms);
  if (record.route == "/execute") observe(Phase::kTotal, record.total_ms);
}

void Metrics::observe(Phase phase, double ms) {
  Histogram& histogram = phases_[static_cast<std::size_t>(phase)];
  const double seconds = ms / 1000.0;
  ++histogram.count;
  histogram.sum_seconds += seconds;
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++histogram.buckets[i];
      break;
    }
  }
}

std::uint64_t Metrics::requests(std::string_view route, unsigned status,
                                std::string_view error_type) const {
  const auto it =
      requests_.find(std::make_tuple(std::string(route), status, std::string(error_type)));
  return it == requests_.end() ? 0 : it->second;
}

std::uint64_t Metrics::abandoned(std::string_view route, std::string_view phase) const {
  const auto it = abandoned_.find(std::make_pair(std::string(route), std::string(phase)));
  return it == abandoned_.end() ? 0 : it->second;
}

std::uint64_t Metrics::cut(std::string_view route) const {
  const auto it = cut_.find(route);
  return it == cut_.end() ? 0 : it->second;
}

namespace {

// One unlabelled sample with its HELP and TYPE lines.
struct Scalar {
  const char* name;
  const char* type;
  const char* help;
  std::uint64_t value;
};

void write_scalar(std::ostream& out, const Scalar& s) {
  out << "# HELP " << s.name << ' ' << s.help << "\n# TYPE " << s.name << ' ' << s.type << "\n"
      << s.name << ' ' << s.value << "\n";
}

}  // namespace

std::string Metrics::render(const Gauges& gauges) const {
  std::ostringstream out;
  out.precision(12);  // sums of seconds grow past the default 6 significant digits
  out << "# HELP pysandbox_requests_total HTTP requests by route, status and error_type.\n"
         "# TYPE pysandbox_requests_total counter\n";
  for (const auto& [key, count] : requests_) {
    const auto& [route, status, error_type] = key;
    out << "pysandbox_requests_total{route=\"" << escape_label(route) << "\",status=\"" << status
        << "\",error_type=\"" << escape_label(error_type) << "\"} " << count << "\n";
  }

  out << "# HELP pysandbox_requests_abandoned_total Requests whose client went away before the "
         "response: queued (left the queue), running (sandbox killed) or writing.\n"
         "# TYPE pysandbox_requests_abandoned_total counter\n";
  for (const auto& [key, count] : abandoned_) {
    out << "pysandbox_requests_abandoned_total{route=\"" << escape_label(key.first) << "\",phase=\""
        << escape_label(key.second) << "\"} " << count << "\n";
  }
  out << "# HELP pysandbox_responses_cut_total Responses cut off by the write timeout (the "
         "client did not take them).\n"
         "# TYPE pysandbox_responses_cut_total counter\n";
  for (const auto& [route, count] : cut_) {
    out << "pysandbox_responses_cut_total{route=\"" << escape_label(route) << "\"} " << count
        << "\n";
  }
  out << "# HELP pysandbox_connections_closed_total Connections the server closed, by reason.\n"
         "# TYPE pysandbox_connections_closed_total counter\n";
  for (std::size_t r = 0; r < kCloseReasonCount; ++r) {
    out << "pysandbox_connections_closed_total{reason=\"" << kCloseReasonNames[r] << "\"} "
        << connections_closed_[r] << "\n";
  }

  out << "# HELP pysandbox_phase_duration_seconds Latency of each /execute phase.\n"
         "# TYPE pysandbox_phase_duration_seconds histogram\n";
  for (std::size_t p = 0; p < kPhaseCount; ++p) {
    const Histogram& histogram = phases_[p];
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += histogram.buckets[i];
      out << "pysandbox_phase_duration_seconds_bucket{phase=\"" << kPhaseNames[p] << "\",le=\""
          << kBuckets[i] << "\"} " << cumulative << "\n";
    }
    out << "pysandbox_phase_duration_seconds_bucket{phase=\"" << kPhaseNames[p]
        << "\",le=\"+Inf\"} " << histogram.count << "\n"
        << "pysandbox_phase_duration_seconds_sum{phase=\"" << kPhaseNames[p] << "\"} "
        << histogram.sum_seconds << "\n"
        << "pysandbox_phase_duration_seconds_count{phase=\"" << kPhaseNames[p] << "\"} "
        << histogram.count << "\n";
  }

  out << "# HELP pysandbox_pool_zygotes Warm-pool zygotes by state.\n"
         "# TYPE pysandbox_pool_zygotes gauge\n"
         "pysandbox_pool_zygotes{state=\"ready\"} "
      << gauges.pool.ready << "\n"
      << "pysandbox_pool_zygotes{state=\"busy\"} " << gauges.pool.busy << "\n"
      << "# HELP pysandbox_pool_restarts_total Zygote restarts since the server started.\n"
         "# TYPE pysandbox_pool_restarts_total counter\n"
         "pysandbox_pool_restarts_total "
      << gauges.pool.restarts << "\n";
  const Scalar scalars[] = {
      {"pysandbox_in_flight", "gauge", "Sandboxes running now.", gauges.in_flight},
      {"pysandbox_queued", "gauge", "Requests waiting for a sandbox.", gauges.queued},
      {"pysandbox_max_concurrency", "gauge", "Sandboxes allowed at once.", gauges.max_concurrency},
      {"pysandbox_queue_size", "gauge", "Requests allowed to wait.", gauges.queue_size},
      {"pysandbox_connections", "gauge", "Open HTTP connections.", gauges.connections},
      {"pysandbox_connections_refused_total", "counter", "Connections over max_connections.",
       connections_refused_},
      {"pysandbox_max_connections", "gauge", "Open connections allowed (from the fd budget).",
       gauges.max_connections},
      {"pysandbox_fds_open", "gauge", "File descriptors the server holds now.", gauges.fds_open},
      {"pysandbox_fds_limit", "gauge", "The server's RLIMIT_NOFILE.", gauges.fds_limit},
      {"pysandbox_response_memory_bytes", "gauge", "Bytes of responses not yet taken by clients.",
       gauges.response_memory_bytes},
      {"pysandbox_response_memory_limit_bytes", "gauge", "Bound on those bytes.",
       gauges.response_memory_limit_bytes},
      {"pysandbox_response_memory_waits_total", "counter",
       "Finished runs that waited for room in the response memory budget.", response_memory_waits_},
      {"pysandbox_ready", "gauge", "1 when runs start warm (GET /readyz).", gauges.ready ? 1u : 0u},
      {"pysandbox_draining", "gauge", "1 while shutting down.", gauges.draining ? 1u : 0u},
  };
  for (const Scalar& scalar : scalars) write_scalar(out, scalar);
  out << "# HELP pysandbox_isolation_info Isolation mode of every sandbox.\n"
         "# TYPE pysandbox_isolation_info gauge\n"
         "pysandbox_isolation_info{mode=\""
      << escape_label(gauges.isolation) << "\"} 1\n";
  return out.str();
}

}  // namespace pysandbox::beast_server
