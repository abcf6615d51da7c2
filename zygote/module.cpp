// _pysandbox_zygote: the native half of a zygote, an extension module loaded by Debian's own
// /usr/bin/python3 (zygote.py is its bootstrap). Being the very interpreter a cold sandbox
// execs -- same binary, flags, locale and paths -- is what makes a warm start indistinguishable
// from a cold one for the script; only the sandbox's steps are native, and they are the jail's
// own (jail::NamespaceSpawner), not a second implementation.
//
//   prepare(policy, tmpfs_bytes, ro_paths, python, init) -> dict
//       once, after the imports: compiles the seccomp policy, collapses the heap into huge pages,
//       builds the sandbox's read-only root and moves into it, and into a fresh network namespace
//   serve(hello, processes, open_files, file_size, fault_every)
//       sends the hello, then makes one sandbox ahead of its run per PreforkRequest
//       (zygote/protocol.hpp). Returns only in such a sandbox's runner, sandboxed.
//   await_run()
//       in that runner: says it is ready, then waits for its run's fds and limits and puts them
//       in place. Returns when the script may start.
//
// Python.h first: it sets feature macros the C library headers must see.
#define PY_SSIZE_T_CLEAN
#include <Python.h>
// clang-format off
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
// clang-format on

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/json_line.hpp"
#include "base/sys/fd_passing.hpp"
#include "jail/namespace_spawner.hpp"
#include "jail/network_namespace.hpp"
#include "jail/sandbox_init.hpp"
#include "seccomp_policies/policy.hpp"
#include "zygote/huge_pages.hpp"
#include "zygote/protocol.hpp"

