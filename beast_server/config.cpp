#include "beast_server/config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <boost/json/value.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

namespace pysandbox::beast_server {

namespace {

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = kKiB * 1024;
constexpr std::uint64_t kGiB = kMiB * 1024;
// No timeout may exceed a day: keeps every millisecond count far from overflow in chrono maths.
constexpr std::uint64_t kMaxMillis = 24ull * 3600 * 1000;

// Where a value came from, for error messages that tell the operator what to fix.
struct Source {
  std::string name;  // "--port" or "PYSANDBOX_PORT"
};

[[noreturn]] void fail(const Source& source, std::string_view value, std::string_view expected) {
  std::ostringstream out;
  out << source.name << ": invalid value '" << value << "': expected " << expected;
  throw ConfigError(out.str());
}

std::uint64_t parse_integer(const Source& source, std::string_view value, std::uint64_t min,
                            std::uint64_t max, bool allow_size_suffix) {
  std::uint64_t number = 0;
  const char* const end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, number);
  std::ostringstream expected;
  expected << (allow_size_suffix ? "a size in bytes (suffix K, M or G for KiB, MiB, GiB)"
                                 : "an integer")
           << " in [" << min << ", " << max << "]";
  if (ec != std::errc{} || ptr == value.data()) fail(source, value, expected.str());
  if (ptr != end) {
    std::uint64_t unit = 0;
    if (allow_size_suffix && ptr + 1 == end) {
      switch (*ptr) {
        case 'k':
        case 'K':
          unit = kKiB;
          break;
        case 'm':
        case 'M':
          unit = kMiB;
          break;
        case 'g':
        case 'G':
          unit = kGiB;
          break;
        default:
          break;
      }
    }
    if (unit == 0) fail(source, value, expected.str());
    if (number > std::numeric_limits<std::uint64_t>::max() / unit) {
      fail(source, value, expected.str());
    }
    number *= unit;
  }
  if (number < min || number > max) fail(source, value, expected.str());
  return number;
}

unsigned parse_millis(const Source& source, std::string_view value) {
  return static_cast<unsigned>(parse_integer(source, value, 1, kMaxMillis, false));
}

bool parse_bool(const Source& source, std::string_view value) {
  if (value == "1" || value == "true" || value == "yes" || value == "on") return true;
  if (value == "0" || value == "false" || value == "no" || value == "off") return false;
  fail(source, value, "true or false");
}

executor::Isolation parse_isolation(const Source& source, std::string_view value) {
  if (auto mode = executor::isolation_from_string(value)) return *mode;
  fail(source, value, "one of rlimit, namespaces, full");
}

// One row per setting: its flag, variable, unit, whether the startup log reports it among the
// limits, help, and how it is shown (--help, README) and set. Its default is the member's
// initialiser in Config or executor::Settings (executor/request_defaults.hpp for the request
// limits), so each default is written once.
struct Option {
  std::string_view flag;  // without the leading "--"
  std::string_view env;
  std::string_view unit;  // of the value: bytes, ms, MiB, cores; empty when it has none
  // Non-null: a limit of limits_json(), under the flag's name with '_' for '-'.
  boost::json::value (*limit)(const Config&);
  std::string help;
  bool is_bool = false;
  std::string (*show)(const Config&);
  void (*set)(Config&, const Source&, std::string_view);
  // Non-empty: the default as README.md states it, where the real one depends on the machine.
  std::string doc_default = {};
};

// Limit getters: function templates, so that each is a plain function pointer.
template <auto Field>
boost::json::value server_limit(const Config& c) {
  return boost::json::value(c.*Field);
}
template <auto Field>
boost::json::value executor_limit(const Config& c) {
  return boost::json::value(c.executor.*Field);
}

std::string show_bytes(std::uint64_t bytes) {
  if (bytes != 0 && bytes % kGiB == 0) return std::to_string(bytes / kGiB) + "G";
  if (bytes != 0 && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + "M";
  if (bytes != 0 && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + "K";
  return std::to_string(bytes);
}

std::string join_paths(const std::vector<std::string>& paths) {
  std::string joined;
  for (const auto& path : paths) {
    if (!joined.empty()) joined += ':';
    joined += path;
  }
  return joined;
}

// Captureless lambdas keep the table a constant array of plain function pointers.
const std::vector<Option>& options() {
  static const std::vector<Option> kOptions = {
      {"listen", "PYSANDBOX_LISTEN", "", nullptr, "IP address to listen on (IPv4 or IPv6)", false,
       [](const Config& c) { return c.listen_address; },
       [](Config& c, const Source& s, std::string_view v) {
         unsigned char buffer[sizeof(in6_addr)];
         const std::string address(v);
         if (inet_pton(AF_INET, address.c_str(), buffer) != 1 &&
             inet_pton(AF_INET6, address.c_str(), buffer) != 1) {
           fail(s, v, "a numeric IPv4 or IPv6 address such as 127.0.0.1 or 0.0.0.0");
         }
         c.listen_address = address;
       }},
      {"port", "PYSANDBOX_PORT", "", nullptr,
       "TCP port (0 = ephemeral); the PORT variable is honoured too", false,
       [](const Config& c) { return std::to_string(c.port); },
       [](Config& c, const Source& s, std::string_view v) {
         c.port = static_cast<std::uint16_t>(parse_integer(s, v, 0, 65535, false));
       }},
      {"max-body-bytes", "PYSANDBOX_MAX_BODY_BYTES", "bytes", server_limit<&Config::max_body_bytes>,
       "largest accepted request body", false,
       [](const Config& c) { return show_bytes(c.max_body_bytes); },
       [](Config& c, const Source& s, std::string_view v) {
         c.max_body_bytes = parse_integer(s, v, 1, kGiB, true);
       }},
      {"max-script-bytes", "PYSANDBOX_MAX_SCRIPT_BYTES", "bytes",
       server_limit<&Config::max_script_bytes>, "largest accepted script", false,
       [](const Config& c) { return show_bytes(c.max_script_bytes); },
       [](Config& c, const Source& s, std::string_view v) {
         c.max_script_bytes = parse_integer(s, v, 1, kGiB, true);
       }},
      {"default-timeout-ms", "PYSANDBOX_DEFAULT_TIMEOUT_MS", "ms",
       server_limit<&Config::default_timeout_ms>,
       "wall-clock limit when a request gives no timeout_ms", false,
       [](const Config& c) { return std::to_string(c.default_timeout_ms); },
       [](Config& c, const Source& s, std::string_view v) {
         c.default_timeout_ms = parse_millis(s, v);
       }},
      {"max-timeout-ms", "PYSANDBOX_MAX_TIMEOUT_MS", "ms", server_limit<&Config::max_timeout_ms>,
       "cap on a request's timeout_ms", false,
       [](const Config& c) { return std::to_string(c.max_timeout_ms); },
       [](Config& c, const Source& s, std::string_view v) {
         c.max_timeout_ms = parse_millis(s, v);
       }},
      {"default-memory-mb", "PYSANDBOX_DEFAULT_MEMORY_MB", "MiB",
       server_limit<&Config::default_memory_mb>, "memory limit when a request gives no memory_mb",
       false, [](const Config& c) { return std::to_string(c.default_memory_mb); },
       [](Config& c, const Source& s, std::string_view v) {
         c.default_memory_mb =
             static_cast<unsigned>(parse_integer(s, v, kMinMemoryMb, 1u << 20, false));
       }},
      {"max-memory-mb", "PYSANDBOX_MAX_MEMORY_MB", "MiB", server_limit<&Config::max_memory_mb>,
       "cap on a request's memory_mb", false,
       [](const Config& c) { return std::to_string(c.max_memory_mb); },
       [](Config& c, const Source& s, std::string_view v) {
         c.max_memory_mb =
             static_cast<unsigned>(parse_integer(s, v, kMinMemoryMb, 1u << 20, false));
       }},
      {"max-concurrency", "PYSANDBOX_MAX_CONCURRENCY", "", server_limit<&Config::max_concurrency>,
       "sandboxes running at once (default: number of CPUs)", false,
       [](const Config& c) { return std::to_string(c.max_concurrency); },
       [](Config& c, const Source& s, std::string_view v) {
         c.max_concurrency = static_cast<unsigned>(parse_integer(s, v, 1, 4096, false));
       },
       "number of CPUs"},
      {"queue-size", "PYSANDBOX_QUEUE_SIZE", "", server_limit<&Config::queue_size>,
       "requests that may wait for a sandbox (0 = refuse when all are busy)", false,
       [](const Config& c) { return std::to_string(c.queue_size); },
       [](Config& c, const Source& s, std::string_view v) {
         c.queue_size = parse_integer(s, v, 0, 100000, false);
       }},
      {"queue-timeout-ms", "PYSANDBOX_QUEUE_TIMEOUT_MS", "ms",
       server_limit<&Config::queue_timeout_ms>, "longest wait for a sandbox before 429", false,
       [](const Config& c) { return std::to_string(c.queue_timeout_ms); },
       [](Config& c, const Source& s, std::string_view v) {
         c.queue_timeout_ms = parse_millis(s, v);
       }},
      {"read-timeout-ms", "PYSANDBOX_READ_TIMEOUT_MS", "ms", server_limit<&Config::read_timeout_ms>,
       "a request's header and body must arrive within this of its first byte", false,
       [](const Config& c) { return std::to_string(c.read_timeout_ms); },
       [](Config& c, const Source& s, std::string_view v) {
         c.read_timeout_ms = parse_millis(s, v);
       }},
      {"idle-timeout-ms", "PYSANDBOX_IDLE_TIMEOUT_MS", "ms", server_limit<&Config::idle_timeout_ms>,
       "how long a keep-alive connection may wait for its next request", false,
       [](const Config& c) { return std::to_string(c.idle_timeout_ms); },
       [](Config& c, const Source& s, std::string_view v) {
         c.idle_timeout_ms = parse_millis(s, v);
       }},
      {"write-timeout-ms", "PYSANDBOX_WRITE_TIMEOUT_MS", "ms",
       server_limit<&Config::write_timeout_ms>,
       "how long the client may take to receive a response", false,
       [](const Config& c) { return std::to_string(c.write_timeout_ms); },
       [](Config& c, const Source& s, std::string_view v) {
         c.write_timeout_ms = parse_millis(s, v);
       }},
      {"drain-timeout-ms", "PYSANDBOX_DRAIN_TIMEOUT_MS", "ms",
       server_limit<&Config::drain_timeout_ms>,
       "bound on graceful shutdown (default: max-timeout-ms + " + std::to_string(kDrainMarginMs) +
           ")",
       false, [](const Config& c) { return std::to_string(c.drain_timeout_ms); },
       [](Config& c, const Source& s, std::string_view v) {
         c.drain_timeout_ms = parse_millis(s, v);
       },
       "max-timeout-ms + " + std::to_string(kDrainMarginMs)},
      {"max-connections", "PYSANDBOX_MAX_CONNECTIONS", "", server_limit<&Config::max_connections>,
       "open connections (lowered to fit the file-descriptor budget); at the cap the longest-idle "
       "one is closed for a new one, or the new one is answered 503",
       false, [](const Config& c) { return std::to_string(c.max_connections); },
       [](Config& c, const Source& s, std::string_view v) {
         c.max_connections = parse_integer(s, v, 1, 1000000, false);
       }},
      {"response-memory-bytes", "PYSANDBOX_RESPONSE_MEMORY_BYTES", "bytes",
       server_limit<&Config::response_memory_bytes>,
       "responses held at once for clients that have not read them yet; past it a finished run "
       "waits",
       false, [](const Config& c) { return show_bytes(c.response_memory_bytes); },
       [](Config& c, const Source& s, std::string_view v) {
         c.response_memory_bytes = parse_integer(s, v, kMiB, 64 * kGiB, true);
       }},
      {"python", "PYSANDBOX_PYTHON", "", nullptr, "Python interpreter run in the sandbox", false,
       [](const Config& c) { return c.executor.python_path; },
       [](Config& c, const Source& s, std::string_view v) {
         if (v.empty() || v.front() != '/') fail(s, v, "an absolute path");
         c.executor.python_path = v;
       }},
      {"data-dir", "PYSANDBOX_DATA_DIR", "", nullptr,
       "directory holding runner.py and default.policy (empty = <exe>/../share/pysandbox)", false,
       [](const Config& c) { return c.executor.data_dir; },
       [](Config& c, const Source&, std::string_view v) { c.executor.data_dir = v; }},
      {"seccomp-policy", "PYSANDBOX_SECCOMP_POLICY", "", nullptr,
       "seccomp policy file (empty = <data-dir>/default.policy)", false,
       [](const Config& c) { return c.executor.seccomp_policy_path; },
       [](Config& c, const Source&, std::string_view v) { c.executor.seccomp_policy_path = v; }},
      {"isolation", "PYSANDBOX_ISOLATION", "", nullptr,
       "force an isolation mode: rlimit, namespaces or full (empty = strongest available)", false,
       [](const Config& c) {
         return c.executor.forced_isolation
                    ? std::string(executor::to_string(*c.executor.forced_isolation))
                    : std::string();
       },
       [](Config& c, const Source& s, std::string_view v) {
         if (v.empty()) {
           c.executor.forced_isolation.reset();
         } else {
           c.executor.forced_isolation = parse_isolation(s, v);
         }
       }},
      {"min-isolation", "PYSANDBOX_MIN_ISOLATION", "", nullptr,
       "refuse to start below this mode: rlimit, namespaces or full", false,
       [](const Config& c) { return std::string(executor::to_string(c.executor.min_isolation)); },
       [](Config& c, const Source& s, std::string_view v) {
         c.executor.min_isolation = parse_isolation(s, v);
       }},
      {"max-output-bytes", "PYSANDBOX_MAX_OUTPUT_BYTES", "bytes",
       executor_limit<&executor::Settings::max_output_bytes>,
       "cap on each of stdout, stderr and the result", false,
       [](const Config& c) { return show_bytes(c.executor.max_output_bytes); },
       [](Config& c, const Source& s, std::string_view v) {
         c.executor.max_output_bytes = parse_integer(s, v, 1, kGiB, true);
       }},
      {"truncate-output", "PYSANDBOX_TRUNCATE_OUTPUT", "",
       executor_limit<&executor::Settings::truncate_output>,
       "past the output cap, truncate and flag instead of stopping the script", true,
       [](const Config& c) { return std::string(c.executor.truncate_output ? "true" : "false"); },
       [](Config& c, const Source& s, std::string_view v) {
         c.executor.truncate_output = parse_bool(s, v);
       }},
      {"tmpfs-bytes", "PYSANDBOX_TMPFS_BYTES", "bytes", nullptr,
       "size of each sandbox's private /tmp", false,
       [](const Config& c) { return show_bytes(c.executor.tmpfs_bytes); },
       [](Config& c, const Source& s, std::string_view v) {
         c.executor.tmpfs_bytes = parse_integer(s, v, kMiB, 64 * kGiB, true);
       }},
      {"pids-max", "PYSANDBOX_PIDS_MAX", "", nullptr, "processes and threads per sandbox", false,
       [](const Config& c) { return std::to_string(c.executor.pids_max); },
       [](Config& c, const Source& s, std::string_view v) {
         c.executor.pids_max = static_cast<unsigned>(parse_integer(s, v, 1, 65536, false));
       }},
      {"nofile-max", "PYSANDBOX_NOFILE_MAX", "", nullptr, "open files per sandbox (RLIMIT_NOFILE)",
       false, [](const Config& c) { return std::to_string(c.executor.nofile_max); },
       [](Config& c, const Source& s, std::string_view v) {
         c.executor.nofile_max = static_cast<unsigned>(parse_integer(s, v, 16, 1u << 20, false));
       }},
      {"fsize-max-bytes", "PYSANDBOX_FSIZE_MAX_BYTES", "bytes", nullptr,
       "largest file a sandbox may write", false,
       [](const Config& c) { return show_bytes(c.executor.fsize_max_bytes); },
       [](Config& c, const Source& s, std::string_view v) {
         c.executor.fsize_max_bytes = parse_integer(s, v, 1, 64 * kGiB, true);
       }},
      {"cpu-cores", "PYSANDBOX_CPU_CORES", "cores", nullptr,
       "CPU share per sandbox in cores (full mode)", false,
       [](const Config& c) {
         std::ostringstream out;
         out << c.executor.cpu_max_cores;
         return out.str();
       },
       [](Config& c, const Source& s, std::string_view v) {
         double cores = 0;
         const char* const end = v.data() + v.size();
         auto [ptr, ec] = std::from_chars(v.data(), end, cores);
         if (ec != std::errc{} || ptr != end || !std::isfinite(cores) || cores < 0.01 ||
             cores > 1024) {
           fail(s, v, "a number of cores in [0.01, 1024]");
         }
         c.executor.cpu_max_cores = cores;
       }},
      {"uid-base", "PYSANDBOX_UID_BASE", "", nullptr,
       "sandbox i runs as host uid/gid uid-base + i; the range must be unused", false,
       [](const Config& c) { return std::to_string(c.executor.uid_base); },
       [](Config& c, const Source& s, std::string_view v) {
         c.executor.uid_base = static_cast<uid_t>(
             parse_integer(s, v, 1, std::numeric_limits<uid_t>::max() - 1, false));
       }},
      {"pool", "PYSANDBOX_POOL", "", nullptr,
       "warm path: fork each sandbox from a pre-initialised interpreter (on|off)", false,
       [](const Config& c) { return std::string(c.executor.pool ? "on" : "off"); },
       [](Config& c, const Source& s, std::string_view v) { c.executor.pool = parse_bool(s, v); }},
      {"pool-size", "PYSANDBOX_POOL_SIZE", "", nullptr,
       "zygotes per flavour (minimal and preloaded)", false,
       [](const Config& c) { return std::to_string(c.executor.pool_size); },
       [](Config& c, const Source& s, std::string_view v) {
         c.executor.pool_size = static_cast<unsigned>(parse_integer(s, v, 1, 64, false));
       }},
      {"preload", "PYSANDBOX_PRELOAD", "", nullptr,
       "comma-separated modules the preloaded zygotes import (empty: minimal zygotes only)", false,
       [](const Config& c) {
         std::string out;
         for (const auto& m : c.executor.preload) out += (out.empty() ? "" : ",") + m;
         return out;
       },
       [](Config& c, const Source& s, std::string_view v) {
         std::vector<std::string> modules;
         while (!v.empty()) {
           const auto comma = v.find(',');
           const auto name = v.substr(0, comma);
           if (!name.empty()) {
             // Module names only: they become argv of the zygote and keys of the routing.
             const bool valid = name.size() <= 128 && name.front() != '.' && name.back() != '.' &&
                                std::all_of(name.begin(), name.end(),
                                            [](char ch) {
                                              return std::isalnum(static_cast<unsigned char>(ch)) ||
                                                     ch == '_' || ch == '.';
                                            }) &&
                                !std::isdigit(static_cast<unsigned char>(name.front()));
             if (!valid) fail(s, name, "Python module names separated by ','");
             modules.emplace_back(name);
           }
           if (comma == std::string_view::npos) break;
           v.remove_prefix(comma + 1);
         }
         c.executor.preload = std::move(modules);
       }},
      {"rlimit-scratch-dir", "PYSANDBOX_RLIMIT_SCRATCH_DIR", "", nullptr,
       "rlimit mode: where each run's scratch directory is made (empty = /tmp/pysandbox-rlimit)",
       false, [](const Config& c) { return c.executor.rlimit_scratch_dir; },
       [](Config& c, const Source& s, std::string_view v) {
         if (!v.empty() && v.front() != '/') fail(s, v, "an absolute path");
         c.executor.rlimit_scratch_dir = v;
       }},
      {"rlimit-namespaces", "PYSANDBOX_RLIMIT_NAMESPACES", "", nullptr,
       "rlimit mode: still use the namespaces the host allows (on|off)", false,
       [](const Config& c) { return std::string(c.executor.rlimit_namespaces ? "on" : "off"); },
       [](Config& c, const Source& s, std::string_view v) {
         c.executor.rlimit_namespaces = parse_bool(s, v);
       }},
      {"web", "PYSANDBOX_WEB", "", nullptr, "serve the web IDE from <data-dir>/web at / (on|off)",
       false, [](const Config& c) { return std::string(c.web ? "on" : "off"); },
       [](Config& c, const Source& s, std::string_view v) { c.web = parse_bool(s, v); }},
      {"extra-ro-paths", "PYSANDBOX_EXTRA_RO_PATHS", "", nullptr,
       "colon-separated absolute paths exposed read-only inside the sandbox", false,
       [](const Config& c) { return join_paths(c.executor.extra_ro_paths); },
       [](Config& c, const Source& s, std::string_view v) {
         std::vector<std::string> paths;
         while (!v.empty()) {
           const auto colon = v.find(':');
           const auto path = v.substr(0, colon);
           if (!path.empty()) {
             if (path.front() != '/') fail(s, path, "absolute paths separated by ':'");
             paths.emplace_back(path);
           }
           if (colon == std::string_view::npos) break;
           v.remove_prefix(colon + 1);
         }
         c.executor.extra_ro_paths = std::move(paths);
       }},
  };
  return kOptions;
}

const Option* find_option(std::string_view flag) {
  for (const auto& option : options()) {
    if (option.flag == flag) return &option;
  }
  return nullptr;
}

// Defaults that depend on the machine; shared by parse_config and usage so --help tells the
// truth.
Config machine_defaults() {
  Config config;
  config.max_concurrency = std::max(1u, std::thread::hardware_concurrency());
  config.drain_timeout_ms = config.max_timeout_ms + kDrainMarginMs;
  config.executor.max_concurrency = config.max_concurrency;
  return config;
}

void validate(const Config& c) {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) throw ConfigError(message);
  };
  require(c.default_timeout_ms <= c.max_timeout_ms,
          "--default-timeout-ms (" + std::to_string(c.default_timeout_ms) +
              ") must not exceed --max-timeout-ms (" + std::to_string(c.max_timeout_ms) + ")");
  require(c.default_memory_mb <= c.max_memory_mb,
          "--default-memory-mb (" + std::to_string(c.default_memory_mb) +
              ") must not exceed --max-memory-mb (" + std::to_string(c.max_memory_mb) + ")");
  require(c.max_script_bytes <= c.max_body_bytes,
          "--max-script-bytes (" + std::to_string(c.max_script_bytes) +
              ") must not exceed --max-body-bytes (" + std::to_string(c.max_body_bytes) +
              "): the script travels inside the body");
  require(static_cast<std::uint64_t>(c.executor.uid_base) + c.max_concurrency <=
              std::numeric_limits<uid_t>::max(),
          "--uid-base + --max-concurrency overflows the uid range");
  if (c.executor.forced_isolation) {
    require(*c.executor.forced_isolation >= c.executor.min_isolation,
            "--isolation=" + std::string(executor::to_string(*c.executor.forced_isolation)) +
                " is below --min-isolation=" +
                std::string(executor::to_string(c.executor.min_isolation)));
  }
}

}  // namespace

