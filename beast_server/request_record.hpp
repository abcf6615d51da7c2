// What one HTTP request did, filled in along its path; feeds the log line and the metrics.
#pragma once

#include <optional>
#include <string>

namespace pysandbox::beast_server {

struct RequestRecord {
  std::string request_id;
  std::string method;
  std::string target;
  std::string remote;  // "address:port" of the peer
  std::string route;   // "/execute", "/healthz", "/metrics" or "other" (bounded metric labels)
  unsigned status = 0;
  std::string error_type;  // the contract's code; "ok" for a successful run; empty otherwise
  std::optional<std::string> isolation;  // when a sandbox ran
  std::optional<std::string> start;      // "warm:<zygote flavour>" or "cold"
  // Phases of /execute, present once reached.
  std::optional<double> queue_ms;
  std::optional<double> spawn_ms;
  std::optional<double> run_ms;
  std::optional<double> teardown_ms;
  // From the request being fully read to the response written.
  double total_ms = 0;
  // Internal errors only: what went wrong, for the operator (never sent to the client).
  std::string detail;
  // Set when the client went away before its response was written: "queued" (waiting for a
  // sandbox), "running" (its sandbox was killed) or "writing" (the response was being sent).
  // Such a request is not counted as answered.
  std::optional<std::string> abandoned;
  // The client did not take the response within the write timeout: the server cut it off.
  bool cut = false;

  bool delivered() const { return !abandoned && !cut; }
};

}  // namespace pysandbox::beast_server