namespace {

using namespace pysandbox;

// In a warm sandbox's runner, where its run arrives, and its channel until then
// (jail::NamespaceSpawner::fork_ready).
constexpr int kHandoverFd = 3;
constexpr int kChannelFd = 5;
// Where received fds are parked before they are placed at 0..4: above them and the few this
// runner has, below any RLIMIT_NOFILE a run may have.
constexpr int kParkFdBase = 16;

// The zygote's state between prepare() and serve(). Never freed: the process only forks and
// exits.
struct Zygote {
  std::unique_ptr<seccomp_policies::BpfProgram> bpf;
  std::optional<jail::NamespaceSpawner> spawner;
  int host_proc_fd = -1;
  bool inherit_network_namespace = false;
};
Zygote* g_zygote = nullptr;

PyObject* fail(const std::string& what) {
  PyErr_SetString(PyExc_RuntimeError, what.c_str());
  return nullptr;
}

bool to_strings(PyObject* list, std::vector<std::string>& out) {
  if (!PyList_Check(list)) return false;
  for (Py_ssize_t i = 0; i < PyList_Size(list); ++i) {
    const char* s = PyUnicode_AsUTF8(PyList_GetItem(list, i));
    if (s == nullptr) return false;
    out.emplace_back(s);
  }
  return true;
}

std::optional<std::string> compile_policy(const char* policy_path, Zygote& z) {
  try {
    z.bpf = std::make_unique<seccomp_policies::BpfProgram>(
        seccomp_policies::Policy::load_file(policy_path).compile());
  } catch (const std::exception& e) {
    return std::string("seccomp policy: ") + e.what();
  }
  return std::nullopt;
}

// The sandbox's read-only root, built once in a mount namespace of our own, and moved into:
// each sandbox's new mount namespace is a copy of this finished tree and only adds its /tmp
// and /proc (instead of some sixty mount steps and a copy of the host's tree per sandbox).
// The host's /proc stays reachable through one dirfd, for the sandboxes' uid/gid maps; they
// close it with every other fd before anything of theirs runs. This needs CAP_SYS_ADMIN here
// (a host's root has it; a least-privilege container does not): without it, each sandbox
// replays the whole plan in its own user namespace and creates its own network namespace,
// exactly as a cold one does. Sets `layout` to which of the two it is.
std::optional<std::string> move_into_root(const std::vector<jail::MountOp>& root_plan,
                                          jail::JailConfig& config, std::string& layout) {
  base::sys::UniqueFd host_proc(::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!host_proc || ::unshare(CLONE_NEWNS) != 0) {
    layout = std::string("per sandbox (unshare(CLONE_NEWNS): ") + std::strerror(errno) + ")";
    config.mounts.prebuilt_root = false;
    return std::nullopt;
  }
  for (const auto& op : root_plan) {
    if (int err = jail::apply_mount_op(op); err != 0)
      return op.describe() + ": " + std::strerror(err);
  }
  // Each sandbox is born in the network namespace the zygote is in at that moment; the zygote
  // moves to the next one before each fork (prefork()), so no two live sandboxes share one. Off
  // the host's network from here on.
  if (::unshare(CLONE_NEWNET) != 0)
    return std::string("network namespace: ") + std::strerror(errno);
  config.host_proc_fd = host_proc.release();
  config.inherit_network_namespace = true;
  layout = "prebuilt root, network namespaces recycled when empty";
  return std::nullopt;
}

PyObject* prepare(PyObject*, PyObject* args) {
  const char* policy_path = nullptr;
  unsigned long long tmpfs_bytes = 0;
  PyObject* ro_list = nullptr;
  const char* python = nullptr;
  const char* init_path = nullptr;
  if (!PyArg_ParseTuple(args, "sKO!ss", &policy_path, &tmpfs_bytes, &PyList_Type, &ro_list, &python,
                        &init_path)) {
    return nullptr;
  }
  if (g_zygote != nullptr) return fail("prepare() runs once");
  auto z = std::make_unique<Zygote>();
  if (auto err = compile_policy(policy_path, *z)) return fail(*err);
  jail::JailConfig config;
  config.executable = python;
  config.argv = {python};
  if (!to_strings(ro_list, config.mounts.ro_paths)) return nullptr;
  config.mounts.tmpfs_bytes = tmpfs_bytes;
  config.mounts.prebuilt_root = true;
  config.seccomp = z->bpf.get();
  // Opened now: the sandbox's root, which the zygote moves into below, does not show it.
  base::sys::UniqueFd init(::open(init_path, O_PATH | O_CLOEXEC));
  if (!init) return fail(std::string("pysandbox-init ") + init_path + ": " + std::strerror(errno));
  config.init_fd = init.get();
  auto root_plan = jail::build_root_plan(config.mounts);
  if (!root_plan) return fail("invalid sandbox configuration: " + root_plan.error().message());

  // Fewer page tables to copy per sandbox (zygote/huge_pages.hpp): after the imports, before
  // anything is forked.
  const auto collapsed = pysandbox::zygote::collapse_anonymous_memory();
  std::string layout;
  if (auto err = move_into_root(*root_plan, config, layout)) return fail(*err);

  z->host_proc_fd = config.host_proc_fd;
  z->inherit_network_namespace = config.inherit_network_namespace;
  auto spawner = jail::NamespaceSpawner::create(config);
  if (!spawner) return fail("invalid sandbox configuration: " + spawner.error().message());
  z->spawner.emplace(std::move(*spawner));
  g_zygote = z.release();
  return Py_BuildValue("{s:s,s:K}", "layout", layout.c_str(), "huge_page_bytes",
                       static_cast<unsigned long long>(collapsed.collapsed_bytes));
}

bool send(const void* data, std::size_t size, std::span<const int> fds = {}) {
  return static_cast<bool>(base::sys::send_with_fds(
      pysandbox::zygote::kControlFd, std::span(static_cast<const std::byte*>(data), size), fds));
}

// One sandbox ahead of its run. Returns true in the sandbox's runner (the caller returns to
// Python), false in the zygote (done, or the control socket broke: `stop` says which).
bool prefork(const pysandbox::zygote::PreforkRequest& request, base::sys::UniqueFd reuse_netns,
             const jail::Rlimits& limits, int null_fd, unsigned fault_every, bool& stop) {
  using pysandbox::zygote::NetworkNamespace;
  pysandbox::zygote::PreforkReply reply;
  reply.id = request.id;
  if (g_zygote->inherit_network_namespace) {
    // Before anything of this sandbox exists (its handover socket included, which would be a
    // unix socket of the namespace it was made in).
    auto entered = jail::enter_next_network_namespace(reuse_netns.get(), g_zygote->host_proc_fd);
    if (!entered) {
      // The next sandbox must not join the last one's network namespace: stop instead.
      base::JsonLine("zygote_error", "zygote")
          .field("what", "network namespace")
          .field("errno", entered.error().value())
          .field("detail", entered.error().message())
          .field("pid", static_cast<std::int64_t>(::getpid()))
          .write();
      stop = true;
      return false;
    }
    reply.network = static_cast<std::int32_t>(*entered == jail::NetworkNamespaceChoice::kReused
                                                  ? NetworkNamespace::kReused
                                                  : NetworkNamespace::kCreated);
  }
  reuse_netns.reset();
  auto channel = base::sys::make_pipe();
  auto handover = base::sys::make_seqpacket_pair();
  if (!channel || !handover) {
    reply.err = !channel ? channel.error().value() : handover.error().value();
    stop = !send(&reply, sizeof reply);
    return false;
  }
  jail::ReadyParams params;
  params.host_uid = request.host_uid;
  params.host_gid = request.host_gid;
  params.limits = limits;
  params.null_fd = null_fd;
  params.handover_fd = handover->second.get();
  params.channel_fd = channel->write.get();

  PyOS_BeforeFork();
  auto made = g_zygote->spawner->fork_ready(params);
  if (made && made->pid == 0) {
    // The runner: those fd numbers were closed by the jail's steps and may be reused now (3 is
    // the handover socket, 5 the channel): forget them, never close them.
    (void)channel->read.release();
    (void)channel->write.release();
    (void)handover->first.release();
    (void)handover->second.release();
    PyOS_AfterFork_Child();
    return true;
  }
  PyOS_AfterFork_Parent();

  if (!made) {
    reply.err = made.error().value();
    stop = !send(&reply, sizeof reply);
    return false;
  }
  static unsigned made_count = 0;
  if (fault_every != 0 && ++made_count % fault_every == 0) ::_exit(99);
  reply.pid = made->pid;
  const int fds[pysandbox::zygote::kReadyFds] = {made->pidfd.get(), channel->read.get(),
                                                 handover->first.get()};
  stop = !send(&reply, sizeof reply, fds);
  if (stop) {
    // The server is gone: the sandbox (its child, by CLONE_PARENT) must not wait forever.
    (void)base::sys::pidfd_send_signal(made->pidfd.get(), SIGKILL);
  }
  return false;
}

PyObject* serve(PyObject*, PyObject* args) {
  const char* hello = nullptr;
  unsigned long long processes = 0, open_files = 0, file_size = 0;
  unsigned int fault_every = 0;  // test only: exit after making every n-th sandbox, unreported
  if (!PyArg_ParseTuple(args, "sKKKI", &hello, &processes, &open_files, &file_size, &fault_every))
    return nullptr;
  if (g_zygote == nullptr) return fail("serve() needs prepare() first");
  const std::string text(hello);
  if (text.size() > pysandbox::zygote::kMaxHelloBytes) return fail("hello too long");
  if (!send(text.data(), text.size())) ::_exit(1);

  // Until its run lowers them: the most any run may have (a run only ever lowers its limits).
  jail::Rlimits limits;
  limits.address_space = RLIM_INFINITY;
  limits.cpu_seconds = 24 * 3600;
  limits.processes = processes;
  limits.open_files = open_files;
  limits.file_size = file_size;
  base::sys::UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null_fd) ::_exit(1);