std::optional<std::string> system_env(std::string_view name) {
  const std::string key(name);
  if (const char* value = std::getenv(key.c_str())) return std::string(value);
  return std::nullopt;
}

Config parse_config(std::span<const char* const> args, const EnvLookup& env) {
  // Flags first, into a map, so that the environment is consulted only for what they leave.
  std::map<std::string_view, std::string, std::less<>> flags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i] ? args[i] : "";
    if (arg == "--help" || arg == "-h" || arg == "--help-markdown") {
      Config config = machine_defaults();
      config.help_requested = true;
      config.markdown_help_requested = arg == "--help-markdown";
      return config;
    }
    if (!arg.starts_with("--") || arg.size() == 2) {
      throw ConfigError("unexpected argument '" + std::string(arg) + "' (see --help)");
    }
    const auto body = arg.substr(2);
    const auto equals = body.find('=');
    const auto name = body.substr(0, equals);
    const Option* option = find_option(name);
    if (option == nullptr) {
      throw ConfigError("unknown flag --" + std::string(name) + " (see --help)");
    }
    if (equals != std::string_view::npos) {
      flags[option->flag] = std::string(body.substr(equals + 1));
    } else if (option->is_bool) {
      flags[option->flag] = "true";
    } else if (i + 1 < args.size() && args[i + 1] != nullptr) {
      flags[option->flag] = args[++i];
    } else {
      throw ConfigError("flag --" + std::string(name) + " needs a value");
    }
  }

  Config config = machine_defaults();
  bool drain_given = false;
  for (const auto& option : options()) {
    std::optional<std::string> value;
    Source source;
    if (auto flag = flags.find(option.flag); flag != flags.end()) {
      value = flag->second;
      source.name = "--" + std::string(option.flag);
    } else if (auto from_env = env(option.env); from_env && !from_env->empty()) {
      value = std::move(from_env);
      source.name = std::string(option.env);
    } else if (option.flag == "port") {
      if (auto port = env("PORT"); port && !port->empty()) {
        value = std::move(port);
        source.name = "PORT";
      }
    }
    if (!value) continue;
    option.set(config, source, *value);
    if (option.flag == "drain-timeout-ms") drain_given = true;
  }
  if (!drain_given) config.drain_timeout_ms = config.max_timeout_ms + kDrainMarginMs;
  config.executor.max_concurrency = config.max_concurrency;
  validate(config);
  return config;
}

