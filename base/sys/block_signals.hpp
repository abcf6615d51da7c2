// Blocks every signal of the calling thread for its lifetime: a fork in between inherits the
// mask, so no server handler (Asio's SIGCHLD/SIGTERM writers) can run in the child before it
// resets them.
#pragma once

#include <pthread.h>
#include <signal.h>

namespace pysandbox::base::sys {

class BlockAllSignals {
 public:
  BlockAllSignals() noexcept {
    sigset_t all;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &saved_);
  }
  ~BlockAllSignals() { ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  BlockAllSignals(const BlockAllSignals&) = delete;
  BlockAllSignals& operator=(const BlockAllSignals&) = delete;

 private:
  sigset_t saved_{};
};

}  // namespace pysandbox::base::sys