  for (;;) {
    pysandbox::zygote::PreforkRequest request;
    auto received = base::sys::recv_with_fds(pysandbox::zygote::kControlFd,
                                             std::as_writable_bytes(std::span(&request, 1)));
    if (!received) {
      if (received.error() == boost::system::errc::interrupted) continue;
      ::_exit(1);
    }
    if (received->bytes == 0) ::_exit(0);  // the server closed the socket: drain done
    // At most one fd: a network namespace to reuse.
    base::sys::UniqueFd reuse_netns(received->fd_count == 1 ? received->fds[0].release() : -1);
    if (received->truncated || received->bytes != sizeof request ||
        request.magic != pysandbox::zygote::kMagic || received->fd_count > 1) {
      pysandbox::zygote::PreforkReply reply;
      reply.id = request.id;
      reply.err = EPROTO;
      if (!send(&reply, sizeof reply)) ::_exit(1);
      continue;
    }
    bool stop = false;
    if (prefork(request, std::move(reuse_netns), limits, null_fd.get(), fault_every, stop)) {
      (void)null_fd.release();  // closed by the jail's steps
      Py_RETURN_NONE;           // the runner, in its sandbox
    }
    if (stop) ::_exit(1);
  }
}

[[noreturn]] void runner_fails(const char* what, int err) {
  // stderr is the run's by now, or /dev/null: either way the server sees the exit status.
  std::fprintf(stderr, "pysandbox: %s: %s\n", what, std::strerror(err));
  ::_exit(jail::kSetupFailedExit);
}

