#include "beast_server/config.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

namespace pysandbox::beast_server {
namespace {

struct Env {
  std::map<std::string, std::string, std::less<>> values;
  EnvLookup lookup() const {
    return [this](std::string_view name) -> std::optional<std::string> {
      if (auto it = values.find(name); it != values.end()) return it->second;
      return std::nullopt;
    };
  }
};

Config parse(std::vector<const char*> args, const Env& env = {}) {
  return parse_config(args, env.lookup());
}

// Asserts that parsing throws a ConfigError whose message contains `mention`.
void expect_rejected(std::vector<const char*> args, const Env& env, std::string_view mention) {
  try {
    parse(std::move(args), env);
    ADD_FAILURE() << "accepted; expected an error mentioning " << mention;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(mention), std::string::npos) << e.what();
  }
}

TEST(Config, Defaults) {
  const Config config = parse({});
  EXPECT_EQ(config.listen_address, "127.0.0.1");
  EXPECT_EQ(config.port, 8080);
  EXPECT_EQ(config.max_body_bytes, 1u << 20);
  EXPECT_EQ(config.max_script_bytes, 256u << 10);
  EXPECT_EQ(config.default_timeout_ms, 5000u);
  EXPECT_EQ(config.max_timeout_ms, 30000u);
  EXPECT_EQ(config.default_memory_mb, 256u);
  EXPECT_EQ(config.max_memory_mb, 2048u);
  EXPECT_EQ(config.max_concurrency, std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_EQ(config.executor.max_concurrency, config.max_concurrency);
  EXPECT_EQ(config.queue_size, 64u);
  EXPECT_EQ(config.queue_timeout_ms, 10000u);
  EXPECT_EQ(config.read_timeout_ms, 10000u);
  EXPECT_EQ(config.idle_timeout_ms, 30000u);
  EXPECT_EQ(config.write_timeout_ms, 10000u);
  EXPECT_EQ(config.drain_timeout_ms, 35000u);
  EXPECT_EQ(config.max_connections, 1024u);
  EXPECT_FALSE(config.help_requested);
  EXPECT_EQ(config.executor.python_path, "/usr/bin/python3");
  EXPECT_FALSE(config.executor.forced_isolation.has_value());
  EXPECT_EQ(config.executor.min_isolation, executor::Isolation::kRlimit);
  EXPECT_FALSE(config.executor.truncate_output);
}

TEST(Config, BothFlagSyntaxes) {
  const Config config = parse({"--port=9000", "--listen", "0.0.0.0", "--max-concurrency", "3",
                               "--truncate-output", "--isolation=namespaces"});
  EXPECT_EQ(config.port, 9000);
  EXPECT_EQ(config.listen_address, "0.0.0.0");
  EXPECT_EQ(config.max_concurrency, 3u);
  EXPECT_EQ(config.executor.max_concurrency, 3u);
  EXPECT_TRUE(config.executor.truncate_output);
  EXPECT_EQ(config.executor.forced_isolation, executor::Isolation::kNamespaces);
}

TEST(Config, EnvironmentFillsWhatFlagsLeave) {
  Env env;
  env.values = {{"PYSANDBOX_LISTEN", "::"},
                {"PYSANDBOX_MAX_BODY_BYTES", "2M"},
                {"PYSANDBOX_TRUNCATE_OUTPUT", "true"},
                {"PYSANDBOX_EXTRA_RO_PATHS", "/opt/a:/opt/b"},
                {"PYSANDBOX_MIN_ISOLATION", "full"},
                {"PYSANDBOX_CPU_CORES", "0.5"}};
  const Config config = parse({}, env);
  EXPECT_EQ(config.listen_address, "::");
  EXPECT_EQ(config.max_body_bytes, 2u << 20);
  EXPECT_TRUE(config.executor.truncate_output);
  EXPECT_EQ(config.executor.extra_ro_paths, (std::vector<std::string>{"/opt/a", "/opt/b"}));
  EXPECT_EQ(config.executor.min_isolation, executor::Isolation::kFull);
  EXPECT_DOUBLE_EQ(config.executor.cpu_max_cores, 0.5);
}

TEST(Config, FlagOverridesEnvironment) {
  Env env;
  env.values = {{"PYSANDBOX_QUEUE_SIZE", "5"}, {"PYSANDBOX_TRUNCATE_OUTPUT", "true"}};
  const Config config = parse({"--queue-size=7", "--truncate-output=false"}, env);
  EXPECT_EQ(config.queue_size, 7u);
  EXPECT_FALSE(config.executor.truncate_output);
}

TEST(Config, PortVariableIsHonouredAfterThePysandboxOne) {
  Env env;
  env.values = {{"PORT", "8081"}};
  EXPECT_EQ(parse({}, env).port, 8081);
  env.values["PYSANDBOX_PORT"] = "8082";
  EXPECT_EQ(parse({}, env).port, 8082);
  EXPECT_EQ(parse({"--port", "8083"}, env).port, 8083);
  EXPECT_EQ(parse({"--port=0"}, env).port, 0);  // ephemeral
}

TEST(Config, EmptyEnvironmentValueMeansUnset) {
  Env env;
  env.values = {{"PORT", ""}, {"PYSANDBOX_ISOLATION", ""}};
  const Config config = parse({}, env);
  EXPECT_EQ(config.port, 8080);
  EXPECT_FALSE(config.executor.forced_isolation.has_value());
}

TEST(Config, DrainTimeoutFollowsMaxTimeoutUnlessGiven) {
  EXPECT_EQ(parse({"--max-timeout-ms=60000"}).drain_timeout_ms, 65000u);
  EXPECT_EQ(parse({"--max-timeout-ms=60000", "--drain-timeout-ms=1000"}).drain_timeout_ms, 1000u);
}

TEST(Config, HelpListsEveryFlagWithItsEnvironmentVariable) {
  EXPECT_TRUE(parse({"--help"}).help_requested);
  Env bad;
  bad.values = {{"PYSANDBOX_PORT", "not a port"}};
  EXPECT_TRUE(parse({"--help"}, bad).help_requested);  // help works even when config is broken
  const std::string text = usage();
  for (const char* needle : {"--listen",
                             "PYSANDBOX_LISTEN",
                             "--port",
                             "PORT",
                             "--max-body-bytes",
                             "--max-script-bytes",
                             "--default-timeout-ms",
                             "--max-timeout-ms",
                             "--default-memory-mb",
                             "--max-memory-mb",
                             "--max-concurrency",
                             "--queue-size",
                             "--queue-timeout-ms",
                             "--read-timeout-ms",
                             "--idle-timeout-ms",
                             "--write-timeout-ms",
                             "--drain-timeout-ms",
                             "--max-connections",
                             "--python",
                             "--data-dir",
                             "--seccomp-policy",
                             "--isolation",
                             "--min-isolation",
                             "--max-output-bytes",
                             "--truncate-output",
                             "--tmpfs-bytes",
                             "--pids-max",
                             "--nofile-max",
                             "--fsize-max-bytes",
                             "--cpu-cores",
                             "--uid-base",
                             "--extra-ro-paths",
                             "PYSANDBOX_EXTRA_RO_PATHS",
                             "--rlimit-scratch-dir",
                             "PYSANDBOX_RLIMIT_SCRATCH_DIR",
                             "--rlimit-namespaces",
                             "PYSANDBOX_RLIMIT_NAMESPACES",
                             "default: '127.0.0.1'",
                             "default: '1M'"}) {
    EXPECT_NE(text.find(needle), std::string::npos) << needle;
  }
}

TEST(Config, BadValuesAreRejectedNamingTheFlag) {
  const Env none;
  expect_rejected({"--port=70000"}, none, "--port");
  expect_rejected({"--port=-1"}, none, "--port");
  expect_rejected({"--port=80x"}, none, "--port");
  expect_rejected({"--listen=localhost"}, none, "--listen");
  expect_rejected({"--max-body-bytes=0"}, none, "--max-body-bytes");
  expect_rejected({"--max-body-bytes=5X"}, none, "--max-body-bytes");
  expect_rejected({"--max-timeout-ms=0"}, none, "--max-timeout-ms");
  expect_rejected({"--default-memory-mb=8"}, none, "--default-memory-mb");
  expect_rejected({"--max-concurrency=0"}, none, "--max-concurrency");
  expect_rejected({"--isolation=chroot"}, none, "--isolation");
  expect_rejected({"--truncate-output=maybe"}, none, "--truncate-output");
  expect_rejected({"--cpu-cores=abc"}, none, "--cpu-cores");
  expect_rejected({"--extra-ro-paths=relative/path"}, none, "--extra-ro-paths");
  expect_rejected({"--python=python3"}, none, "--python");
  expect_rejected({"--rlimit-scratch-dir=scratch"}, none, "--rlimit-scratch-dir");
  expect_rejected({"--rlimit-namespaces=sometimes"}, none, "--rlimit-namespaces");
  Env env;
  env.values = {{"PYSANDBOX_QUEUE_TIMEOUT_MS", "soon"}};
  expect_rejected({}, env, "PYSANDBOX_QUEUE_TIMEOUT_MS");
  env.values = {{"PORT", "http"}};
  expect_rejected({}, env, "PORT");
}

TEST(Config, RlimitModeSettingsAreFlagsAndVariables) {
  EXPECT_TRUE(parse({}).executor.rlimit_namespaces);
  EXPECT_EQ(parse({}).executor.rlimit_scratch_dir, "");
  EXPECT_FALSE(parse({"--rlimit-namespaces=off"}).executor.rlimit_namespaces);
  Env env;
  env.values = {{"PYSANDBOX_RLIMIT_NAMESPACES", "0"},
                {"PYSANDBOX_RLIMIT_SCRATCH_DIR", "/var/lib/pysandbox"}};
  const Config config = parse({}, env);
  EXPECT_FALSE(config.executor.rlimit_namespaces);
  EXPECT_EQ(config.executor.rlimit_scratch_dir, "/var/lib/pysandbox");
}

TEST(Config, UnknownVariablesAreNamed) {
  struct Case {
    const char* entry;
    bool reported;
  };
  const Case cases[] = {
      {"PYSANDBOX_PORT=8080", false},
      {"PYSANDBOX_RLIMIT_NAMESPACES=0", false},
      {"PYSANDBOX_MAX_MEMORY=512", true},  // the setting is PYSANDBOX_MAX_MEMORY_MB
      {"PYSANDBOX_POOLSIZE=2", true},
      {"PYSANDBOX_=x", true},
      {"PYSANDBOX_NO_VALUE", true},
      {"PYSANDBOX_TEST_ZYGOTE_FAULT_EVERY=3", false},
      {"PYSANDBOX_E2E_ARGS=--pool off", false},
      {"PORT=8080", false},
      {"HOME=/root", false},
      {"pysandbox_port=1", false},
  };
  for (const auto& c : cases) {
    const char* environment[] = {c.entry};
    const auto unknown = unknown_variables(environment);
    const std::string_view entry(c.entry);
    const std::string name(entry.substr(0, entry.find('=')));
    if (c.reported) {
      ASSERT_EQ(unknown.size(), 1u) << c.entry;
      EXPECT_EQ(unknown.front(), name);
    } else {
      EXPECT_TRUE(unknown.empty()) << c.entry;
    }
  }
}

TEST(Config, CrossFieldRules) {
  const Env none;
  expect_rejected({"--default-timeout-ms=40000"}, none, "--max-timeout-ms");
  expect_rejected({"--default-memory-mb=4096"}, none, "--max-memory-mb");
  expect_rejected({"--max-script-bytes=2M"}, none, "--max-body-bytes");
  expect_rejected({"--isolation=rlimit", "--min-isolation=full"}, none, "--min-isolation");
}

TEST(Config, MalformedCommandLines) {
  const Env none;
  expect_rejected({"--no-such-flag=1"}, none, "unknown flag --no-such-flag");
  expect_rejected({"serve"}, none, "unexpected argument 'serve'");
  expect_rejected({"--port"}, none, "--port needs a value");
}

}  // namespace
}  // namespace pysandbox::beast_server
