// One contract, every start path: a script cannot tell a warm start (forked from a zygote) from a
// cold one (a fresh interpreter), nor, beyond what the mode itself changes, an rlimit sandbox
// from a namespace one. Every case runs on every path, with non-ASCII text in the script, its
// stdin, stdout, stderr, result, exception messages and file names.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>

#include "executor/cancel.hpp"
#include "executor/factory.hpp"

namespace pysandbox::executor {
namespace {

using namespace std::chrono_literals;

enum class Path { kCold, kWarm, kRlimit, kRlimitPlain };

const char* name_of(Path p) {
  switch (p) {
    case Path::kCold:
      return "cold";
    case Path::kWarm:
      return "warm";
    case Path::kRlimit:
      return "rlimit";
    case Path::kRlimitPlain:
      return "rlimit_plain";
  }
  return "?";
}

// One executor per path for the whole suite (a zygote takes a second to import pandas), driven
// by one io_context that runs while a request is in flight.
class PathRunner {
 public:
  explicit PathRunner(Path path) : path_(path) {
    Settings s;
    s.data_dir = PYSANDBOX_DATA_DIR;
    s.max_output_bytes = 64 * 1024;
    // Each path's executor has uids of its own: an rlimit executor's startup sweep kills every
    // process of its range, which must not be another executor's sandboxes made ahead.
    s.uid_base = 2000600 + 20 * static_cast<uid_t>(path);
    s.pool = path == Path::kWarm;
    if (path == Path::kCold || path == Path::kWarm) s.forced_isolation = Isolation::kNamespaces;
    if (path == Path::kRlimit || path == Path::kRlimitPlain) {
      s.forced_isolation = Isolation::kRlimit;
      s.rlimit_namespaces = path == Path::kRlimit;
    }
    executor_ = make_executor(io_.get_executor(), s);
    if (path == Path::kWarm) {
      // Warm means every zygote is up; bounded (pandas imports slowly in an emulated VM).
      const auto until = std::chrono::steady_clock::now() + 120s;
      while (!executor_->ready() && std::chrono::steady_clock::now() < until) {
        io_.restart();
        io_.run_for(20ms);
      }
      ready_ = executor_->ready();
    }
  }
  ~PathRunner() {
    executor_->shutdown();
    executor_.reset();
  }

  bool ready() const { return ready_; }

  // `cancel_after`: the run's CancelSignal fires that long after the run starts.
  RunOutcome run(ExecuteRequest req, std::chrono::milliseconds cancel_after = 0ms) {
    boost::asio::steady_timer cancel_timer(io_, cancel_after);
    if (cancel_after > 0ms) {
      req.cancel = std::make_shared<CancelSignal>();
      cancel_timer.async_wait([signal = req.cancel](boost::system::error_code ec) {
        if (!ec) signal->cancel();
      });
    }
    std::exception_ptr error;
    RunOutcome outcome;
    bool done = false;
    io_.restart();  // a loop that ran out of work stays stopped until restarted
    boost::asio::co_spawn(io_, executor_->run(std::move(req)),
                          [&](std::exception_ptr e, RunOutcome o) {
                            error = e;
                            outcome = std::move(o);
                            done = true;
                          });
    // The pool's supervisors keep work on the loop: run until this request is done.
    while (!done) io_.run_one();
    cancel_timer.cancel();
    if (error) std::rethrow_exception(error);
    return outcome;
  }

  Path path() const { return path_; }

 private:
  Path path_;
  boost::asio::io_context io_;
  std::unique_ptr<Executor> executor_;
  bool ready_ = true;
};

class ContractTest : public ::testing::TestWithParam<Path> {
 protected:
  static void TearDownTestSuite() { runners_.clear(); }

  static PathRunner& runner(Path p) {
    auto& r = runners_[p];
    if (!r) r = std::make_unique<PathRunner>(p);
    return *r;
  }

  void SetUp() override {
    if (GetParam() == Path::kWarm) {
      ASSERT_TRUE(runner(Path::kWarm).ready()) << "the zygotes did not come up";
    }
  }

