// The warm path: pre-initialised interpreters (zygotes, zygote/main.cpp) that fork one sandboxed,
// single-use child per request. The server keeps owning every child (the zygote forks with
// CLONE_PARENT and hands the pidfd back), so completion, deadlines, output caps and usage work as
// on the cold path; the pool only replaces "start an interpreter and import" with "fork one".
//
// Two flavours: `minimal` (the runner only: cheap to fork) and one that has imported the preload
// list (numpy, pandas, ...). A script goes to the lightest flavour whose preloads cover the
// modules it names; the choice only affects speed, never what the script may do.
#pragma once

#include <sys/types.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "jail/child.hpp"
#include "jail/spawner.hpp"
#include "jail/sys/unique_fd.hpp"

namespace pysandbox::executor {

struct PoolOptions {
  std::string zygote_path;             // the pysandbox-zygote binary
  std::vector<std::string> base_args;  // its flags except --preload and --parent-pid
  std::vector<std::string> env;        // the sandbox environment (the children inherit it)
  std::vector<std::string> preload;    // modules of the preloaded flavour; empty: minimal only
  unsigned per_flavour = 1;            // zygotes per flavour
  std::chrono::milliseconds hello_timeout{120000};  // start + imports (slow in emulated VMs)
  // A fork takes milliseconds (~0.1 s in an emulated VM): a zygote slower than this is wedged,
  // and the request it held starts cold.
  std::chrono::milliseconds spawn_timeout{2000};
  std::chrono::milliseconds max_backoff{10000};  // between restarts of a failing zygote
};

struct PoolSpawned {
  pid_t pid = -1;
  jail::sys::UniqueFd pidfd;
  std::string flavour;
};

class ZygotePool {
 public:
  ZygotePool(boost::asio::any_io_executor io, PoolOptions options);
  ZygotePool(const ZygotePool&) = delete;
  ZygotePool& operator=(const ZygotePool&) = delete;
  ~ZygotePool();  // kills and reaps the zygotes

  // Launches every zygote and keeps it alive (restart with backoff) until the pool is destroyed.
  void start();

  // Forks a child for `script` from a ready zygote: params.fds are the run's five fds,
  // `setup_error_fd` the write end of its setup channel (EOF there = sandboxed, script running).
  // An error means no zygote could take it: the caller falls back to the cold path.
  boost::asio::awaitable<boost::system::result<PoolSpawned>> spawn(std::string_view script,
                                                                   const jail::RunParams& params,
                                                                   int setup_error_fd);

  // Every flavour has a zygote up (ready or forking): runs start warm.
  bool ready() const;

  // For /healthz: per zygote flavour, state, pid, RSS, restarts; totals.
  boost::json::object describe() const;

  // Which flavour a script would get (index into flavours): exposed for tests.
  std::size_t flavour_for(std::string_view script) const;

 private:
  enum class State { kStarting, kReady, kBusy, kDead };
  struct Zygote {
    std::size_t flavour = 0;
    State state = State::kStarting;
    std::unique_ptr<jail::Child> process;
    std::unique_ptr<boost::asio::posix::stream_descriptor> control;
    unsigned restarts = 0;
    std::uint64_t spawned = 0;
    double preload_ms = 0;
    std::string layout;  // from the hello: prebuilt root or per-child setup
    std::uint64_t huge_page_bytes = 0;
    std::string last_error;
  };
  struct Flavour {
    std::string name;
    std::vector<std::string> preload;
    std::deque<boost::asio::steady_timer*> waiters;  // spawns waiting for a busy zygote
  };

  boost::asio::awaitable<void> supervise(std::shared_ptr<bool> alive, std::size_t index);
  boost::system::result<void> launch(Zygote& z);
  boost::asio::awaitable<boost::system::result<void>> await_hello(Zygote& z);
  Zygote* pick(std::size_t flavour);
  void release(Zygote& z);
  void log(std::string_view event, const Zygote& z, std::string_view detail = {}) const;
  // A zygote that died or was killed between its fork and its reply leaves a child of ours that
  // nobody watches. Once no spawn is in flight (a reply on its way would look the same), kill
  // and reap every child of this process that no jail::Child owns.
  void sweep_orphans_when_idle();

  boost::asio::any_io_executor io_;
  PoolOptions options_;
  std::vector<Flavour> flavours_;
  std::vector<std::unique_ptr<Zygote>> zygotes_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::uint64_t next_id_ = 0;
  unsigned spawns_in_flight_ = 0;
  bool sweep_pending_ = false;
};

}  // namespace pysandbox::executor
