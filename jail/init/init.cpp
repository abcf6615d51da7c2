// pysandbox-init: every sandbox's first process (jail/sandbox_init.hpp). Its own small static
// program, exec'd from the jail's clone, so that no copy of the server's or a zygote's memory
// stays in the sandbox, and the script sees the same pid 1 on every start path. Built without a
// C library (jail/init/sys.hpp): it starts at _start, and every call below is a system call.
//
//   pysandbox-init RUNNER_PID CHANNEL_FD KILL_SCOPE                  (warm: the runner exists)
//   pysandbox-init - CHANNEL_FD KILL_SCOPE EXEC_STEP PATH ARGV...    (cold: start it first)
//
// Types and macros only from these headers: nothing of the C library is linked.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "jail/init/sys.hpp"
#include "jail/sandbox_channel.hpp"

namespace pysandbox::jail {
namespace {

using init_sys::raw_syscall;

volatile int g_stop_requested = 0;

void on_stop(int) { g_stop_requested = 1; }

[[noreturn]] void exit_now(int code) noexcept {
  for (;;) raw_syscall(SYS_exit_group, code);
}

void write_record(int channel, const ChannelRecord& record) noexcept {
  (void)raw_syscall(SYS_write, channel, reinterpret_cast<long>(&record), sizeof record);
}

void write_setup_failed(int channel, std::int32_t step, std::int32_t index,
                        std::int32_t err) noexcept {
  write_record(channel, setup_failed_record(step, index, err));
}

long set_cloexec(int fd, bool on) noexcept {
  return raw_syscall(SYS_fcntl, fd, F_SETFD, on ? FD_CLOEXEC : 0);
}

#if defined(PYSANDBOX_INIT_LIBC)
// Each architecture's signal return differs: the C library knows it.
void set_stop_handler(void (*handler)(int)) noexcept {
  struct sigaction sa {};
  sa.sa_handler = handler;
  ::sigaction(kStopSignal, &sa, nullptr);
}
#else
extern "C" void pysandbox_init_restore_rt();
// The kernel's struct sigaction (not the C library's): handler, flags, restorer, 64-bit mask.
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  unsigned long mask;
};
// No SA_RESTART: the signal interrupts init's wait4(), which then sees the request. x86-64 returns
// from a handler only through a restorer the process provides; arm64 uses the vDSO's.
void set_stop_handler(void (*handler)(int)) noexcept {
  KernelSigaction sa{handler, 0, nullptr, 0};
#if defined(__x86_64__)
  sa.flags = 0x04000000;  // SA_RESTORER
  sa.restorer = pysandbox_init_restore_rt;
#endif
  (void)raw_syscall(SYS_rt_sigaction, kStopSignal, reinterpret_cast<long>(&sa), 0, sizeof sa.mask);
}
#endif

// Cold start: the runner, forked (this process is a few pages: nothing worth vfork's care) only
// to execve `path`; if that fails it reports a kSetupFailed record (`exec_step`, errno) on
// `channel` and exits. Returns the runner's pid, or -errno.
long start_runner(const char* path, char* const* argv, char* const* envp, int channel,
                  std::int32_t exec_step) noexcept {
  const long runner = raw_syscall(SYS_clone, SIGCHLD);
  if (runner == 0) {
    set_stop_handler(nullptr);  // SIG_DFL
    const long err = raw_syscall(SYS_execve, reinterpret_cast<long>(path),
                                 reinterpret_cast<long>(argv), reinterpret_cast<long>(envp));
    write_setup_failed(channel, exec_step, 0, static_cast<std::int32_t>(-err));
    exit_now(127);
  }
  return runner;
}

std::int64_t usec(const struct timeval& tv) noexcept {
  return static_cast<std::int64_t>(tv.tv_sec) * 1000000 + tv.tv_usec;
}

long wait_any(int& status) noexcept {
  return raw_syscall(SYS_wait4, -1, reinterpret_cast<long>(&status), __WALL, 0);
}

// Reaps children until the runner exits (or a stop is requested), then kills the rest of the
// sandbox (`scope`), reaps it all, writes a kExited record to `channel` and exits.
[[noreturn]] void run_init(long runner, int channel, KillScope scope) noexcept {
  ChannelRecord done;
  done.kind = static_cast<std::int32_t>(RecordKind::kExited);
  done.status = W_EXITCODE(0, SIGKILL);  // unless the runner is seen exiting
  bool runner_reaped = false;
  while (!g_stop_requested) {
    int status = 0;
    const long pid = wait_any(status);
    if (pid == runner) {
      done.status = status;
      runner_reaped = true;
      break;
    }
    if (pid < 0 && pid != -EINTR) break;  // -ECHILD: nothing left at all
  }
  done.stopped = g_stop_requested ? 1 : 0;
  const auto report = [&] {
    struct rusage ru {};
    (void)raw_syscall(SYS_getrusage, RUSAGE_CHILDREN, reinterpret_cast<long>(&ru));
    done.user_usec = usec(ru.ru_utime);
    done.system_usec = usec(ru.ru_stime);
    done.max_rss_kib = ru.ru_maxrss;
    write_record(channel, done);
  };
  if (scope == KillScope::kGroup) {
    // The group includes init: report first, then take the group down, init with it.
    report();
    (void)raw_syscall(SYS_kill, 0, SIGKILL);
    exit_now(0);
  }
  // Everything else of the sandbox goes with its script: everything this process may signal,
  // which is the sandbox (its PID namespace, or its uid), never init itself.
  (void)raw_syscall(SYS_kill, -1, SIGKILL);
  for (;;) {
    int status = 0;
    const long pid = wait_any(status);
    if (pid == runner && !runner_reaped) {
      done.status = status;
      runner_reaped = true;
    }
    if (pid < 0 && pid != -EINTR) break;
  }
  report();
  exit_now(0);
}

long parse_long(const char* text) noexcept {
  long v = 0;
  const bool negative = *text == '-';
  if (negative) ++text;
  while (*text >= '0' && *text <= '9') v = v * 10 + (*text++ - '0');
  return negative ? -v : v;
}

int init_main(int argc, char** argv, char** envp) noexcept {
  // A stop request that came between execve and this line found no handler and was dropped
  // (pid_namespaces(7)); the server's backstop then kills the sandbox outright.
  set_stop_handler(on_stop);
  (void)raw_syscall(SYS_prctl, PR_SET_NAME, reinterpret_cast<long>("pysandbox-init"));
  // Same uid as the script, but not its to inspect or write (/proc/1/mem, /proc/1/environ):
  // ptrace access to a non-dumpable process needs CAP_SYS_PTRACE (ptrace(2)).
  (void)raw_syscall(SYS_prctl, PR_SET_DUMPABLE, 0);
  if (argc == 4) {
    run_init(parse_long(argv[1]), static_cast<int>(parse_long(argv[2])),
             static_cast<KillScope>(parse_long(argv[3])));
  }
  if (argc < 7 || argv[1][0] != '-') return 2;
  const int channel = static_cast<int>(parse_long(argv[2]));
  const auto scope = static_cast<KillScope>(parse_long(argv[3]));
  const auto step = static_cast<std::int32_t>(parse_long(argv[4]));
  // The channel again close-on-exec: only init holds it once the runner runs.
  (void)set_cloexec(channel, true);
  const long runner = start_runner(argv[5], argv + 6, envp, channel, step);
  if (runner < 0) {
    write_setup_failed(channel, step, 1, static_cast<std::int32_t>(-runner));
    return 125;
  }
  // Only the runner keeps the run's fds: init must not hold a pipe open after it.
  for (int fd = 0; fd < channel; ++fd) (void)raw_syscall(SYS_close, fd);
  ChannelRecord running;
  running.kind = static_cast<std::int32_t>(RecordKind::kRunning);
  write_record(channel, running);
  // Once more, as a warm sandbox's init is: the script then sees the same pid 1 (its command
  // line too) however it was started. If that fails, this one does the job as well.
  const InitCommandLine again(runner, channel, scope);
  const char* no_env[] = {nullptr};
  if (set_cloexec(channel, false) == 0) {
    (void)raw_syscall(SYS_execve, reinterpret_cast<long>("/proc/self/exe"),
                      reinterpret_cast<long>(again.argv), reinterpret_cast<long>(no_env));
    (void)set_cloexec(channel, true);
  }
  run_init(runner, channel, scope);
}

}  // namespace
}  // namespace pysandbox::jail

