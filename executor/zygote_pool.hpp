// The warm path: pre-initialised interpreters (zygotes: Debian's /usr/bin/python3 running
// python/zygote.py with its native module) that each keep sandboxes made ahead of their runs. A
// request takes such a sandbox, already in its namespaces, uid, root, rlimits and seccomp, with
// its interpreter forked and its after-fork work done, and hands it the run's fds and limits over
// a socket: only the script itself runs on the request's clock. The zygote then makes the next.
//
// The server owns every sandbox from the moment its zygote reports it (its init is the server's
// child, CLONE_PARENT), so completion, deadlines, output caps and usage work as on the cold path.
//
// Two flavours: `minimal` (the runner only: cheap to fork) and one that has imported the preload
// list (numpy, pandas, ...). A script goes to the lightest flavour whose preloads cover the
// modules it names; the choice only affects speed, never what the script may do.
#pragma once

#include <sys/types.h>

#include <array>
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
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/sys/unique_fd.hpp"
#include "executor/netns_pool.hpp"
#include "executor/pool_stats.hpp"
#include "executor/settings.hpp"
#include "executor/uid_pool.hpp"
#include "jail/child.hpp"
#include "jail/namespace_spawner.hpp"

namespace pysandbox::executor {

struct PoolOptions {
  std::string python_path;       // the interpreter: the cold path's, flags and all
  std::string bootstrap_path;    // zygote.py
  std::vector<std::string> env;  // the sandbox environment (zygotes and sandboxes inherit it)
  // Sent to every zygote (zygote.py): module, runner, policy, tmpfs_bytes, ro_paths, python,
  // processes, open_files, file_size. preload and parent_pid are added per zygote.
  boost::json::object config;
  std::vector<std::string> preload;  // modules of the preloaded flavour; empty: minimal only
  unsigned per_flavour = 1;          // zygotes per flavour
  // Sandboxes each zygote keeps made, or being made, ahead of their runs: the zygote forks the
  // next while the last sets itself up (at saturation one at a time bounded the rate).
  unsigned ahead = kAheadPerZygote;
  std::chrono::milliseconds hello_timeout{120000};  // start + imports (slow in emulated VMs)
  // Making a sandbox takes milliseconds (~0.2 s in an emulated VM): a zygote slower than this
  // is wedged and replaced.
  std::chrono::milliseconds prefork_timeout{5000};
  // How long a request waits for its flavour's next sandbox before it starts cold.
  std::chrono::milliseconds take_timeout{2000};
  std::chrono::milliseconds max_backoff{10000};  // between restarts of a failing zygote
  // Test only: the zygote exits right after making every n-th sandbox, before reporting it.
  unsigned fault_exit_after_fork = 0;
};

struct PoolSpawned {
  NetnsLease network;                 // its network namespace, until nothing of it is left
  std::unique_ptr<jail::Child> init;  // the sandbox's init
  base::sys::UniqueFd channel;        // its channel's read end (jail/sandbox_init.hpp)
  UidLease uid;                       // its uid, until nothing of it is left
  std::string flavour;
};

class ZygotePool {
 public:
  ZygotePool(boost::asio::any_io_executor io, PoolOptions options, UidPool& uids);
  ZygotePool(const ZygotePool&) = delete;
  ZygotePool& operator=(const ZygotePool&) = delete;
  ~ZygotePool();  // kills and reaps the zygotes and their unused sandboxes

  // Launches every zygote and keeps it alive (restart with backoff) until the pool is destroyed.
  void start();

  // A warm sandbox for `script`, its run handed over: `fds` are the run's five fds (stdin,
  // stdout, stderr, script, result), `limits` its rlimits; with `cgroup_fd` >= 0 the sandbox is
  // first moved into that cgroup (full mode). An error means no sandbox could take it: the
  // caller starts the run cold.
  boost::asio::awaitable<boost::system::result<PoolSpawned>> spawn(std::string_view script,
                                                                   const jail::Rlimits& limits,
                                                                   const jail::RunFds& fds,
                                                                   int cgroup_fd);

  // Every flavour has a zygote up: runs start warm.
  bool ready() const;

