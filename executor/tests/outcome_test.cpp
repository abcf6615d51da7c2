// classify(): which cause an outcome names when several hold at once (the first in the
// contract's order wins), as a table.
#include "executor/outcome.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json/serialize.hpp>

#include "executor/cancel.hpp"
#include "executor/run_io.hpp"

namespace pysandbox::executor {
namespace {

using namespace std::chrono_literals;

constexpr const char* kOk = R"({"status":"ok","result":[1,2]})";
constexpr const char* kRaised =
    R"({"status":"error","error_type":"exception","message":"main() raised E","trace":"T"})";

struct Facts {
  const char* name;
  bool setup_failed = false;
  bool wait_failed = false;
  bool cancelled = false;
  bool timed_out = false;
  bool output_limited = false;
  bool result_over_cap = false;
  const char* channel = "";
  std::uint64_t oom_kills = 0;  // with a cgroup
  bool cgroup = false;
  int signal = 0;
  int code = 0;
  Status want;
  const char* message_has = "";
};

Supervised make(const Facts& f) {
  SuperviseLimits limits;
  limits.max_output_bytes = 128;
  Supervised s(limits);
  s.started = Clock::now();
  s.executing = s.started + 2ms;
  s.exited = s.started + 10ms;
  s.done = s.started + 11ms;
  if (f.wait_failed) {
    s.exit = std::make_error_code(std::errc::no_child_process);
  } else {
    base::sys::ExitStatus st;
    st.exited = true;
    st.signal = f.signal;
    st.code = f.code;
    st.usage.ru_utime.tv_usec = 3000;
    st.usage.ru_maxrss = 2048;
    s.exit = st;
  }
  s.cancelled = f.cancelled;
  s.timed_out = f.timed_out;
  s.output_limited = f.output_limited || f.result_over_cap;
  s.result.append(f.channel);
  if (f.result_over_cap) s.result.append(std::string(200, 'x'));
  s.out.append("out\n");
  if (f.cgroup) {
    cgroups::LeafStats st;
    st.oom_kill = f.oom_kills;
    st.cpu_usage_usec = 7000;
    st.memory_peak_bytes = 5u << 20;
    s.cgroup = st;
  }
  return s;
}

TEST(Classify, TheFirstCauseWins) {
  const Facts table[] = {
      {.name = "ok", .channel = kOk, .want = Status::kOk},
      {.name = "the script's own error",
       .channel = kRaised,
       .want = Status::kException,
       .message_has = "raised E"},
      {.name = "setup failure beats everything",
       .setup_failed = true,
       .cancelled = true,
       .timed_out = true,
       .channel = kOk,
       .want = Status::kInternal},
      {.name = "a failed wait is internal", .wait_failed = true, .want = Status::kInternal},
      {.name = "cancel beats the deadline",
       .cancelled = true,
       .timed_out = true,
       .signal = SIGKILL,
       .want = Status::kCancelled},
      {.name = "the deadline beats the kill it caused",
       .timed_out = true,
       .signal = SIGKILL,
       .want = Status::kTimeout,
       .message_has = "5000 ms"},
      {.name = "RLIMIT_CPU's SIGXCPU is a timeout", .signal = SIGXCPU, .want = Status::kTimeout},
      {.name = "output cap beats a result",
       .output_limited = true,
       .channel = kOk,
       .signal = SIGKILL,
       .want = Status::kOutputLimit,
       .message_has = "stdout or stderr"},
      {.name = "result over the cap",
       .result_over_cap = true,
       .signal = SIGKILL,
       .want = Status::kOutputLimit,
       .message_has = "result is larger than 128"},
      {.name = "a decoded result beats an OOM kill of a straggler",
       .channel = kOk,
       .oom_kills = 1,
       .cgroup = true,
       .want = Status::kOk},
      {.name = "OOM kill",
       .oom_kills = 1,
       .cgroup = true,
       .signal = SIGKILL,
       .want = Status::kMemoryLimit,
       .message_has = "256 MiB"},
      {.name = "a partial result of a killed run is a kill",
       .channel = R"({"status":"o)",
       .signal = SIGSEGV,
       .want = Status::kKilled,
       .message_has = "SIGSEGV"},
      {.name = "garbage on the channel",
       .channel = R"({"status":"ok","result":1e400})",
       .want = Status::kNotJsonSerializable,
       .message_has = "cannot represent"},
      {.name = "exit before main() returned",
       .code = 3,
       .want = Status::kException,
       .message_has = "status 3"},
  };
  for (const auto& f : table) {
    const Supervised s = make(f);
    ClassifyInput in;
    in.setup_failure = f.setup_failed ? "mount #3: Permission denied" : "";
    in.timeout = 5000ms;
    in.memory_bytes = 256ull << 20;
    in.max_output_bytes = 128;
    const RunOutcome o = classify(s, in);
    EXPECT_EQ(o.status, f.want) << f.name << ": got " << error_type(o.status) << " " << o.message;
    EXPECT_NE(o.message.find(f.message_has), std::string::npos) << f.name << ": " << o.message;
    if (f.want == Status::kInternal) {
      EXPECT_FALSE(o.ran) << f.name;
      EXPECT_FALSE(o.internal_detail.empty()) << f.name;
    } else {
      EXPECT_TRUE(o.ran) << f.name;
      EXPECT_EQ(o.stdout_data, "out\n") << f.name;
    }
  }
}

TEST(Classify, UsageComesFromTheCgroupWhenThereIsOne) {
  Facts f{.name = "ok", .channel = kOk, .want = Status::kOk};
  ClassifyInput in;
  in.max_output_bytes = 128;
  auto plain = classify(make(f), in);
  EXPECT_DOUBLE_EQ(plain.usage.cpu_ms, 3.0);
  EXPECT_EQ(plain.usage.peak_memory_bytes, 2048u * 1024);
  EXPECT_DOUBLE_EQ(plain.usage.wall_ms, 10.0);
  f.cgroup = true;
  auto leaf = classify(make(f), in);
  EXPECT_DOUBLE_EQ(leaf.usage.cpu_ms, 7.0);
  EXPECT_EQ(leaf.usage.peak_memory_bytes, 5u << 20);
  EXPECT_EQ(boost::json::serialize(leaf.result), "[1,2]");
}

TEST(ClassifyRun, TakesTheLimitsFromTheRequestAndTheSettingsAndNamesTheMode) {
  ExecuteRequest request;
  request.timeout = 1500ms;
  request.memory_bytes = 64ull << 20;
  Settings settings;
  settings.max_output_bytes = 128;
  Facts timed_out{"timeout"};
  timed_out.timed_out = true;
  RunOutcome o = classify_run(make(timed_out), request, settings, Isolation::kFull, "");
  EXPECT_EQ(o.status, Status::kTimeout);
  EXPECT_EQ(o.isolation, Isolation::kFull);
  EXPECT_NE(o.message.find("1500 ms"), std::string::npos) << o.message;

  Facts over{"result over the cap"};
  over.result_over_cap = true;
  o = classify_run(make(over), request, settings, Isolation::kRlimit, "");
  EXPECT_NE(o.message.find("larger than 128 bytes"), std::string::npos) << o.message;

  o = classify_run(make(Facts{"setup"}), request, settings, Isolation::kNamespaces, "mount: EPERM");
  EXPECT_EQ(o.status, Status::kInternal);
  EXPECT_EQ(o.isolation, Isolation::kNamespaces);
  EXPECT_NE(o.internal_detail.find("mount: EPERM"), std::string::npos) << o.internal_detail;
}

TEST(CancelledBeforeStart, OnlyARequestWhoseCallerGaveUp) {
  ExecuteRequest request;
  EXPECT_FALSE(cancelled_before_start(request, Isolation::kRlimit));
  request.cancel = std::make_shared<CancelSignal>();
  EXPECT_FALSE(cancelled_before_start(request, Isolation::kRlimit));
  request.cancel->cancel();
  const auto gone = cancelled_before_start(request, Isolation::kFull);
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, Status::kCancelled);
  EXPECT_EQ(gone->isolation, Isolation::kFull);
  EXPECT_FALSE(gone->ran);
}

TEST(RequestRlimits, FollowTheRequestAndTheSettings) {
  ExecuteRequest request;
  request.timeout = 1500ms;
  request.memory_bytes = 64ull << 20;
  Settings settings;
  settings.pids_max = 7;
  settings.nofile_max = 9;
  settings.fsize_max_bytes = 11;
  const jail::Rlimits l = request_rlimits(request, settings);
  EXPECT_EQ(l.address_space, 64ull << 20);
  EXPECT_EQ(l.cpu_seconds, 3u);  // the deadline rounded up, plus one second
  EXPECT_EQ(l.processes, 7u);
  EXPECT_EQ(l.open_files, 9u);
  EXPECT_EQ(l.file_size, 11u);
  request.timeout = 2000ms;
  EXPECT_EQ(request_rlimits(request, settings).cpu_seconds, 3u);
}

}  // namespace
}  // namespace pysandbox::executor
