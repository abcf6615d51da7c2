#include "seccomp_policies/compiler.hpp"

#include <linux/filter.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "base/sys/unique_fd.hpp"
#include "seccomp_policies/condition_sets.hpp"
#include "seccomp_policies/syscall_table.hpp"

namespace pysandbox::seccomp_policies {
namespace {

using base::sys::UniqueFd;

struct FilterContextDeleter {
  void operator()(void* ctx) const noexcept { seccomp_release(ctx); }
};
using FilterContext = std::unique_ptr<void, FilterContextDeleter>;

// Binary-tree dispatch over syscall numbers: O(log n) per call instead of a linear scan.
constexpr std::uint32_t kOptimizeBinaryTree = 2;

std::uint32_t to_scmp(const Action& action, std::uint32_t kill_process) {
  switch (action.kind) {
    case Action::Kind::kAllow:
      return SCMP_ACT_ALLOW;
    case Action::Kind::kErrno:
      return SCMP_ACT_ERRNO(static_cast<std::uint32_t>(action.errno_value));
    case Action::Kind::kKillProcess:
      return kill_process;
    case Action::Kind::kKillThread:
      return SCMP_ACT_KILL_THREAD;
    case Action::Kind::kTrap:
      return SCMP_ACT_TRAP;
    case Action::Kind::kLog:
      return SCMP_ACT_LOG;
  }
  return kill_process;
}

scmp_compare to_scmp(Condition::Op op) {
  switch (op) {
    case Condition::Op::kEq:
      return SCMP_CMP_EQ;
    case Condition::Op::kNe:
      return SCMP_CMP_NE;
    case Condition::Op::kLt:
      return SCMP_CMP_LT;
    case Condition::Op::kLe:
      return SCMP_CMP_LE;
    case Condition::Op::kGt:
      return SCMP_CMP_GT;
    case Condition::Op::kGe:
      return SCMP_CMP_GE;
    case Condition::Op::kMaskedEq:
    case Condition::Op::kMaskedNe:  // expanded before we get here
      return SCMP_CMP_MASKED_EQ;
  }
  return SCMP_CMP_EQ;
}

scmp_arg_cmp to_scmp(const Condition& condition) {
  scmp_arg_cmp cmp{};
  cmp.arg = condition.arg;
  cmp.op = to_scmp(condition.op);
  if (cmp.op == SCMP_CMP_MASKED_EQ) {
    cmp.datum_a = condition.mask;
    cmp.datum_b = condition.value;
  } else {
    cmp.datum_a = condition.value;
  }
  return cmp;
}

std::string errno_text(int rc) { return std::strerror(rc < 0 ? -rc : rc); }

[[noreturn]] void fail(std::string_view origin, const std::string& message) {
  throw PolicyError(std::string(origin) + ": " + message);
}

void set_attribute(const FilterContext& ctx, scmp_filter_attr attribute, std::uint32_t value,
                   std::string_view origin, const char* what) {
  const int rc = seccomp_attr_set(ctx.get(), attribute, value);
  if (rc < 0) fail(origin, std::string("cannot set libseccomp ") + what + ": " + errno_text(rc));
}

std::vector<sock_filter> export_bpf(const FilterContext& ctx, std::string_view origin) {
  // libseccomp 2.5 exports only to a file descriptor; an anonymous memory file avoids disk.
  UniqueFd fd(::memfd_create("pysandbox-seccomp-bpf", MFD_CLOEXEC));
  if (!fd) fail(origin, "memfd_create: " + errno_text(errno));
  const int rc = seccomp_export_bpf(ctx.get(), fd.get());
  if (rc < 0) fail(origin, "seccomp_export_bpf: " + errno_text(rc));

  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(origin, "fstat: " + errno_text(errno));
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0 || size % sizeof(sock_filter) != 0) {
    fail(origin, "libseccomp exported " + std::to_string(size) + " bytes, not whole instructions");
  }
  std::vector<sock_filter> instructions(size / sizeof(sock_filter));
  auto* out = reinterpret_cast<char*>(instructions.data());
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd.get(), out + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(origin, "reading the exported filter: " + errno_text(n < 0 ? errno : EIO));
    done += static_cast<std::size_t>(n);
  }
  return instructions;
}

}  // namespace

bool kill_process_available() noexcept {
  // libseccomp validates every action it is handed against what the kernel reports, and caches
  // the kernel's answer itself: asking it through a throwaway context is cheap.
  FilterContext ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return false;
  return seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) == 0;
}

BpfProgram compile_rules(const Action& default_action, const std::vector<Rule>& rules,
                         std::string_view origin) {
  // Without it, libseccomp refuses KILL_PROCESS outright (EINVAL); killing the thread still
  // keeps the call from running, which is what the policy is for.
  const std::uint32_t kill_process =
      kill_process_available() ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_KILL_THREAD;
  const std::uint32_t default_scmp = to_scmp(default_action, kill_process);
  FilterContext ctx(seccomp_init(default_scmp));
  if (!ctx) fail(origin, "seccomp_init failed");

  // Foreign architectures (i386 via int 0x80) and x32 numbers never reach the rules.
  set_attribute(ctx, SCMP_FLTATR_ACT_BADARCH, kill_process, origin, "bad-arch action");
  // The caller sets no_new_privs itself, before install(), where it can report failure.
  set_attribute(ctx, SCMP_FLTATR_CTL_NNP, 0, origin, "no_new_privs flag");
  set_attribute(ctx, SCMP_FLTATR_CTL_OPTIMIZE, kOptimizeBinaryTree, origin, "optimization");

  for (const Rule& rule : rules) {
    const std::optional<int> nr = resolve_syscall(rule.syscall);
    if (!nr) {
      if (rule.optional) continue;
      fail(origin, std::to_string(rule.line) + ": unknown syscall '" + rule.syscall + "'");
    }
    const std::uint32_t action = to_scmp(rule.action, kill_process);
    if (action == default_scmp) continue;

    for (const Conjunction& alternative : expand_masked_ne(rule.conditions)) {
      std::vector<scmp_arg_cmp> cmps;
      for (const Condition& condition : alternative) cmps.push_back(to_scmp(condition));
      const int rc = seccomp_rule_add_array(ctx.get(), action, *nr,
                                            static_cast<unsigned>(cmps.size()), cmps.data());
      if (rc < 0) {
        fail(origin, std::to_string(rule.line) + ": libseccomp rejected the rule for '" +
                         rule.syscall + "': " + errno_text(rc));
      }
    }
  }

  std::vector<sock_filter> instructions = export_bpf(ctx, origin);
  if (instructions.size() > BPF_MAXINSNS) {
    fail(origin, "the filter has " + std::to_string(instructions.size()) +
                     " instructions; the kernel accepts at most " + std::to_string(BPF_MAXINSNS));
  }
  return BpfProgram(std::move(instructions));
}

}  // namespace pysandbox::seccomp_policies