  // For /healthz: per zygote flavour, state, pid, RSS, restarts, its sandbox in waiting.
  boost::json::object describe() const;
  // describe()'s ready, busy and restarts, typed (/metrics).
  PoolStats stats() const;

  // Which flavour a script would get (index into flavours): exposed for tests.
  std::size_t flavour_for(std::string_view script) const;

 private:
  enum class State { kStarting, kReady, kDead };
  // A sandbox made ahead of its run (in a zygote's list only once its runner waits for its run).
  struct Ahead {
    // First, so destroyed last: handed back only after init's destructor killed and reaped it.
    NetnsLease network;
    std::unique_ptr<jail::Child> init;
    base::sys::UniqueFd channel;
    base::sys::UniqueFd handover;
    UidLease uid;
  };
  // A single file bound into a zygote's prebuilt root (ld.so.cache, resolv.conf, ...): the bind
  // pins the inode the zygote saw, so a host update that replaces the file would not reach its
  // sandboxes, while a cold sandbox, which binds it anew, sees it.
  struct BoundFile {
    std::string path;
    dev_t dev = 0;
    ino_t ino = 0;
  };
  struct Zygote {
    std::size_t flavour = 0;
    std::vector<BoundFile> bound_files;  // as they were when it was launched
    State state = State::kStarting;
    std::unique_ptr<jail::Child> process;
    std::unique_ptr<boost::asio::posix::stream_descriptor> control;
    std::deque<Ahead> ahead;         // ready for a run, oldest first
    std::vector<uid_t> making_uids;  // sandboxes asked for and not yet up
    std::uint64_t generation = 0;    // one per launch: what an earlier launch made is not ours
    bool failed = false;             // a sandbox of it did not come up: replace it
    // Wakes keep_ahead() when its sandbox was taken.
    std::unique_ptr<boost::asio::steady_timer> taken;
    unsigned restarts = 0;
    std::uint64_t spawned = 0;
    std::uint64_t made = 0;
    double preload_ms = 0;
    std::string layout;  // from the hello: prebuilt root or per-sandbox setup
    std::uint64_t huge_page_bytes = 0;
    std::string last_error;
  };
  struct Flavour {
    std::string name;
    std::vector<std::string> preload;
    std::deque<boost::asio::steady_timer*> waiters;  // spawns waiting for a sandbox
  };

  boost::asio::awaitable<void> supervise(std::shared_ptr<bool> alive, std::size_t index);
  boost::system::result<void> launch(Zygote& z);
  boost::asio::awaitable<boost::system::result<void>> await_hello(Zygote& z);
  // Keeps options_.ahead sandboxes made (or being made) ahead for `z`; returns when the zygote
  // fails to make one.
  boost::asio::awaitable<void> keep_ahead(std::shared_ptr<bool> alive, Zygote& z);
  // The zygote's part of making one: its uid, the request, the reply and what it carries.
  boost::asio::awaitable<boost::system::result<Ahead>> request_ahead(Zygote& z);
  // The sandbox's part, beside the zygote making the next: until its runner waits for its run.
  boost::asio::awaitable<void> finish_ahead(std::shared_ptr<bool> alive, Zygote& z,
                                            std::uint64_t generation, Ahead ahead);
  Zygote* pick(std::size_t flavour);
  std::vector<BoundFile> bound_files() const;
  static bool still_current(const std::vector<BoundFile>& files);
  void wake_waiters(std::size_t flavour);
  void log(std::string_view event, const Zygote& z, std::string_view detail = {}) const;
  // A zygote that died between making a sandbox and reporting it leaves a child of ours that
  // nobody owns. Once no report is on its way (one in flight would look the same), kill and
  // reap every child of this process that no jail::Child owns.
  void sweep_orphans_when_idle();

  boost::asio::any_io_executor io_;
  PoolOptions options_;
  UidPool& uids_;
  std::vector<Flavour> flavours_;
  std::vector<std::unique_ptr<Zygote>> zygotes_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  NetnsPool netns_;
  std::uint64_t netns_created_ = 0;  // by a zygote for one of its sandboxes
  std::uint64_t netns_reused_ = 0;   // handed back and found empty
  std::uint64_t next_id_ = 0;
  unsigned preforks_in_flight_ = 0;
  bool sweep_pending_ = false;
};

}  // namespace pysandbox::executor
