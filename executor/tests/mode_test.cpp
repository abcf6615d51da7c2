// The isolation-mode decision, branch by branch, from made-up probe results: no root, no
// namespaces, no cgroup needed.
#include "executor/mode.hpp"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <string>
#include <vector>

namespace pysandbox::executor {
namespace {

const std::vector<std::string> kAllFacilities = {
    "clone3", "pidfd",    "user_ns",       "net_ns",      "ipc_ns",     "uts_ns", "cgroup_ns",
    "pid_ns", "mount_ns", "mount_private", "bind_rec_ro", "pivot_root", "chroot", "seccomp"};

// A real Linux kernel, root, a delegated cgroup v2: everything works.
HostFacts full_host() {
  HostFacts f;
  for (const auto& name : kAllFacilities) f.facilities.items.push_back({name, true, 0, ""});
  f.namespace_jail = probe::TrialRun{true, ""};
  f.cgroup.emplace();
  f.cgroup->v2_usable = true;
  f.cgroup->delegation_error = "";
  f.cgroup->delegation = {{"cgroup", "delegated"}, {"cgroup_root", "/sys/fs/cgroup/x"}};
  return f;
}

void fail(HostFacts& f, const std::string& name, const std::string& detail) {
  for (auto& c : f.facilities.items) {
    if (c.name == name) c = {name, false, 1, detail};
  }
}

// As the factory gathers them: nothing is probed that the settings rule out.
HostFacts as_gathered(HostFacts f, const Settings& s) {
  if (!wants_namespaces(s) || !namespace_trial_possible(f)) f.namespace_jail.reset();
  if (!wants_cgroup(s, namespace_verdict(f, s))) {
    f.cgroup.reset();
  } else if (f.cgroup && !(f.cgroup->v2_usable && namespace_verdict(f, s).ok)) {
    f.cgroup->delegation_error.reset();
  }
  return f;
}

Settings forced(Isolation mode) {
  Settings s;
  s.forced_isolation = mode;
  return s;
}

TEST(Mode, AFullHostGivesFull) {
  const ModeDecision d = decide_mode(full_host(), Settings{});
  EXPECT_EQ(d.mode, Isolation::kFull);
  EXPECT_FALSE(d.refusal) << *d.refusal;
  EXPECT_TRUE(d.namespaces.ok);
  EXPECT_TRUE(d.cgroup);
  EXPECT_EQ(d.cgroup_info.at("cgroup").as_string(), "delegated");
  EXPECT_TRUE(d.capabilities.at("cgroup_v2").as_bool());
  EXPECT_TRUE(d.capabilities.at("pivot_root").as_bool());
}

TEST(Mode, WithoutCgroupV2ItIsNamespacesAndSaysWhy) {
  HostFacts f = full_host();
  f.cgroup->v2_usable = false;
  f.cgroup->v2_reason = "no cgroup2 mount";
  const ModeDecision d = decide_mode(as_gathered(f, {}), Settings{});
  EXPECT_EQ(d.mode, Isolation::kNamespaces);
  EXPECT_FALSE(d.refusal);
  EXPECT_FALSE(d.cgroup);
  EXPECT_FALSE(d.capabilities.at("cgroup_v2").as_bool());
  EXPECT_EQ(boost::json::serialize(d.cgroup_info),
            R"j({"cgroup":"unavailable","reason":"no cgroup2 mount"})j");
}

TEST(Mode, AFailedDelegationIsNamespacesWithTheStepThatFailed) {
  HostFacts f = full_host();
  f.cgroup->delegation_error = "clone3(CLONE_INTO_CGROUP): Permission denied";
  const ModeDecision d = decide_mode(f, Settings{});
  EXPECT_EQ(d.mode, Isolation::kNamespaces);
  EXPECT_EQ(d.cgroup_info.at("reason").as_string(), "clone3(CLONE_INTO_CGROUP): Permission denied");
}

// Each facility the jail needs before it can even be tried: without it, rlimit mode, and the
// reason names it with the probe's detail.
TEST(Mode, EachMissingPrerequisiteGivesRlimitAndIsNamed) {
  for (const char* name : {"clone3", "pidfd", "user_ns"}) {
    HostFacts f = full_host();
    fail(f, name, std::string(name) + ": Operation not permitted");
    EXPECT_FALSE(namespace_trial_possible(f)) << name;
    const ModeDecision d = decide_mode(as_gathered(f, {}), Settings{});
    EXPECT_EQ(d.mode, Isolation::kRlimit) << name;
    EXPECT_FALSE(d.refusal) << name;
    EXPECT_EQ(d.namespaces.why,
              "missing: " + std::string(name) + " (" + name + ": Operation not permitted)")
        << name;
    EXPECT_EQ(d.cgroup_info.at("reason").as_string(), "the namespace sandbox does not work here")
        << name;
  }
}

// The other facilities only show when the trial run of the jail fails; the reason then lists
// every one the probe found missing.
TEST(Mode, EachOtherMissingFacilityIsListedWhenTheTrialFails) {
  for (const char* name : {"pid_ns", "mount_ns", "net_ns", "ipc_ns", "uts_ns", "cgroup_ns",
                           "mount_private", "bind_rec_ro", "pivot_root", "seccomp"}) {
    HostFacts f = full_host();
    fail(f, name, "it failed");
    EXPECT_TRUE(namespace_trial_possible(f)) << name;
    f.namespace_jail = probe::TrialRun{false, "setup step failed"};
    const ModeDecision d = decide_mode(as_gathered(f, {}), Settings{});
    EXPECT_EQ(d.mode, Isolation::kRlimit) << name;
    EXPECT_EQ(d.namespaces.why,
              "setup step failed; missing: " + std::string(name) + " (it failed)");
    EXPECT_FALSE(d.capabilities.at(name).as_bool()) << name;
  }
}

TEST(Mode, APolicyThatDoesNotCompileGivesRlimit) {
  HostFacts f = full_host();
  f.seccomp_compiled = false;
  f.seccomp_error = "unknown action";
  const ModeDecision d = decide_mode(as_gathered(f, {}), Settings{});
  EXPECT_EQ(d.mode, Isolation::kRlimit);
  EXPECT_EQ(d.namespaces.why, "the seccomp policy does not compile here: unknown action");
}

// gVisor: user namespaces and clone3 work, pivot_root does not; no cgroup v2 to delegate.
TEST(Mode, AGVisorLikeHostGivesRlimitAndNamesPivotRoot) {
  HostFacts f = full_host();
  fail(f, "pivot_root", "pivot_root: Operation not permitted");
  f.namespace_jail = probe::TrialRun{false, "pivot_root: Operation not permitted"};
  f.cgroup->v2_usable = false;
  f.cgroup->v2_reason = "not cgroup2";
  const ModeDecision d = decide_mode(as_gathered(f, {}), Settings{});
  EXPECT_EQ(d.mode, Isolation::kRlimit);
  EXPECT_FALSE(d.refusal);
  EXPECT_EQ(d.namespaces.why,
            "pivot_root: Operation not permitted; missing: pivot_root (pivot_root: Operation not "
            "permitted)");
  EXPECT_EQ(d.cgroup_info.at("reason").as_string(), "not cgroup2");
}

TEST(Mode, FacilitiesNeverProbedAreSaidToBe) {
  HostFacts f = full_host();
  f.facilities.items.clear();
  const ModeDecision d = decide_mode(as_gathered(f, {}), Settings{});
  EXPECT_EQ(d.mode, Isolation::kRlimit);
  EXPECT_EQ(d.namespaces.why.rfind("missing: clone3 (not probed), pidfd (not probed)", 0), 0u)
      << d.namespaces.why;
}

TEST(Mode, ForcedRlimitProbesNothingElse) {
  const Settings s = forced(Isolation::kRlimit);
  EXPECT_FALSE(wants_namespaces(s));
  EXPECT_FALSE(wants_cgroup(s, namespace_verdict(full_host(), s)));
  const ModeDecision d = decide_mode(as_gathered(full_host(), s), s);
  EXPECT_EQ(d.mode, Isolation::kRlimit);
  EXPECT_FALSE(d.refusal);
  EXPECT_EQ(d.namespaces.why, "");
  EXPECT_EQ(boost::json::serialize(d.cgroup_info), R"j({"cgroup":"none"})j");
}

TEST(Mode, ForcedNamespacesOnAFullHostLeavesTheCgroupAlone) {
  const Settings s = forced(Isolation::kNamespaces);
  EXPECT_FALSE(wants_cgroup(s, {true, ""}));
  const ModeDecision d = decide_mode(as_gathered(full_host(), s), s);
  EXPECT_EQ(d.mode, Isolation::kNamespaces);
  EXPECT_FALSE(d.refusal);
  EXPECT_FALSE(d.cgroup);
  EXPECT_EQ(boost::json::serialize(d.cgroup_info), R"j({"cgroup":"none"})j");
}

TEST(Mode, AForcedModeThatIsNotThereIsRefused) {
  HostFacts f = full_host();
  fail(f, "user_ns", "clone(CLONE_NEWUSER): Operation not permitted");
  for (auto mode : {Isolation::kNamespaces, Isolation::kFull}) {
    const Settings s = forced(mode);
    EXPECT_FALSE(wants_cgroup(s, namespace_verdict(f, s)));
    const ModeDecision d = decide_mode(as_gathered(f, s), s);
    ASSERT_TRUE(d.refusal);
    EXPECT_EQ(d.refusal->rfind("--isolation " + std::string(to_string(mode)) +
                                   " is not available here: missing: user_ns (clone(CLONE_NEWUSER)"
                                   ": Operation not permitted). How to get more: ",
                               0),
              0u)
        << *d.refusal;
  }
}

TEST(Mode, ForcedFullWithoutACgroupIsRefused) {
  HostFacts f = full_host();
  f.cgroup->v2_usable = false;
  f.cgroup->v2_reason = "read-only cgroupfs";
  const Settings s = forced(Isolation::kFull);
  const ModeDecision d = decide_mode(as_gathered(f, s), s);
  ASSERT_TRUE(d.refusal);
  EXPECT_EQ(d.refusal->rfind("--isolation full is not available: read-only cgroupfs. How", 0), 0u)
      << *d.refusal;
}

TEST(Mode, ForcedFullOnAFullHostIsFull) {
  const Settings s = forced(Isolation::kFull);
  const ModeDecision d = decide_mode(full_host(), s);
  EXPECT_EQ(d.mode, Isolation::kFull);
  EXPECT_FALSE(d.refusal);
}

TEST(Mode, TheFloorRefusesAWeakerMode) {
  HostFacts no_cgroup = full_host();
  no_cgroup.cgroup->v2_usable = false;
  no_cgroup.cgroup->v2_reason = "no cgroup2 mount";
  Settings s;
  s.min_isolation = Isolation::kFull;
  ModeDecision d = decide_mode(as_gathered(no_cgroup, s), s);
  ASSERT_TRUE(d.refusal);
  EXPECT_EQ(d.refusal->rfind("isolation floor 'full' not met: this host gives 'namespaces': no "
                             "usable cgroup v2 (no cgroup2 mount). How to get more",
                             0),
            0u)
      << *d.refusal;

  HostFacts no_ns = full_host();
  fail(no_ns, "pidfd", "pidfd_open: Function not implemented");
  s.min_isolation = Isolation::kNamespaces;
  d = decide_mode(as_gathered(no_ns, s), s);
  ASSERT_TRUE(d.refusal);
  EXPECT_EQ(d.refusal->rfind("isolation floor 'namespaces' not met: this host gives 'rlimit': the "
                             "namespace sandbox does not work (missing: pidfd (pidfd_open: "
                             "Function not implemented))",
                             0),
            0u)
      << *d.refusal;

  s.min_isolation = Isolation::kNamespaces;
  EXPECT_FALSE(decide_mode(as_gathered(no_cgroup, s), s).refusal);
}

TEST(Mode, DescribeIsTheHealthzObject) {
  Settings s;
  s.tmpfs_bytes = 1024;
  s.seccomp_policy_path = "/p/default.policy";
  s.uid_base = 5000;
  ModeDecision d = decide_mode(full_host(), s);
  d.capabilities = {{"clone3", true}, {"cgroup_v2", true}};
  d.kill_process_available = false;
  const std::string expected =
      R"j({"mode":"full","capabilities":{"clone3":true,"cgroup_v2":true},)j"
      R"j("namespaces":["user","pid","mount","network","ipc","uts","cgroup"],)j"
      R"j("root":"pivot_root, read-only","tmpfs_bytes":1024,"seccomp":true,)j"
      R"j("seccomp_policy":"/p/default.policy",)j"
      R"j("seccomp_kill_action":"kill_thread (this kernel does not report )j"
      R"j(SECCOMP_RET_KILL_PROCESS)","pidfd":true,"memory_limit":"cgroup memory.max",)j"
      R"j("cpu_share":"cgroup cpu.max per sandbox",)j"
      R"j("rlimits":["AS","CPU","NPROC","NOFILE","FSIZE","CORE"],"cgroup":"delegated",)j"
      R"j("cgroup_root":"/sys/fs/cgroup/x","uids":{"first":5000,"count":)j" +
      std::to_string(sandbox_uid_count(s)) + "}}";
  EXPECT_EQ(boost::json::serialize(describe(d)), expected);
}

TEST(Mode, DescribeWithoutACgroupSaysRlimitAndTheAutogroup) {
  HostFacts f = full_host();
  f.cgroup.reset();
  f.sched_autogroup = false;
  const boost::json::object caps = describe(decide_mode(f, Settings{}));
  EXPECT_EQ(caps.at("mode").as_string(), "namespaces");
  EXPECT_EQ(caps.at("memory_limit").as_string(), "RLIMIT_AS");
  EXPECT_EQ(caps.at("cgroup").as_string(), "none");
  EXPECT_EQ(caps.at("seccomp_kill_action").as_string(), "kill_process");
  EXPECT_EQ(std::string(caps.at("cpu_share").as_string()).rfind("per process:", 0), 0u);
  EXPECT_EQ(cpu_share_text(false, true),
            "one scheduling group per sandbox (its own session; kernel autogroup)");
}

// gVisor as root: every namespace but a user one, a fresh /proc, seccomp holds.
RlimitFacts gvisor_root() {
  RlimitFacts f;
  f.seccomp = true;
  f.seccomp_policy_path = "/p/rlimit.policy";
  f.rlimits = {"AS", "CPU"};
  f.namespaces = {"pid", "mount", "network", "ipc", "uts"};
  f.mount_proc = true;
  f.tmpfs_dirs = {"/tmp", "/dev/shm"};
  f.tmpfs_bytes = 1024;
  f.orphans = OrphanReaper::kServerAsPid1;
  f.uid_base = 5000;
  f.uid_count = 2;
  return f;
}

ModeDecision rlimit_decision() {
  ModeDecision d;
  d.capabilities = {{"clone3", false}, {"cgroup_v2", false}};
  d.cgroup_info = {{"cgroup", "none"}};
  return d;
}

TEST(Mode, DescribeRlimitIsTheHealthzObject) {
  const std::string expected =
      R"j({"mode":"rlimit","capabilities":{"clone3":false,"cgroup_v2":false},)j"
      R"j("namespaces":["pid","mount","network","ipc","uts"],)j"
      R"j("root":"the host's own filesystem (rlimit mode does not pivot_root: world-readable )j"
      R"j(files stay readable), with a fresh /proc of its own PID namespace and a private tmpfs )j"
      R"j(of 1024 bytes over each of /tmp, /dev/shm",)j"
      R"j("uid":"uid-base + slot, distinct per concurrent run, no supplementary groups",)j"
      R"j("scratch_dir":"/tmp, a private tmpfs (cwd, HOME, TMPDIR)","shared_tmp_cleanup":[],)j"
      R"j("seccomp":true,"seccomp_policy":"/p/rlimit.policy",)j"
      R"j("network":"a network namespace of its own (loopback only, down); socket() also )j"
      R"j(refused by seccomp",)j"
      R"j("server_environment":"invisible to the runs (their /proc shows their own PID )j"
      R"j(namespace only)","pidfd":false,"child_wait":"SIGCHLD + waitid by pid",)j"
      R"j("orphans":"stay in the run's PID namespace, which dies with its first process",)j"
      R"j("process_cleanup":"kill(-1) as the run's uid, then /proc checked empty",)j"
      R"j("memory_limit":"RLIMIT_AS","rlimits":["AS","CPU"],)j"
      R"j("cpu_share":"one scheduling group per sandbox (its own session; kernel autogroup)",)j"
      R"j("uids":{"first":5000,"count":2},"seccomp_kill_action":"kill_process","cgroup":"none"})j";
  EXPECT_EQ(boost::json::serialize(describe_rlimit(rlimit_decision(), gvisor_root())), expected);
}