  static RunOutcome run(Path p, std::string script, std::string stdin_data = {},
                        std::chrono::milliseconds timeout = 10s) {
    ExecuteRequest req;
    req.request_id = "contract";
    req.script = std::move(script);
    req.stdin_data = std::move(stdin_data);
    req.timeout = timeout;
    req.memory_bytes = 512ull << 20;
    RunOutcome o = runner(p).run(std::move(req));
    if (p == Path::kWarm) {
      EXPECT_EQ(o.start, StartPath::kWarm) << "a warm-path case ran cold: " << o.internal_detail;
    } else {
      EXPECT_EQ(o.start, StartPath::kCold);
    }
    return o;
  }
  RunOutcome run(std::string script, std::string stdin_data = {},
                 std::chrono::milliseconds timeout = 10s) {
    return run(GetParam(), std::move(script), std::move(stdin_data), timeout);
  }

  static bool namespaces(Path p) { return p == Path::kCold || p == Path::kWarm; }

  static std::map<Path, std::unique_ptr<PathRunner>> runners_;
};
std::map<Path, std::unique_ptr<PathRunner>> ContractTest::runners_;

// What a script can learn about the interpreter it runs in.
constexpr const char* kIntrospect = R"(
import gc, locale, os, signal, sys, threading
def main():
    facts = {
        "argv": sys.argv,
        "executable": sys.executable,
        "path": sys.path,
        "flags": [sys.flags.isolated, sys.flags.ignore_environment, sys.flags.no_user_site,
                  sys.flags.dont_write_bytecode, sys.flags.utf8_mode, sys.flags.safe_path,
                  sys.flags.optimize, sys.flags.hash_randomization],
        "encodings": [sys.getfilesystemencoding(), sys.getfilesystemencodeerrors(),
                      sys.stdin.encoding, sys.stdin.errors, sys.stdout.encoding,
                      sys.stdout.errors, sys.stderr.encoding, sys.stderr.errors,
                      locale.getpreferredencoding(False), locale.setlocale(locale.LC_CTYPE)],
        "buffering": [sys.stdout.line_buffering, sys.stdout.write_through],
        "std_fds": [sys.stdin.fileno(), sys.stdout.fileno(), sys.stderr.fileno()],
        "signals": [str(signal.getsignal(s)) for s in
                    (signal.SIGINT, signal.SIGPIPE, signal.SIGTERM, signal.SIGCHLD)],
        "env": sorted(os.environ.items()),
        "gc": [gc.isenabled(), gc.get_threshold()],
        "threads": threading.active_count(),
        "main_module": sys.modules["__main__"].__name__,
        "recursion_limit": sys.getrecursionlimit(),
        "umask": os.umask(0o077),
    }
    ns = {}
    try:
        ns["exe"] = os.readlink("/proc/self/exe")
    except OSError as e:
        ns["exe"] = "error: " + e.strerror
    ns["cwd"] = os.getcwd()
    ns["fds"] = sorted(os.listdir("/proc/self/fd"))
    ns["uid"] = [os.getuid(), os.geteuid(), os.getgid()]
    ns["hostname"] = os.uname().nodename
    with open("/proc/1/cmdline", "rb") as f:
        ns["init"] = f.read().decode()
    ns["processes"] = sorted(n for n in os.listdir("/proc") if n.isdigit())
    ns["pid"] = [os.getpid(), os.getppid()]
    ns["root"] = sorted(os.listdir("/"))
    with open("/etc/ld.so.cache", "rb") as f:
        ns["ld_so_cache"] = len(f.read())
    with open("/proc/self/status") as f:
        ns["caps"] = [l.split()[1] for l in f if l.startswith("Cap")]
    return {"facts": facts, "ns": ns}
)";

TEST_P(ContractTest, TheInterpreterLooksTheSameOnEveryPath) {
  const auto o = run(kIntrospect);
  ASSERT_EQ(o.status, Status::kOk) << o.message << o.stderr_data << o.internal_detail;
  // The cold namespace path is the reference.
  const auto ref = run(Path::kCold, kIntrospect);
  ASSERT_EQ(ref.status, Status::kOk) << ref.message << ref.stderr_data;
  const auto& got = o.result.as_object();
  const auto& want = ref.result.as_object();
  // Without a mount namespace of its own, an rlimit run's home and temporary directory are its
  // private scratch directory instead of /tmp: the only values allowed to differ.
  const auto scrub = [&](const boost::json::value& facts) {
    boost::json::object copy = facts.as_object();
    if (GetParam() != Path::kRlimitPlain) return copy;
    for (auto& kv : copy.at("env").as_array()) {
      auto& pair = kv.as_array();
      if (pair[0] == "HOME" || pair[0] == "TMPDIR" || pair[0] == "MPLCONFIGDIR") pair[1] = "";
    }
    return copy;
  };
  const auto got_facts = scrub(got.at("facts"));
  for (const auto& [key, value] : scrub(want.at("facts"))) {
    EXPECT_EQ(boost::json::serialize(got_facts.at(key)), boost::json::serialize(value))
        << name_of(GetParam()) << ": " << key;
  }
  if (namespaces(GetParam())) {
    for (const auto& [key, value] : want.at("ns").as_object()) {
      EXPECT_EQ(boost::json::serialize(got.at("ns").at(key)), boost::json::serialize(value))
          << name_of(GetParam()) << ": " << key;
    }
  }
  // And the reference itself is what a Python user expects.
  const auto& enc = want.at("facts").at("encodings").as_array();
  EXPECT_EQ(enc[0], "utf-8");
  EXPECT_EQ(enc[4], "utf-8");
  EXPECT_EQ(want.at("ns").at("exe"), "/usr/bin/python3.11");
}

TEST_P(ContractTest, NonAsciiTextGoesEverywhere) {
  const auto o = run(R"(
# -*- coding: utf-8 -*- Grüße
import os, sys
def main():
    print("héllo wörld ✓ 日本語")
    print("stderr: ошибка ✗", file=sys.stderr)
    data = sys.stdin.read()
    name = "/tmp/файл-✓ 名前.txt"
    with open(name, "w", encoding="utf-8") as f:
        f.write(data)
    with open(name, encoding="utf-8") as f:
        back = f.read()
    return {"stdin": data, "back": back, "files": sorted(os.listdir("/tmp")),
            "Ελληνικά": "κείμενο", "emoji": "🐍"}
)",
                     "ünïcødé ✓ 中文\n");
  ASSERT_EQ(o.status, Status::kOk) << o.message << o.stderr_data << o.internal_detail;
  EXPECT_EQ(o.stdout_data, "héllo wörld ✓ 日本語\n");
  EXPECT_EQ(o.stderr_data, "stderr: ошибка ✗\n");
  const auto& r = o.result.as_object();
  EXPECT_EQ(r.at("stdin"), "ünïcødé ✓ 中文\n");
  EXPECT_EQ(r.at("back"), "ünïcødé ✓ 中文\n");
  EXPECT_EQ(r.at("Ελληνικά"), "κείμενο");
  EXPECT_EQ(r.at("emoji"), "🐍");
  bool found = false;
  for (const auto& f : r.at("files").as_array()) found |= f == "файл-✓ 名前.txt";
  EXPECT_TRUE(found) << boost::json::serialize(r.at("files"));
}

