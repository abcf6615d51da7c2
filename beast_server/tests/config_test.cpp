#include "beast_server/config.hpp"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "beast_server/execute_request.hpp"

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

TEST(Config, HelpMarkdownIsAHelpMode) {
  EXPECT_FALSE(parse({"--help"}).markdown_help_requested);
  const Config config = parse({"--help-markdown"});
  EXPECT_TRUE(config.help_requested);
  EXPECT_TRUE(config.markdown_help_requested);
}

// One row of settings_markdown(): its flag (without "--"), variable and default cell.
struct Row {
  std::string flag;
  std::string env;
  std::string value;
};

std::vector<Row> markdown_rows(const std::string& table) {
  std::vector<Row> rows;
  std::istringstream in(table);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("| `--")) continue;
    std::vector<std::string> cells;
    std::size_t start = 1;
    for (std::size_t i = 1; i < line.size(); ++i) {
      if (line[i] == '|' && line[i - 1] != '\\') {
        std::string cell = line.substr(start, i - start);
        cell = cell.substr(1, cell.size() - 2);  // the padding spaces
        cells.push_back(cell);
        start = i + 1;
      }
    }
    EXPECT_EQ(cells.size(), 5u) << line;
    if (cells.size() != 5) continue;
    const auto unquote = [](const std::string& cell) {
      return cell.size() >= 2 && cell.front() == '`' && cell.back() == '`'
                 ? cell.substr(1, cell.size() - 2)
                 : cell;
    };
    rows.push_back({unquote(cells[0]).substr(2), unquote(cells[1]), cells[2]});
  }
  return rows;
}

TEST(Config, EverySettingIsAFlagWithItsVariableAndParsesItsOwnDefault) {
  const auto rows = markdown_rows(settings_markdown());
  ASSERT_GE(rows.size(), 30u);
  const std::string help = usage();
  for (const auto& row : rows) {
    SCOPED_TRACE(row.flag);
    std::string env = "PYSANDBOX_";
    for (const char ch : row.flag) {
      env += ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    EXPECT_EQ(row.env, env);
    const bool listed = help.find("  --" + row.flag + "=") != std::string::npos ||
                        help.find("  --" + row.flag + "[=") != std::string::npos;
    EXPECT_TRUE(listed) << "--help lacks --" << row.flag;
    EXPECT_NE(help.find("env: " + row.env + "\n"), std::string::npos);
    EXPECT_TRUE(unknown_variables(std::vector<const char*>{row.env.c_str()}).empty());
    // The default the table states is one the flag accepts, and (for the limits) the one a bare
    // start gets.
    if (row.value.size() >= 2 && row.value.front() == '`') {
      const std::string value = row.value.substr(1, row.value.size() - 2);
      const std::string flag = "--" + row.flag + "=" + value;
      Config given;
      EXPECT_NO_THROW(given = parse({flag.c_str()}));
      EXPECT_EQ(boost::json::serialize(limits_json(given)),
                boost::json::serialize(limits_json(parse({}))));
    }
  }
}

// README.md's Configuration table is settings_markdown(), pasted: an edited default, flag or help
// text fails here until `pysandboxd --help-markdown` is pasted again between the markers.
TEST(Config, ReadmeTableIsTheSettingsTable) {
  std::ifstream in(PYSANDBOX_SOURCE_DIR "/README.md");
  ASSERT_TRUE(in) << "README.md not found";
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string readme = buffer.str();
  const std::string begin = "<!-- settings-table: begin (pysandboxd --help-markdown) -->\n";
  const std::string end = "<!-- settings-table: end -->";
  const auto from = readme.find(begin);
  const auto to = readme.find(end);
  ASSERT_NE(from, std::string::npos) << begin;
  ASSERT_NE(to, std::string::npos) << end;
  ASSERT_LT(from, to);
  EXPECT_EQ(readme.substr(from + begin.size(), to - from - begin.size()), settings_markdown());
}

// Describe, not this machine's value: max-concurrency and drain-timeout-ms follow the machine
// and max-timeout-ms.
TEST(Config, MachineDependentDefaultsAreDescribed) {
  std::map<std::string, std::string> value;
  for (const auto& row : markdown_rows(settings_markdown())) value[row.flag] = row.value;
  EXPECT_EQ(value["max-concurrency"], "number of CPUs");
  EXPECT_EQ(value["drain-timeout-ms"], "max-timeout-ms + " + std::to_string(kDrainMarginMs));
  EXPECT_EQ(value["max-timeout-ms"], "`" + std::to_string(executor::kDefaultMaxTimeoutMs) + "`");
  EXPECT_EQ(value["isolation"], "(empty)");
}

// The startup log line's "limits" object, byte for byte.
TEST(Config, LimitsJsonKeepsItsWireFormat) {
  Config config;
  config.max_concurrency = 3;
  EXPECT_EQ(boost::json::serialize(limits_json(config)),
            R"({"max_body_bytes":1048576,"max_script_bytes":262144,"default_timeout_ms":5000,)"
            R"("max_timeout_ms":30000,"default_memory_mb":256,"max_memory_mb":2048,)"
            R"("max_concurrency":3,"queue_size":64,"queue_timeout_ms":10000,)"
            R"("read_timeout_ms":10000,"idle_timeout_ms":30000,"write_timeout_ms":10000,)"
            R"("drain_timeout_ms":35000,"max_connections":1024,"response_memory_bytes":67108864,)"
            R"("max_output_bytes":1048576,"truncate_output":false})");
  config.executor.truncate_output = true;
  config.max_body_bytes = 7;
  const auto limits = limits_json(config);
  EXPECT_TRUE(limits.at("truncate_output").as_bool());
  EXPECT_EQ(limits.at("max_body_bytes").to_number<std::uint64_t>(), 7u);
}

// RequestLimits and ExecuteRequest take their defaults from where Config does.
TEST(Config, RequestDefaultsAreConfigDefaults) {
  const Config config = parse({});
  const RequestLimits from_config = request_limits(config);
  const RequestLimits standalone;
  EXPECT_EQ(standalone.max_script_bytes, from_config.max_script_bytes);
  EXPECT_EQ(standalone.default_timeout_ms, from_config.default_timeout_ms);
  EXPECT_EQ(standalone.max_timeout_ms, from_config.max_timeout_ms);
  EXPECT_EQ(standalone.default_memory_mb, from_config.default_memory_mb);
  EXPECT_EQ(standalone.max_memory_mb, from_config.max_memory_mb);
  const executor::ExecuteRequest request;
  EXPECT_EQ(request.timeout, std::chrono::milliseconds(config.default_timeout_ms));
  EXPECT_EQ(request.memory_bytes, std::uint64_t{config.default_memory_mb} << 20);
  EXPECT_EQ(Config{}.drain_timeout_ms, config.drain_timeout_ms);
}

}  // namespace
}  // namespace pysandbox::beast_server