std::vector<std::string> unknown_variables(std::span<const char* const> environment) {
  std::vector<std::string> out;
  for (const char* entry : environment) {
    if (entry == nullptr) continue;
    const std::string_view text(entry);
    const std::string_view name = text.substr(0, text.find('='));
    if (!name.starts_with("PYSANDBOX_") || name.starts_with("PYSANDBOX_TEST_") ||
        name.starts_with("PYSANDBOX_E2E_")) {
      continue;
    }
    const auto& all = options();
    const bool known = std::any_of(all.begin(), all.end(),
                                   [&](const Option& option) { return option.env == name; });
    if (!known) out.emplace_back(name);
  }
  return out;
}

std::string usage() {
  const Config defaults = machine_defaults();
  std::ostringstream out;
  out << "Usage: pysandboxd [--flag=value | --flag value]...\n\n"
         "Runs untrusted Python scripts in a Linux sandbox behind an HTTP API.\n"
         "Every flag has an environment equivalent; a flag wins over its variable.\n"
         "Sizes accept a K, M or G suffix (KiB, MiB, GiB).\n\n";
  for (const auto& option : options()) {
    out << "  --" << option.flag << (option.is_bool ? "[=true|false]" : "=VALUE") << "\n      "
        << option.help << "\n      default: '" << option.show(defaults) << "'";
    if (!option.unit.empty()) out << "  unit: " << option.unit;
    out << "  env: " << option.env << "\n";
  }
  out << "  --help\n      print this text and exit\n"
         "  --help-markdown\n      print the settings as README.md's table and exit\n";
  return out.str();
}