TEST_P(ContractTest, ExceptionsKeepTheirNonAsciiText) {
  const auto o = run("def main():\n    raise ValueError('ошибка ✗ 失敗')\n");
  ASSERT_EQ(o.status, Status::kException) << o.message << o.stderr_data;
  EXPECT_EQ(o.message, "main() raised ValueError: ошибка ✗ 失敗");
  EXPECT_NE(o.trace.find("ошибка ✗ 失敗"), std::string::npos) << o.trace;
  EXPECT_NE(o.trace.find("line 2, in main"), std::string::npos) << o.trace;
}

TEST_P(ContractTest, SyntaxErrorsNameTheLine) {
  const auto o = run("def main():\n    return 'ü' +\n");
  ASSERT_EQ(o.status, Status::kSyntaxError) << o.message;
  EXPECT_NE(o.message.find("line 2"), std::string::npos) << o.message;
}

TEST_P(ContractTest, ScriptErrorsAreTyped) {
  EXPECT_EQ(run("x = 1\n").status, Status::kNoMain);
  EXPECT_EQ(run("main = 'ü'\n").status, Status::kMainNotCallable);
  const auto o = run("import numpy as np\ndef main():\n    return np.float64(1.5)\n");
  EXPECT_EQ(o.status, Status::kNotJsonSerializable) << o.message;
  EXPECT_NE(o.message.find("numpy.float64"), std::string::npos) << o.message;
  EXPECT_EQ(run("def main():\n    return float('inf')\n").status, Status::kNotJsonSerializable);
  // The trace shows the script's frames only, not the runner's.
  const auto exc = run("def main():\n    raise ValueError('boom')\n");
  EXPECT_EQ(exc.status, Status::kException);
  EXPECT_NE(exc.trace.find("ValueError: boom"), std::string::npos) << exc.trace;
  EXPECT_EQ(exc.trace.find("runner"), std::string::npos) << exc.trace;
  const auto early = run("import os\ndef main():\n    os._exit(7)\n");
  EXPECT_EQ(early.status, Status::kException);
  EXPECT_NE(early.message.find("status 7"), std::string::npos) << early.message;
}