// One field of rlimit mode's description, for one variation of the facts.
struct RlimitCase {
  const char* name;
  void (*vary)(RlimitFacts&);
  const char* key;
  const char* expected;  // serialized JSON
};

const RlimitCase kRlimitCases[] = {
    {"no namespaces: the host's filesystem", [](RlimitFacts& f) { f.namespaces.clear(); }, "root",
     R"j("the host's own filesystem (no mount namespace): only file permissions protect it; the )j"
     R"j(world-writable directories are shared")j"},
    {"mount without a fresh /proc", [](RlimitFacts& f) { f.mount_proc = false; }, "root",
     R"j("the host's own filesystem (rlimit mode does not pivot_root: world-readable files stay )j"
     R"j(readable), with a private tmpfs of 1024 bytes over each of /tmp, /dev/shm")j"},
    {"no network namespace, seccomp", [](RlimitFacts& f) { f.namespaces = {"pid"}; }, "network",
     R"j("the server's network namespace; socket() refused by seccomp (socketpair allowed)")j"},
    {"no network namespace, no seccomp",
     [](RlimitFacts& f) {
       f.namespaces = {};
       f.seccomp = false;
     },
     "network", R"j("the server's network namespace, unrestricted (no seccomp)")j"},
    {"network namespace, no seccomp", [](RlimitFacts& f) { f.seccomp = false; }, "network",
     R"j("a network namespace of its own (loopback only, down)")j"},
    {"no seccomp: its reason",
     [](RlimitFacts& f) {
       f.seccomp = false;
       f.seccomp_reason = "EINVAL";
     },
     "seccomp_reason", R"j("EINVAL")j"},
    {"environ guarded", [](RlimitFacts& f) { f.mount_proc = false; }, "server_environment",
     R"j("readable by root only (/proc/<pid>/environ is ptrace-guarded)")j"},
    {"environ blanked",
     [](RlimitFacts& f) {
       f.mount_proc = false;
       f.environment_blanked = "readable as uid 5000";
     },
     "server_environment", R"j("blanked in memory at startup: readable as uid 5000")j"},
    {"orphans to pid 1", [](RlimitFacts& f) { f.namespaces = {}; }, "orphans",
     R"j("reparented to the server (pid 1), killed and reaped by it")j"},
    {"orphans to the subreaper",
     [](RlimitFacts& f) {
       f.namespaces = {};
       f.orphans = OrphanReaper::kServerAsSubreaper;
     },
     "orphans", R"j("reparented to the server (child subreaper), killed and reaped by it")j"},
    {"orphans to init",
     [](RlimitFacts& f) {
       f.namespaces = {};
       f.orphans = OrphanReaper::kSystemInit;
     },
     "orphans", R"j("reparented to the system's init: killed by the server, reaped by init")j"},
    {"a scratch root", [](RlimitFacts& f) { f.scratch_path = "/s"; }, "scratch_dir",
     R"j("/s/run-<random> (cwd, HOME, TMPDIR; made by the run as its uid, mode 0700; removed )j"
     R"j(after the run)")j"},
    {"shared dirs cleaned",
     [](RlimitFacts& f) {
       f.shared_tmp_dirs = {"/tmp", "/var/tmp"};
     },
     "shared_tmp_cleanup", R"j(["/tmp","/var/tmp"])j"},
    {"not root: nothing cleaned", [](RlimitFacts& f) { f.switch_ids = false; },
     "shared_tmp_cleanup", "null"},
    {"not root: the server's uid", [](RlimitFacts& f) { f.switch_ids = false; }, "uid",
     R"j("the server's own uid (the server is not root): the script can signal the server and )j"
     R"j(read what the server can read")j"},
    {"not root: the process group", [](RlimitFacts& f) { f.switch_ids = false; }, "process_cleanup",
     R"j("kill of the run's process group")j"},
};

TEST(Mode, DescribeRlimitSaysWhatTheAssemblyFound) {
  for (const auto& c : kRlimitCases) {
    RlimitFacts f = gvisor_root();
    c.vary(f);
    const boost::json::object caps = describe_rlimit(rlimit_decision(), f);
    ASSERT_TRUE(caps.contains(c.key)) << c.name;
    EXPECT_EQ(boost::json::serialize(caps.at(c.key)), c.expected) << c.name;
  }
}

TEST(Mode, DescribeRlimitWithoutSeccompHasNoKillAction) {
  RlimitFacts f = gvisor_root();
  f.seccomp = false;
  const boost::json::object caps = describe_rlimit(rlimit_decision(), f);
  EXPECT_FALSE(caps.contains("seccomp_kill_action"));
  EXPECT_EQ(caps.at("seccomp"), false);
}

}  // namespace
}  // namespace pysandbox::executor