std::string settings_markdown() {
  // The struct's defaults, not this machine's: doc_default describes the ones that differ.
  const Config defaults;
  const auto cell = [](std::string_view text) {
    std::string out;
    for (const char ch : text) {
      // A bare '|' would end the cell, and "<exe>" would be taken for an HTML tag.
      if (ch == '|' || ch == '<') out += '\\';
      out += ch;
    }
    return out;
  };
  std::ostringstream out;
  out << "| flag | variable | default | unit | |\n|---|---|---|---|---|\n";
  for (const auto& option : options()) {
    std::string value = option.doc_default;
    if (value.empty()) {
      const std::string shown = option.show(defaults);
      value = shown.empty() ? "(empty)" : "`" + shown + "`";
    }
    out << "| `--" << option.flag << "` | `" << option.env << "` | " << cell(value) << " | "
        << option.unit << " | " << cell(option.help) << " |\n";
  }
  return out.str();
}

boost::json::object limits_json(const Config& config) {
  boost::json::object limits;
  for (const auto& option : options()) {
    if (option.limit == nullptr) continue;
    std::string key(option.flag);
    std::replace(key.begin(), key.end(), '-', '_');
    limits[key] = option.limit(config);
  }
  return limits;
}

}  // namespace pysandbox::beast_server
