// Operator configuration of pysandboxd: HTTP limits, admission, timeouts and the executor's
// settings, read from command-line flags with environment-variable equivalents.
#pragma once

#include <boost/json/object.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "executor/request_defaults.hpp"
#include "executor/settings.hpp"

namespace pysandbox::beast_server {

// Smallest memory_mb a request (or the operator's default) may ask for: below this the
// interpreter itself does not start, so the request could only fail confusingly.
inline constexpr unsigned kMinMemoryMb = 32;

// What drain_timeout_ms adds to max_timeout_ms unless it is given.
inline constexpr unsigned kDrainMarginMs = 5000;

struct Config {
  // Network. Port 0 binds an ephemeral port (the startup log line reports the real one).
  std::string listen_address = "127.0.0.1";
  std::uint16_t port = 8080;

  // Request limits (the contract's defaults).
  std::size_t max_body_bytes = 1u << 20;
  std::size_t max_script_bytes = executor::kDefaultMaxScriptBytes;
  unsigned default_timeout_ms = executor::kDefaultTimeoutMs;
  unsigned max_timeout_ms = executor::kDefaultMaxTimeoutMs;
  unsigned default_memory_mb = executor::kDefaultMemoryMb;
  unsigned max_memory_mb = executor::kDefaultMaxMemoryMb;

  // Admission: at most max_concurrency sandboxes at once, up to queue_size requests waiting at
  // most queue_timeout_ms each; beyond that 429.
  unsigned max_concurrency = 1;  // parse_config defaults it to hardware_concurrency()
  std::size_t queue_size = 64;
  unsigned queue_timeout_ms = 10000;

  // HTTP timeouts. A request's header and body must arrive within read_timeout_ms of its first
  // byte (slowloris); a kept-alive connection may sit idle idle_timeout_ms; a response must be
  // taken by the client within write_timeout_ms.
  unsigned read_timeout_ms = 10000;
  unsigned idle_timeout_ms = 30000;
  unsigned write_timeout_ms = 10000;
  // Graceful shutdown bound; parse_config defaults it to max_timeout_ms + kDrainMarginMs so that
  // a run admitted just before SIGTERM can finish.
  unsigned drain_timeout_ms = executor::kDefaultMaxTimeoutMs + kDrainMarginMs;
  // Connections beyond this are accepted and answered 503 at once, after the longest-idle one
  // has been closed to make room if there is one. The server lowers it to what its file
  // descriptor budget allows (fd_budget.hpp): each sandbox needs a few descriptors too.
  std::size_t max_connections = 1024;
  // Bytes of responses held, all together, for clients that have not taken them yet
  // (response_budget.hpp); a finished run waits for room past it.
  std::size_t response_memory_bytes = 64u << 20;

  // Serve the web IDE (<data-dir>/web) at / and /assets/; off for API-only deployments.
  bool web = true;

  // Set by --help: the caller prints usage() and exits. --help-markdown sets both: the caller
  // prints settings_markdown() instead (the README's table).
  bool help_requested = false;
  bool markdown_help_requested = false;

  executor::Settings executor;
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Looks an environment variable up; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

// getenv(3).
std::optional<std::string> system_env(std::string_view name);

// Parses argv[1..] (`--name=value` or `--name value`; boolean flags also bare) with the
// environment as fallback (`PYSANDBOX_NAME`, flags win; `PORT` is honoured after
// PYSANDBOX_PORT), validates ranges and cross-field rules. Throws ConfigError with a sentence
// naming the flag.
Config parse_config(std::span<const char* const> args, const EnvLookup& env);

// The PYSANDBOX_* variables of `environment` (NAME=VALUE strings) that name no setting: a typo
// there would otherwise silently leave a default in force. The project's test harness variables
// (PYSANDBOX_TEST_*, PYSANDBOX_E2E_*) are not settings and not reported.
std::vector<std::string> unknown_variables(std::span<const char* const> environment);

// The --help text: every flag with its default, unit and environment variable.
std::string usage();

// The settings as the Markdown table README.md's "Configuration" section carries (a test keeps
// the two equal): flag, variable, default, unit, help; the machine-dependent defaults described
// rather than this machine's values.
std::string settings_markdown();

// The limits the startup log line reports, keyed by flag name with '_' for '-': the settings the
// table marks as limits, in its order.
boost::json::object limits_json(const Config& config);

}  // namespace pysandbox::beast_server
