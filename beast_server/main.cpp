// pysandboxd: parses the configuration, builds the executor for the strongest isolation this
// host allows, and serves the HTTP API on one thread until SIGTERM/SIGINT has drained it.
//
// Exit status: 0 after a clean drain; 1 if startup failed (e.g. the isolation floor is not met
// or the port is taken) or the shutdown was forced (second signal, or drain_timeout_ms passed
// with requests still running); 2 for a configuration error (flags, or what they name: a
// --preload module the interpreter lacks, a missing --extra-ro-paths entry).
//
// Every line on stderr is JSON (base/log.hpp): a configuration error is one line,
// {"event": "config_error", "component": "server", "message"}; from then on the relay
// (log_relay.hpp) also makes JSON of what children and libraries write.
#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "base/log.hpp"
#include "beast_server/config.hpp"
#include "beast_server/fd_budget.hpp"
#include "beast_server/log_relay.hpp"
#include "beast_server/request_log.hpp"
#include "beast_server/server.hpp"
#include "beast_server/startup_checks.hpp"
#include "beast_server/version.hpp"
#include "executor/factory.hpp"

namespace {

namespace bs = pysandbox::beast_server;

// What main() logs before the server's own log exists.
constexpr std::string_view kComponent = "server";

// The configuration from flags and PYSANDBOX_* variables, or the exit status: 0 after --help,
// 2 after a configuration error (logged).
std::optional<int> load_config(int argc, char** argv, bs::Config& config) {
  try {
    config = bs::parse_config(
        std::span<const char* const>(argv + 1, static_cast<std::size_t>(argc > 0 ? argc - 1 : 0)),
        bs::system_env);
  } catch (const bs::ConfigError& e) {
    pysandbox::base::log(kComponent, "config_error", {{"message", e.what()}});
    return 2;
  }
  if (config.help_requested) {
    std::cout << (config.markdown_help_requested ? bs::settings_markdown() : bs::usage());
    return 0;
  }
  if (auto error = bs::check_startup_config(config)) {
    pysandbox::base::log(kComponent, "config_error", {{"message", *error}});
    return 2;
  }
  return std::nullopt;
}

// A misspelt PYSANDBOX_* variable would otherwise be ignored without a word.
void warn_unknown_settings(bs::RequestLog& log) {
  std::size_t count = 0;
  while (environ[count] != nullptr) ++count;
  for (const auto& name : bs::unknown_variables(std::span<const char* const>(environ, count))) {
    log.event("unknown_setting",
              {{"variable", name},
               {"detail", "no setting has this variable; it is ignored (see --help)"}});
  }
}

}  // namespace

int main(int argc, char** argv) {
  bs::Config config;
  if (auto status = load_config(argc, argv, config)) return *status;

  // A client that disconnects mid-response must cost an EPIPE, not the process.
  ::signal(SIGPIPE, SIG_IGN);

  // Before any child exists: zygotes inherit the relay as their stderr. Destroyed last, so that
  // it passes on the lines of everything that goes before it.
  std::optional<bs::LogRelay> relay = bs::LogRelay::start();
  bs::RequestLog log(std::cerr);
  warn_unknown_settings(log);
  // Connections and runs share the descriptor limit: take all the kernel allows.
  const bs::NofileLimit nofile = bs::raise_nofile_limit();
  // Declared before the io_context so it is destroyed after it: ~io_context destroys suspended
  // Executor::run frames (a forced stop), whose locals still refer to the executor.
  std::unique_ptr<pysandbox::executor::Executor> executor;
  // One thread: the executor forks, and the whole server is written single-threaded.
  boost::asio::io_context io{1};
  // Finished before the io_context goes (its jail::Child lives on it), after the executor's
  // shutdown (the zygotes' last lines).
  struct FinishRelay {
    std::optional<bs::LogRelay>& relay;
    ~FinishRelay() {
      if (relay) relay->finish();
    }
  } finish_relay{relay};
  if (relay) relay->watch(io.get_executor());
  try {
    executor = pysandbox::executor::make_executor(io.get_executor(), config.executor);
  } catch (const std::exception& e) {
    log.event("startup_failed", {{"message", e.what()}});
    return 1;
  }

  // Declared after the io_context, so destroyed before it (on every return path): the executor's
  // background io objects (the warm pool's zygote sockets and pidfds) need the io_context's
  // services to be destroyed, which go with it.
  struct ShutdownExecutor {
    pysandbox::executor::Executor* executor;
    ~ShutdownExecutor() { executor->shutdown(); }
  } shutdown_executor{executor.get()};

  const boost::json::object limits = bs::limits_json(config);
  const std::string address = config.listen_address;
  bs::Server server(io, std::move(config), *executor, std::cerr);
  std::uint16_t port = 0;
  try {
    port = server.listen();
  } catch (const std::exception& e) {
    log.event("startup_failed", {{"message", e.what()}});
    return 1;
  }
  const bs::FdPlan& fds = server.fd_plan();
  log.event("startup", {{"version", bs::kVersion},
                        {"listen", address},
                        {"port", port},
                        {"mode", pysandbox::executor::to_string(executor->isolation())},
                        {"isolation", executor->describe()},
                        {"limits", limits},
                        {"fds",
                         {{"limit", fds.limit},
                          {"limit_before", nofile.soft_before},
                          {"hard_limit", nofile.hard},
                          {"open", fds.baseline},
                          {"reserved", fds.reserved},
                          {"max_connections", fds.max_connections}}},
                        {"pid", ::getpid()}});
  server.start(/*handle_signals=*/true);

  try {
    io.run();
  } catch (const std::exception& e) {
    log.event("fatal", {{"error", e.what()}});
    return 1;
  }
  const bool clean = server.stopped_cleanly();
  log.event("shutdown", {{"clean", clean}});
  return clean ? 0 : 1;
}
