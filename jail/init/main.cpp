// pysandbox-init: every sandbox's first process (see jail/sandbox_init.hpp). Its own small
// static program, execed from the jail's clone, so that no copy of the server's or a zygote's
// memory stays in the sandbox, and the script sees the same pid 1 on every start path.
//
//   pysandbox-init RUNNER_PID CHANNEL_FD KILL_SCOPE                  (warm: the runner exists)
//   pysandbox-init - CHANNEL_FD KILL_SCOPE EXEC_STEP PATH ARGV...    (cold: start it first)
#include "jail/sandbox_init.hpp"

int main(int argc, char** argv, char** envp) {
  return pysandbox::jail::init_main(argc, argv, envp);
}