#if defined(PYSANDBOX_INIT_LIBC)

#include <unistd.h>

long pysandbox::jail::init_sys::raw_syscall(long nr, long a, long b, long c, long d,
                                            long e) noexcept {
  const long ret = ::syscall(nr, a, b, c, d, e);
  return ret == -1 ? -errno : ret;
}

int main(int argc, char** argv, char** envp) {
  return pysandbox::jail::init_main(argc, argv, envp);
}

#else

// The process's entry: the kernel leaves argc, then argv's pointers, a null, envp's pointers and
// a null at the stack pointer (the System V ABI's initial stack).
extern "C" [[noreturn]] void pysandbox_init_start(long* stack) noexcept {
  const int argc = static_cast<int>(stack[0]);
  char** argv = reinterpret_cast<char**>(stack + 1);
  char** envp = argv + argc + 1;
  pysandbox::jail::exit_now(pysandbox::jail::init_main(argc, argv, envp));
}

#if defined(__x86_64__)
__asm__(
    ".text\n"
    ".global _start\n"
    ".type _start, @function\n"
    "_start:\n"
    "  xor %ebp, %ebp\n"
    "  mov %rsp, %rdi\n"
    "  and $-16, %rsp\n"
    "  call pysandbox_init_start\n"
    "  hlt\n"
    ".global pysandbox_init_restore_rt\n"
    ".type pysandbox_init_restore_rt, @function\n"
    "pysandbox_init_restore_rt:\n"
    "  mov $15, %eax\n"  // rt_sigreturn
    "  syscall\n");
#elif defined(__aarch64__)
__asm__(
    ".text\n"
    ".global _start\n"
    ".type _start, %function\n"
    "_start:\n"
    "  mov x29, #0\n"
    "  mov x30, #0\n"
    "  mov x0, sp\n"
    "  bl pysandbox_init_start\n");
#endif

// What the compiler may call for a struct copy or an array's initialisation, without a C library.
// Written with volatile stores so that the compiler does not turn the loop back into a call.
extern "C" void* memset(void* dest, int c, std::size_t n) {
  auto* d = static_cast<volatile unsigned char*>(dest);
  for (std::size_t i = 0; i < n; ++i) d[i] = static_cast<unsigned char>(c);
  return dest;
}

extern "C" void* memcpy(void* dest, const void* src, std::size_t n) {
  auto* d = static_cast<volatile unsigned char*>(dest);
  const auto* s = static_cast<const unsigned char*>(src);
  for (std::size_t i = 0; i < n; ++i) d[i] = s[i];
  return dest;
}

#endif
