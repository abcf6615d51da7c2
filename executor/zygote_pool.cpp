#include "executor/zygote_pool.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/log.hpp"
#include "base/sys/fd_passing.hpp"
#include "cgroups/cgroupfs.hpp"
#include "jail/sandbox_init.hpp"
#include "zygote/protocol.hpp"

namespace pysandbox::executor {

namespace {

using boost::asio::as_tuple;
using boost::asio::awaitable;
using boost::asio::use_awaitable;
using boost::asio::posix::stream_descriptor;
using namespace boost::asio::experimental::awaitable_operators;

constexpr std::chrono::milliseconds kFirstBackoff{100};
// A zygote that stayed up this long before dying was healthy: restart it without delay growth.
constexpr std::chrono::seconds kHealthyUptime{30};
// Network namespaces kept for reuse: as many as sandboxes can be alive at once (admission slots,
// plus those made ahead) is all that is ever used; past that they are closed.
constexpr std::size_t kMaxFreeNetns = 64;

const char* state_name(int s) {
  static const char* const kNames[] = {"starting", "ready", "dead"};
  return kNames[s];
}

bool ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Whether `script` names the module `name` as a whole word ("import pandas as pd",
// "from numpy.linalg import norm"). A heuristic for speed only: a miss costs an import.
bool mentions(std::string_view script, std::string_view name) {
  const std::string_view top = name.substr(0, name.find('.'));
  for (std::size_t pos = script.find(top); pos != std::string_view::npos;
       pos = script.find(top, pos + 1)) {
    const bool start_ok = pos == 0 || !ident_char(script[pos - 1]);
    const std::size_t end = pos + top.size();
    const bool end_ok = end == script.size() || !ident_char(script[end]);
    if (start_ok && end_ok) return true;
  }
  return false;
}

// Waits until `sd` is readable or `timeout` passes; false on timeout or error.
awaitable<bool> readable_within(stream_descriptor& sd, std::chrono::milliseconds timeout) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, timeout);
  auto result = co_await (sd.async_wait(stream_descriptor::wait_read, as_tuple(use_awaitable)) ||
                          timer.async_wait(as_tuple(use_awaitable)));
  if (result.index() != 0) co_return false;
  auto [ec] = std::get<0>(result);
  co_return !ec;
}

std::uint64_t rss_bytes(pid_t pid) {
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  std::uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The sandbox's runner: its init's only child (as the host's /proc shows it).
pid_t runner_of(pid_t init) {
  std::ifstream children("/proc/" + std::to_string(init) + "/task/" + std::to_string(init) +
                         "/children");
  pid_t pid = 0;
  children >> pid;
  return pid;
}

boost::system::error_code protocol_error() {
  return std::make_error_code(std::errc::protocol_error);
}

// Sends `request` on a zygote's control socket and reads the reply (with the made sandbox's
// fds) within `timeout`, with `reuse_netns` (if valid) for the zygote to reuse. `why` says what
// went wrong.
awaitable<boost::system::result<base::sys::Received>> prefork(
    stream_descriptor& control, const zygote::PreforkRequest& request, int reuse_netns,
    zygote::PreforkReply& reply, std::chrono::milliseconds timeout, std::string& why) {
  const int passed[] = {reuse_netns};
  if (auto sent = base::sys::send_with_fds(
          control.native_handle(), std::as_bytes(std::span(&request, 1)),
          reuse_netns >= 0 ? std::span<const int>(passed) : std::span<const int>());
      !sent) {
    why = "send: " + sent.error().message();
    co_return sent.error();
  }
  if (!co_await readable_within(control, timeout)) {
    why = "no answer within the prefork timeout";
    co_return std::make_error_code(std::errc::timed_out);
  }
  auto got = base::sys::recv_with_fds(control.native_handle(),
                                      std::as_writable_bytes(std::span(&reply, 1)));
  if (!got) {
    why = "recv: " + got.error().message();
    co_return got.error();
  }
  if (got->bytes == 0) {
    why = "closed its socket";
    co_return protocol_error();
  }
  if (got->truncated || got->bytes != sizeof reply || reply.magic != zygote::kMagic ||
      reply.id != request.id || (reply.pid > 0) != (got->fd_count == zygote::kReadyFds)) {
    why = "malformed reply";
    co_return protocol_error();
  }
  if (reply.pid <= 0) {
    why = std::string("making a sandbox: ") + std::strerror(reply.err != 0 ? reply.err : EPROTO);
    co_return boost::system::error_code(reply.err != 0 ? reply.err : EPROTO,
                                        boost::system::generic_category());
  }
  co_return std::move(*got);
}

// Reads a made sandbox's first channel record from `received` within `timeout`: it must say
// that its runner waits for its run. The channel ends up in `channel` either way.
awaitable<boost::system::result<void>> await_running(boost::asio::any_io_executor io,
                                                     base::sys::UniqueFd& received,
                                                     base::sys::UniqueFd& channel,
                                                     std::chrono::milliseconds timeout,
                                                     std::string& why) {
  stream_descriptor sd(io, received.release());
  jail::ChannelRecord record;
  boost::asio::steady_timer timer(io, timeout);
  auto first = co_await (boost::asio::async_read(sd, boost::asio::buffer(&record, sizeof record),
                                                 as_tuple(use_awaitable)) ||
                         timer.async_wait(as_tuple(use_awaitable)));
  channel.reset(sd.release());
  if (first.index() != 0 || std::get<0>(std::get<0>(first))) {
    why = "its sandbox did not come up in time";
    co_return std::make_error_code(std::errc::timed_out);
  }
  if (record.kind != static_cast<std::int32_t>(jail::RecordKind::kRunning)) {
    why = record.kind == static_cast<std::int32_t>(jail::RecordKind::kSetupFailed)
              ? "sandbox setup failed: step " + std::to_string(record.step) + " #" +
                    std::to_string(record.index) + ": " + std::strerror(record.err)
              : "its sandbox said something unexpected";
    co_return protocol_error();
  }
  co_return boost::system::result<void>{};
}

}  // namespace

ZygotePool::ZygotePool(boost::asio::any_io_executor io, PoolOptions options, UidPool& uids)
    : io_(std::move(io)), options_(std::move(options)), uids_(uids), netns_(kMaxFreeNetns) {
  flavours_.push_back(Flavour{"minimal", {}, {}});
  if (!options_.preload.empty()) {
    std::string name;
    for (const auto& m : options_.preload) name += (name.empty() ? "" : "+") + m;
    flavours_.push_back(Flavour{name, options_.preload, {}});
  }
  for (std::size_t f = 0; f < flavours_.size(); ++f) {
    for (unsigned i = 0; i < std::max(1u, options_.per_flavour); ++i) {
      auto z = std::make_unique<Zygote>();
      z->flavour = f;
      z->taken = std::make_unique<boost::asio::steady_timer>(io_);
      zygotes_.push_back(std::move(z));
    }
  }
}

ZygotePool::~ZygotePool() {
  *alive_ = false;
  // jail::Child's destructor kills and reaps each zygote and each sandbox made ahead; closing the
  // control sockets first makes an idle zygote exit on its own.
  for (auto& z : zygotes_) {
    z->control.reset();
    z->ahead.clear();
  }
  zygotes_.clear();
}

void ZygotePool::start() {
  for (std::size_t i = 0; i < zygotes_.size(); ++i) {
    boost::asio::co_spawn(io_, supervise(alive_, i), boost::asio::detached);
  }
}

void ZygotePool::log(std::string_view event, const Zygote& z, std::string_view detail) const {
  boost::json::object line{{"flavour", flavours_[z.flavour].name},
                           {"pid", z.process ? z.process->pid() : -1},
                           {"state", state_name(static_cast<int>(z.state))},
                           {"restarts", z.restarts}};
  if (z.state == State::kReady && z.process) {
    line["preload_ms"] = z.preload_ms;
    line["layout"] = z.layout;
    line["huge_page_bytes"] = z.huge_page_bytes;
    line["rss_bytes"] = rss_bytes(z.process->pid());
  }
  if (!detail.empty()) line["detail"] = detail;
  base::log("pool", event, line);
}

boost::system::result<void> ZygotePool::launch(Zygote& z) {
  auto pair = base::sys::make_seqpacket_pair();
  if (!pair) return pair.error();
  base::sys::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull) return base::sys::last_errno();

  // execve's arrays, built before clone: the child only calls async-signal-safe functions. The
  // cold sandbox's interpreter and flags: the zygote is that same interpreter.
  std::vector<std::string> args{
      options_.python_path, "-I", "-B", "-u", "-c", read_text(options_.bootstrap_path)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = options_.env;
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();

  z.bound_files = bound_files();
  auto cloned = base::sys::clone3_pidfd(0, -1);
  if (!cloned) return cloned.error();
  if (cloned->pid == 0) {
    // The server's death ends the zygote (the parent-death signal survives execve); the
    // bootstrap then checks that the server did not die before this line.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(3);
    // dup2 clears O_CLOEXEC on the copies: only 0, 1, 2 and the control socket cross execve.
    if (::dup2(devnull.get(), 0) < 0 || ::dup2(devnull.get(), 1) < 0 ||
        ::dup2(pair->second.get(), zygote::kControlFd) < 0) {
      ::_exit(127);
    }
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  boost::json::object config = options_.config;
  boost::json::array preload;
  for (const auto& m : flavours_[z.flavour].preload) preload.emplace_back(m);
  config["preload"] = std::move(preload);
  config["parent_pid"] = parent;
  config["fault_exit_after_fork"] = options_.fault_exit_after_fork;
  const std::string text = boost::json::serialize(config);
  if (auto sent = base::sys::send_with_fds(pair->first.get(), std::as_bytes(std::span(text)), {});
      !sent || text.size() > zygote::kMaxConfigBytes) {
    base::sys::kill_and_reap(cloned->pidfd.get());
    return sent ? protocol_error() : sent.error();
  }
  if (auto nb = base::sys::set_nonblocking(pair->first.get()); !nb) {
    base::sys::kill_and_reap(cloned->pidfd.get());
    return nb.error();
  }
  z.process = std::make_unique<jail::Child>(io_, cloned->pid, std::move(cloned->pidfd));
  z.control = std::make_unique<stream_descriptor>(io_, pair->first.release());
  return {};
}

awaitable<boost::system::result<void>> ZygotePool::await_hello(Zygote& z) {
  if (!co_await readable_within(*z.control, options_.hello_timeout))
    co_return std::make_error_code(std::errc::timed_out);
  char buf[zygote::kMaxHelloBytes];
  auto got = base::sys::recv_with_fds(z.control->native_handle(),
                                      std::as_writable_bytes(std::span(buf, sizeof buf)));
  if (!got) co_return got.error();
  if (got->bytes == 0 || got->truncated || got->fd_count != 0) {
    z.last_error =
        got->bytes == 0 ? "exited before saying hello (see its stderr above)" : "malformed hello";
    co_return protocol_error();
  }
  boost::system::error_code ec;
  auto hello = boost::json::parse(std::string_view(buf, got->bytes), ec);
  if (ec || !hello.is_object()) {
    z.last_error = "malformed hello";
    co_return protocol_error();
  }
  const auto& obj = hello.as_object();
  const auto* ok = obj.if_contains("ok");
  if (ok == nullptr || !ok->is_bool() || !ok->as_bool()) {
    const auto* err = obj.if_contains("error");
    z.last_error = err != nullptr && err->is_string() ? std::string(err->as_string()) : "failed";
    co_return protocol_error();
  }
  if (const auto* ms = obj.if_contains("preload_ms"); ms != nullptr && ms->is_number())
    z.preload_ms = ms->to_number<double>();
  if (const auto* l = obj.if_contains("layout"); l != nullptr && l->is_string())
    z.layout = std::string(l->as_string());
  if (const auto* h = obj.if_contains("huge_page_bytes"); h != nullptr && h->is_number()) {
    boost::system::error_code conv;
    z.huge_page_bytes = h->to_number<std::uint64_t>(conv);
  }
  z.last_error.clear();
  co_return boost::system::result<void>{};
}

awaitable<boost::system::result<ZygotePool::Ahead>> ZygotePool::request_ahead(Zygote& z) {
  co_await boost::asio::this_coro::throw_if_cancelled(false);
  UidLease uid = uids_.acquire();
  if (!uid) {
    z.last_error = "no free sandbox uid";
    co_return std::make_error_code(std::errc::resource_unavailable_try_again);
  }
  // Listed as being made from now on (/healthz), until finish_ahead() is done with it: a process
  // of this uid may exist from the moment the request is sent.
  z.making_uids.push_back(uid.uid());
  struct Unlisted {
    Zygote& z;
    std::shared_ptr<bool> alive;
    uid_t uid;
    bool keep = false;
    ~Unlisted() {
      if (*alive && !keep) std::erase(z.making_uids, uid);
    }
  } listed{z, alive_, uid.uid()};
  zygote::PreforkRequest request;
  request.id = ++next_id_;
  request.host_uid = uid.uid();
  request.host_gid = uid.uid();

  // From the send on, a child of ours may exist that no jail::Child owns until the reply is read.
  ++preforks_in_flight_;
  struct InFlight {
    ZygotePool* pool;
    std::shared_ptr<bool> alive;
    ~InFlight() {
      if (!*alive) return;
      --pool->preforks_in_flight_;
      pool->sweep_orphans_when_idle();
    }
  } in_flight{this, alive_};

  zygote::PreforkReply reply;
  base::sys::UniqueFd reuse_netns = netns_.take();
  auto got = co_await prefork(*z.control, request, reuse_netns.get(), reply,
                              options_.prefork_timeout, z.last_error);
  reuse_netns.reset();  // the zygote has its own copy, or it is gone
  if (!got) co_return got.error();
  // Owned from here on: if anything below fails, its destructor kills and reaps it.
  Ahead ahead;
  ahead.init = std::make_unique<jail::Child>(io_, reply.pid, std::move(got->fds[0]));
  // One the zygote chose (not one the sandbox created in its own user namespace, over which it
  // had every capability): handed back for reuse once nothing of this sandbox is left.
  const auto network = static_cast<zygote::NetworkNamespace>(reply.network);
  if (network != zygote::NetworkNamespace::kOwn) {
    ++(network == zygote::NetworkNamespace::kReused ? netns_reused_ : netns_created_);
    ahead.network = netns_.lease_of(reply.pid);
  }
  ahead.channel = std::move(got->fds[1]);
  ahead.handover = std::move(got->fds[2]);
  ahead.uid = std::move(uid);
  listed.keep = true;  // finish_ahead() takes it off the list
  co_return ahead;
}

awaitable<void> ZygotePool::finish_ahead(std::shared_ptr<bool> alive, Zygote& z,
                                         std::uint64_t generation, Ahead ahead) {
  // Its runner says when it waits for its run (or its init, that a setup step failed).
  base::sys::UniqueFd received = std::move(ahead.channel);
  std::string why;
  auto up = co_await await_running(io_, received, ahead.channel, options_.prefork_timeout, why);
  if (!*alive) co_return;
  std::erase(z.making_uids, ahead.uid.uid());
  if (z.generation != generation || z.state != State::kReady) co_return;  // its zygote is gone
  if (!up) {
    // Not coming up in time or in protocol means the zygote is not trustworthy any more: its
    // keep_ahead() gives up on it and supervise() replaces it.
    z.last_error = why;
    z.failed = true;
  } else {
    z.ahead.push_back(std::move(ahead));
    ++z.made;
    wake_waiters(z.flavour);
  }
  z.taken->cancel();  // keep_ahead() counts again
}

awaitable<void> ZygotePool::keep_ahead(std::shared_ptr<bool> alive, Zygote& z) {
  co_await boost::asio::this_coro::throw_if_cancelled(false);
  for (;;) {
    // The zygote's own part (its fork and the reply) one at a time; the sandboxes' own setup,
    // up to options_.ahead of them, in parallel (finish_ahead).
    while (!z.failed && z.ahead.size() + z.making_uids.size() < options_.ahead) {
      auto requested = co_await request_ahead(z);
      if (!*alive) co_return;
      if ((co_await boost::asio::this_coro::cancellation_state).cancelled() !=
          boost::asio::cancellation_type::none) {
        co_return;
      }
      if (!requested) {
        z.failed = true;
        break;
      }
      boost::asio::co_spawn(io_, finish_ahead(alive, z, z.generation, std::move(*requested)),
                            boost::asio::detached);
    }
    if (z.failed) {
      // Not answering in time or in protocol means the zygote is not trustworthy any more:
      // replace it (supervise() restarts it).
      log("zygote_wedged", z, z.last_error);
      co_return;
    }
    z.taken->expires_at(std::chrono::steady_clock::time_point::max());
    auto [ec] = co_await z.taken->async_wait(as_tuple(use_awaitable));
    if (!*alive) co_return;
    // This coroutine itself was cancelled (its zygote exited): stop. Otherwise a sandbox was
    // taken or finished its setup (either cancels the timer): count again.
    const auto state = co_await boost::asio::this_coro::cancellation_state;
    if (state.cancelled() != boost::asio::cancellation_type::none) co_return;
    if (ec != boost::asio::error::operation_aborted || z.state != State::kReady) co_return;
  }
}

awaitable<void> ZygotePool::supervise(std::shared_ptr<bool> alive, std::size_t index) {
  std::chrono::milliseconds backoff = kFirstBackoff;
  for (;;) {
    Zygote& z = *zygotes_[index];
    z.state = State::kStarting;
    ++z.generation;  // what an earlier incarnation had under way is not this one's
    z.failed = false;
    z.making_uids.clear();
    const auto started = std::chrono::steady_clock::now();
    if (auto launched = launch(z); !launched) {
      z.last_error = "launch: " + launched.error().message();
      z.state = State::kDead;
      log("zygote_failed", z, z.last_error);
    } else {
      base::sys::Result<base::sys::ExitStatus> exited = boost::system::error_code{};
      auto hello = co_await await_hello(z);
      if (!*alive) co_return;
      if (hello) {
        z.state = State::kReady;
        log("zygote_ready", z);
        auto ended = co_await (z.process->async_wait_exit() || keep_ahead(alive, z));
        if (!*alive) co_return;
        if (ended.index() == 0) {
          exited = std::get<0>(std::move(ended));
        } else {
          z.process->kill();  // keep_ahead() gave up on it
        }
      } else {
        if (z.last_error.empty()) z.last_error = "hello: " + hello.error().message();
        log("zygote_failed", z, z.last_error);
        z.process->kill();
      }
      if (!z.process->reaped()) exited = co_await z.process->async_wait_exit();
      if (!*alive) co_return;
      const bool was_ready = z.state == State::kReady;
      z.state = State::kDead;
      z.control.reset();
      // Its sandboxes made ahead die with it: a zygote that failed may have made them badly.
      z.ahead.clear();
      std::string how = "exit status unknown";
      if (exited) {
        how = exited->signal != 0 ? "killed by signal " + std::to_string(exited->signal)
                                  : "exited with status " + std::to_string(exited->code);
      }
      if (was_ready && z.last_error.empty()) z.last_error = how;
      log("zygote_exit", z, how);
      sweep_pending_ = true;
      sweep_orphans_when_idle();
      // Spawns waiting for this flavour re-pick (another zygote, or the cold path).
      wake_waiters(z.flavour);
    }
    ++z.restarts;
    if (std::chrono::steady_clock::now() - started > kHealthyUptime) backoff = kFirstBackoff;
    boost::asio::steady_timer pause(io_, backoff);
    co_await pause.async_wait(as_tuple(use_awaitable));
    if (!*alive) co_return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void ZygotePool::sweep_orphans_when_idle() {
  if (!sweep_pending_ || preforks_in_flight_ != 0) return;
  sweep_pending_ = false;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream children(task.path() / "children");
    pid_t pid = 0;
    while (children >> pid) {
      if (jail::Child::is_watched(pid)) continue;
      auto pidfd = base::sys::pidfd_open(pid);
      if (!pidfd) continue;  // gone meanwhile
      base::log("pool", "orphan_reaped", {{"pid", pid}});
      base::sys::kill_and_reap(pidfd->get());
    }
  }
}

std::size_t ZygotePool::flavour_for(std::string_view script) const {
  for (std::size_t f = flavours_.size(); f-- > 1;) {
    for (const auto& m : flavours_[f].preload) {
      if (mentions(script, m)) return f;
    }
  }
  return 0;
}

std::vector<ZygotePool::BoundFile> ZygotePool::bound_files() const {
  std::vector<BoundFile> out;
  const auto* paths = options_.config.if_contains("ro_paths");
  if (paths == nullptr || !paths->is_array()) return out;
  for (const auto& p : paths->as_array()) {
    if (!p.is_string()) continue;
    struct stat st {};
    const std::string path(p.as_string());
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode))
      out.push_back({path, st.st_dev, st.st_ino});
  }
  return out;
}

bool ZygotePool::still_current(const std::vector<BoundFile>& files) {
  for (const auto& f : files) {
    struct stat st {};
    if (::stat(f.path.c_str(), &st) != 0 || st.st_dev != f.dev || st.st_ino != f.ino) return false;
  }
  return true;
}

ZygotePool::Zygote* ZygotePool::pick(std::size_t flavour) {
  for (auto& z : zygotes_) {
    if (z->flavour == flavour && z->state == State::kReady && !z->ahead.empty()) return z.get();
  }
  return nullptr;
}

void ZygotePool::wake_waiters(std::size_t flavour) {
  for (auto* w : flavours_[flavour].waiters) w->cancel();
}

awaitable<boost::system::result<PoolSpawned>> ZygotePool::spawn(std::string_view script,
                                                                const jail::Rlimits& limits,
                                                                const jail::RunFds& fds,
                                                                int cgroup_fd) {
  const std::size_t preferred = flavour_for(script);
  const std::shared_ptr<bool> alive = alive_;
  const auto give_up = std::chrono::steady_clock::now() + options_.take_timeout;
  Zygote* z = nullptr;
  for (;;) {
    z = pick(preferred);
    if (z != nullptr) break;
    bool coming = false;
    for (auto& other : zygotes_)
      coming |= other->flavour == preferred && other->state == State::kReady;
    if (!coming) {
      // None of this flavour is up: any sandbox beats a cold start (imports are lazy).
      for (std::size_t f = 0; f < flavours_.size() && z == nullptr; ++f) z = pick(f);
      if (z == nullptr) co_return std::make_error_code(std::errc::resource_unavailable_try_again);
      break;
    }
    if (std::chrono::steady_clock::now() >= give_up)
      co_return std::make_error_code(std::errc::timed_out);
    // The next sandbox of this flavour takes milliseconds: wait for it rather than import.
    boost::asio::steady_timer wake(io_, give_up);
    auto& waiters = flavours_[preferred].waiters;
    waiters.push_back(&wake);
    co_await wake.async_wait(as_tuple(use_awaitable));
    if (!*alive) co_return std::make_error_code(std::errc::operation_canceled);
    std::erase(waiters, &wake);
  }

  if (!still_current(z->bound_files)) {
    // A file of its root was replaced on the host: its sandboxes would see the old one. A new
    // zygote binds the current one; this run starts cold meanwhile.
    z->last_error = "a file of its sandboxes' root changed on the host";
    log("zygote_stale", *z, z->last_error);
    z->ahead.clear();
    z->process->kill();
    co_return boost::system::error_code(ESTALE, boost::system::generic_category());
  }
  Ahead ahead = std::move(z->ahead.front());
  z->ahead.pop_front();
  z->taken->cancel();  // the zygote makes the next one now, off this request's clock
  const std::string flavour = flavours_[z->flavour].name;
  if (ahead.init->exited()) {
    z->last_error = "a sandbox made ahead died while waiting";
    co_return std::make_error_code(std::errc::no_such_process);
  }
  if (cgroup_fd >= 0) {
    // Into the run's leaf before any of its code runs: init, then its runner (a process moves
    // alone; its children-to-be follow it).
    for (const pid_t pid : {ahead.init->pid(), runner_of(ahead.init->pid())}) {
      if (pid <= 0) co_return std::make_error_code(std::errc::no_such_process);
      if (auto moved =
              cgroups::fs::write_file_at(cgroup_fd, "<leaf>", "cgroup.procs", std::to_string(pid));
          !moved) {
        co_return boost::system::error_code(moved.error().code() != 0 ? moved.error().code() : EIO,
                                            boost::system::generic_category());
      }
    }
  }
  const zygote::RunMessage run = zygote::RunMessage::carrying(limits);
  const auto run_fds = fds.in_order();
  if (auto sent = base::sys::send_with_fds(ahead.handover.get(), std::as_bytes(std::span(&run, 1)),
                                           std::span<const int>(run_fds));
      !sent) {
    co_return sent.error();
  }
  ahead.handover.reset();
  ++z->spawned;
  PoolSpawned out;
  out.network = std::move(ahead.network);
  out.init = std::move(ahead.init);
  out.channel = std::move(ahead.channel);
  out.uid = std::move(ahead.uid);
  out.flavour = flavour;
  co_return out;
}

bool ZygotePool::ready() const {
  // A zygote that has made a sandbox ahead works; later takes only wait for its next one.
  for (std::size_t f = 0; f < flavours_.size(); ++f) {
    bool up = false;
    for (const auto& z : zygotes_)
      up |= z->flavour == f && z->state == State::kReady && z->made > 0;
    if (!up) return false;
  }
  return true;
}

PoolStats ZygotePool::stats() const {
  PoolStats counts;
  for (const auto& z : zygotes_) {
    counts.ready += z->state == State::kReady;
    counts.restarts += z->restarts;
  }
  return counts;  // busy stays 0: a zygote's fork is handed over within one event
}

boost::json::object ZygotePool::describe() const {
  boost::json::array list;
  for (const auto& z : zygotes_) {
    boost::json::object item{{"flavour", flavours_[z->flavour].name},
                             {"state", state_name(static_cast<int>(z->state))},
                             {"restarts", z->restarts},
                             {"spawned", z->spawned}};
    if (z->process && z->state != State::kDead) {
      item["pid"] = z->process->pid();
      item["rss_bytes"] = rss_bytes(z->process->pid());
    }
    if (z->state == State::kReady) {
      item["preload_ms"] = z->preload_ms;
      item["layout"] = z->layout;
      item["huge_page_bytes"] = z->huge_page_bytes;
    }
    // The one the next request of its flavour gets, and every uid made or being made ahead.
    if (!z->ahead.empty()) {
      const Ahead& next = z->ahead.front();
      item["sandbox_ahead"] =
          boost::json::object{{"pid", next.init->pid()}, {"uid", next.uid.uid()}};
    }
    boost::json::array ahead_uids, making_uids;
    for (const auto& a : z->ahead) ahead_uids.push_back(a.uid.uid());
    for (const uid_t uid : z->making_uids) making_uids.push_back(uid);
    item["sandboxes_ahead_uids"] = std::move(ahead_uids);
    item["sandboxes_making_uids"] = std::move(making_uids);
    if (!z->last_error.empty()) item["last_error"] = z->last_error;
    list.push_back(std::move(item));
  }
  boost::json::array flavours;
  for (const auto& f : flavours_) {
    boost::json::array mods;
    for (const auto& m : f.preload) mods.push_back(boost::json::string(m));
    flavours.push_back(boost::json::object{{"name", f.name}, {"preload", std::move(mods)}});
  }
  const PoolStats counts = stats();
  return {
      {"enabled", true},
      {"ready", counts.ready},
      {"busy", counts.busy},
      {"restarts", counts.restarts},
      {"flavours", flavours},
      {"zygotes", std::move(list)},
      {"network_namespaces",
       {{"created", netns_created_}, {"reused", netns_reused_}, {"free", netns_.free_count()}}}};
}

}  // namespace pysandbox::executor