TEST_P(ContractTest, PandasAndNumpyWork) {
  const auto o = run(R"(
import numpy as np, pandas as pd
def main():
    df = pd.DataFrame({"städte": ["Zürich", "Köln", "Zürich"], "n": [1, 2, 3]})
    sums = {k: int(v) for k, v in df.groupby("städte")["n"].sum().items()}
    return {"sums": sums, "dot": float(np.arange(4) @ np.arange(4))}
)");
  ASSERT_EQ(o.status, Status::kOk) << o.message << o.stderr_data;
  EXPECT_EQ(boost::json::serialize(o.result), R"({"sums":{"Köln":2,"Zürich":4},"dot":1.4E1})");
}

TEST_P(ContractTest, TheDeadlineHolds) {
  const auto o = run("def main():\n    while True:\n        pass\n", {}, 800ms);
  EXPECT_EQ(o.status, Status::kTimeout) << o.message;
  EXPECT_LT(o.usage.wall_ms, 5000);
}

TEST_P(ContractTest, ForkedProcessesAreCountedAndDoNotAnswer) {
  // Three processes burn 0.3 s of their own CPU time each (not wall time: the machine may be
  // busy): the script, a child it never reaps, and an orphan whose parent is gone. Only the
  // script reports; every process's CPU counts.
  const auto o = run(R"(
import os, time
def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
def main():
    done_r, done_w = os.pipe()
    if os.fork() == 0:
        burn(0.3)
        os.write(done_w, b"c")
        return "the child's answer"
    if os.fork() == 0:
        if os.fork() == 0:
            burn(0.3)
            os.write(done_w, b"o")
            os._exit(0)
        os._exit(0)
    burn(0.3)
    got = b""
    while len(got) < 2:
        got += os.read(done_r, 2)
    return "parent"
)");
  ASSERT_EQ(o.status, Status::kOk) << o.message << o.stderr_data;
  EXPECT_EQ(o.result, "parent");
  EXPECT_GT(o.usage.cpu_ms, 850) << "cpu_ms counts only part of the sandbox";
}

TEST_P(ContractTest, ACancelledRunEndsAtOnce) {
  ExecuteRequest req;
  req.script = "import os\ndef main():\n    os.fork()\n    while True:\n        pass\n";
  req.timeout = 20s;
  const auto started = std::chrono::steady_clock::now();
  const auto o = runner(GetParam()).run(std::move(req), 300ms);
  EXPECT_EQ(o.status, Status::kCancelled) << o.message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  // Already cancelled before it starts: nothing is spawned.
  ExecuteRequest early;
  early.script = "def main():\n    return 1\n";
  early.cancel = std::make_shared<CancelSignal>();
  early.cancel->cancel();
  EXPECT_EQ(runner(GetParam()).run(std::move(early)).status, Status::kCancelled);
}

INSTANTIATE_TEST_SUITE_P(Paths, ContractTest,
                         ::testing::Values(Path::kCold, Path::kWarm, Path::kRlimit,
                                           Path::kRlimitPlain),
                         [](const auto& p) { return std::string(name_of(p.param)); });

}  // namespace
}  // namespace pysandbox::executor
