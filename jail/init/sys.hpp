// The system calls pysandbox-init makes, without a C library: the kernel's calling convention in
// a few lines of assembly per architecture, each call returning the result or -errno.
//
// Why no C library: init is exec'd for every sandbox, and a static glibc spends ~0.3 ms of CPU
// starting up before main() (reading cache sizes with cpuid, which a hypervisor traps; setting up
// TLS, IRELATIVE relocations, stdio). Nothing here needs it: init only waits, kills, forks, execs
// and writes fixed-size records. On an architecture without a table here, the same calls go
// through the C library's syscall() instead (PYSANDBOX_INIT_LIBC).
#pragma once

#include <sys/syscall.h>

namespace pysandbox::jail::init_sys {

#if defined(PYSANDBOX_INIT_LIBC)

long raw_syscall(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0) noexcept;

#elif defined(__x86_64__)

inline long raw_syscall(long nr, long a = 0, long b = 0, long c = 0, long d = 0,
                        long e = 0) noexcept {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                   : "rcx", "r11", "memory");
  return ret;
}

#elif defined(__aarch64__)

inline long raw_syscall(long nr, long a = 0, long b = 0, long c = 0, long d = 0,
                        long e = 0) noexcept {
  register long x8 __asm__("x8") = nr;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  __asm__ volatile("svc #0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4)
                   : "memory", "cc");
  return x0;
}

#else
#error "no system call table for this architecture: build with PYSANDBOX_INIT_LIBC"
#endif

}  // namespace pysandbox::jail::init_sys
