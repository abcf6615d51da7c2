// Everything the listener and the sessions share. Held by shared_ptr from every session's
// coroutine frame, so that frames destroyed late (by ~io_context after a forced stop) never
// touch freed memory. Single-threaded: only the io_context's thread touches it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>

#include "base/sys/unique_fd.hpp"
#include "beast_server/admission.hpp"
#include "beast_server/config.hpp"
#include "beast_server/connection_registry.hpp"
#include "beast_server/fd_budget.hpp"
#include "beast_server/http_types.hpp"
#include "beast_server/metrics.hpp"
#include "beast_server/request_handler.hpp"
#include "beast_server/request_log.hpp"
#include "beast_server/response_budget.hpp"
#include "executor/executor.hpp"

namespace pysandbox::beast_server {

struct ServerState {
  ServerState(net::io_context& io_in, Config config_in, executor::Executor& executor_in,
              std::ostream& log_out)
      : io(io_in),
        config(std::move(config_in)),
        executor(executor_in),
        log(log_out),
        admission(io_in.get_executor(), config.max_concurrency, config.queue_size,
                  std::chrono::milliseconds(config.queue_timeout_ms)),
        responses(io_in.get_executor(), config.response_memory_bytes),
        handler(
            config, executor_in,
            RequestHandler::Services{.admission = admission,
                                     .metrics = metrics,
                                     .responses = responses,
                                     .fds = fds,
                                     .connection_count = [this] { return connections.size(); }}),
        acceptor(io_in),
        drain_timer(io_in) {}

  net::io_context& io;
  const Config config;
  executor::Executor& executor;
  RequestLog log;
  Metrics metrics;
  Admission admission;
  ResponseBudget responses;
  // Set by Server::listen(); until then no connection is accepted.
  FdPlan fds;
  ConnectionRegistry connections;
  RequestHandler handler;
  Acceptor acceptor;
  Timer drain_timer;
  std::optional<SignalSet> signals;
  bool drain_timed_out = false;
  bool forced = false;
  // Held open so that, when accept() fails for want of a descriptor, closing it frees one to
  // accept the connection and refuse it with a 503 instead of leaving it in the backlog.
  base::sys::UniqueFd spare_fd;
  // accept() failures since the last one logged (logged at most once a second).
  std::uint64_t accept_errors_unlogged = 0;
  std::chrono::steady_clock::time_point accept_error_logged;
};

}  // namespace pysandbox::beast_server