// Tells init, and through it the server, that this runner is up; then only init may report.
void report_running() {
  jail::ChannelRecord running;
  running.kind = static_cast<std::int32_t>(jail::RecordKind::kRunning);
  jail::write_record(kChannelFd, running);
  ::close(kChannelFd);
}

// The run's message and its fds, over the handover socket; exits if the server let the runner
// go unused, or sent something else.
base::sys::Received receive_run(pysandbox::zygote::RunMessage& msg) {
  auto got = base::sys::recv_with_fds(kHandoverFd, std::as_writable_bytes(std::span(&msg, 1)));
  if (!got || got->bytes == 0) ::_exit(0);  // never used: the server let it go
  if (got->truncated || got->bytes != sizeof msg || msg.magic != pysandbox::zygote::kMagic ||
      got->fd_count != pysandbox::zygote::kRunFds) {
    ::_exit(126);
  }
  return std::move(*got);
}

// Park the run's fds high so placing them at 0..4 cannot clobber one another; placing one on
// fd 3 closes the handover socket.
void place_run_fds(base::sys::Received& got) {
  int parked[pysandbox::zygote::kRunFds];
  for (int i = 0; i < 5; ++i) {
    parked[i] = ::fcntl(got.fds[i].get(), F_DUPFD_CLOEXEC, kParkFdBase);
    if (parked[i] < 0) runner_fails("fds", errno);
    got.fds[i].reset();
  }
  for (int i = 0; i < 5; ++i) {
    if (::dup2(parked[i], i) != i) runner_fails("fds", errno);  // clears CLOEXEC
    ::close(parked[i]);
  }
}

// The run's own limits, lowered from the most any run may have (a sandbox's other limits were
// set by the jail's steps already).
void set_run_limits(const pysandbox::zygote::RunMessage& msg) {
  int resource = 0;
  if (int err = jail::apply_rlimits(msg.limits(), nullptr, 0, resource); err != 0)
    runner_fails("setrlimit", err);
}

PyObject* await_run(PyObject*, PyObject*) {
  report_running();
  pysandbox::zygote::RunMessage msg;
  auto got = receive_run(msg);
  place_run_fds(got);
  set_run_limits(msg);
  Py_RETURN_NONE;
}

// numpy's MT19937 state (numpy/random/src/mt19937/mt19937.h) behind a BitGenerator capsule
// (numpy/random/bitgen.h: its first member is the state pointer); stable since numpy 1.17.
struct NumpyBitgen {
  void* state;
};
struct NumpyMt19937State {
  std::uint32_t key[624];
  int pos;
};

// reseed_mt19937(capsule): a fresh key from the kernel for numpy's global RandomState (an
// MT19937), as np.random.seed() gives it, without its Python-level SeedSequence and the pages
// that copies in every sandbox made ahead.
PyObject* reseed_mt19937(PyObject*, PyObject* capsule) {
  auto* bitgen = static_cast<NumpyBitgen*>(PyCapsule_GetPointer(capsule, "BitGenerator"));
  if (bitgen == nullptr || bitgen->state == nullptr) return nullptr;
  auto* state = static_cast<NumpyMt19937State*>(bitgen->state);
  auto* out = reinterpret_cast<unsigned char*>(state->key);
  std::size_t got = 0;
  while (got < sizeof state->key) {
    const long n = ::syscall(SYS_getrandom, out + got, sizeof state->key - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(std::string("getrandom: ") + std::strerror(errno));
    got += static_cast<std::size_t>(n);
  }
  // As MT19937's init_by_array: the most significant bit set, so the state is never all zero.
  state->key[0] = 0x80000000u;
  state->pos = 624;  // the next draw regenerates the whole state from the new key
  Py_RETURN_NONE;
}

PyMethodDef kMethods[] = {
    {"prepare", prepare, METH_VARARGS, "Build the sandbox's root once and move into it."},
    {"serve", serve, METH_VARARGS, "Make sandboxes ahead of their runs; returns in one."},
    {"await_run", await_run, METH_NOARGS, "In a sandbox: wait for the run's fds and limits."},
    {"reseed_mt19937", reseed_mt19937, METH_O, "Fresh kernel-random key for an MT19937."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "_pysandbox_zygote", nullptr, -1, kMethods};

}  // namespace

PyMODINIT_FUNC PyInit__pysandbox_zygote() { return PyModule_Create(&kModule); }
