#include "executor/zygote_pool.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "jail/sys/fd_passing.hpp"
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

const char* state_name(int s) {
  static const char* const kNames[] = {"starting", "ready", "busy", "dead"};
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

}  // namespace

ZygotePool::ZygotePool(boost::asio::any_io_executor io, PoolOptions options)
    : io_(std::move(io)), options_(std::move(options)) {
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
      zygotes_.push_back(std::move(z));
    }
  }
}

ZygotePool::~ZygotePool() {
  *alive_ = false;
  // jail::Child's destructor kills and reaps each zygote; closing the control sockets first
  // makes an idle zygote exit on its own.
  for (auto& z : zygotes_) z->control.reset();
  zygotes_.clear();
}

void ZygotePool::start() {
  for (std::size_t i = 0; i < zygotes_.size(); ++i) {
    boost::asio::co_spawn(io_, supervise(alive_, i), boost::asio::detached);
  }
}

void ZygotePool::log(std::string_view event, const Zygote& z, std::string_view detail) const {
  boost::json::object line{{"event", event},
                           {"flavour", flavours_[z.flavour].name},
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
  std::cerr << boost::json::serialize(line) << std::endl;
}

boost::system::result<void> ZygotePool::launch(Zygote& z) {
  auto pair = jail::sys::make_seqpacket_pair();
  if (!pair) return pair.error();
  jail::sys::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull) return jail::sys::last_errno();

  // execve's arrays, built before clone: the child only calls async-signal-safe functions.
  std::vector<std::string> args{options_.zygote_path};
  args.insert(args.end(), options_.base_args.begin(), options_.base_args.end());
  for (const auto& m : flavours_[z.flavour].preload) {
    args.push_back("--preload");
    args.push_back(m);
  }
  args.push_back("--parent-pid");
  args.push_back(std::to_string(::getpid()));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = options_.env;
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  auto cloned = jail::sys::clone3_pidfd(0, -1);
  if (!cloned) return cloned.error();
  if (cloned->pid == 0) {
    // dup2 clears O_CLOEXEC on the copies: only 0, 1, 2 and the control socket cross execve.
    if (::dup2(devnull.get(), 0) < 0 || ::dup2(devnull.get(), 1) < 0 ||
        ::dup2(pair->second.get(), zygote::kControlFd) < 0) {
      ::_exit(127);
    }
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  if (auto nb = jail::sys::set_nonblocking(pair->first.get()); !nb) {
    jail::sys::kill_and_reap(cloned->pidfd.get());
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
  auto got = jail::sys::recv_with_fds(z.control->native_handle(),
                                      std::as_writable_bytes(std::span(buf, sizeof buf)));
  if (!got) co_return got.error();
  if (got->bytes == 0 || got->truncated || got->fd_count != 0) {
    z.last_error =
        got->bytes == 0 ? "exited before saying hello (see its stderr above)" : "malformed hello";
    co_return std::make_error_code(std::errc::protocol_error);
  }
  boost::system::error_code ec;
  auto hello = boost::json::parse(std::string_view(buf, got->bytes), ec);
  if (ec || !hello.is_object()) {
    z.last_error = "malformed hello";
    co_return std::make_error_code(std::errc::protocol_error);
  }
  const auto& obj = hello.as_object();
  const auto* ok = obj.if_contains("ok");
  if (ok == nullptr || !ok->is_bool() || !ok->as_bool()) {
    const auto* err = obj.if_contains("error");
    z.last_error = err != nullptr && err->is_string() ? std::string(err->as_string()) : "failed";
    co_return std::make_error_code(std::errc::protocol_error);
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

awaitable<void> ZygotePool::supervise(std::shared_ptr<bool> alive, std::size_t index) {
  std::chrono::milliseconds backoff = kFirstBackoff;
  for (;;) {
    Zygote& z = *zygotes_[index];
    z.state = State::kStarting;
    const auto started = std::chrono::steady_clock::now();
    if (auto launched = launch(z); !launched) {
      z.last_error = "launch: " + launched.error().message();
      z.state = State::kDead;
      log("zygote_failed", z, z.last_error);
    } else {
      auto hello = co_await await_hello(z);
      if (!*alive) co_return;
      if (hello) {
        z.state = State::kReady;
        log("zygote_ready", z);
        // A spawn may be waiting for this flavour.
        auto& waiters = flavours_[z.flavour].waiters;
        if (!waiters.empty()) waiters.front()->cancel();
      } else {
        if (z.last_error.empty()) z.last_error = "hello: " + hello.error().message();
        log("zygote_failed", z, z.last_error);
        z.process->kill();
      }
      auto exited = co_await z.process->async_wait_exit();
      if (!*alive) co_return;
      const bool was_ready = z.state == State::kReady || z.state == State::kBusy;
      z.state = State::kDead;
      z.control.reset();
      std::string how = "exit status unknown";
      if (exited) {
        how = exited->signal != 0 ? "killed by signal " + std::to_string(exited->signal)
                                  : "exited with status " + std::to_string(exited->code);
      }
      if (was_ready) z.last_error = how;
      log("zygote_exit", z, how);
      sweep_pending_ = true;
      sweep_orphans_when_idle();
      // Spawns waiting for this flavour re-pick (another zygote, or the cold path).
      for (auto* w : flavours_[z.flavour].waiters) w->cancel();
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
  if (!sweep_pending_ || spawns_in_flight_ != 0) return;
  sweep_pending_ = false;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream children(task.path() / "children");
    pid_t pid = 0;
    while (children >> pid) {
      if (jail::Child::is_watched(pid)) continue;
      auto pidfd = jail::sys::pidfd_open(pid);
      if (!pidfd) continue;  // gone meanwhile
      std::cerr << boost::json::serialize(
                       boost::json::object{{"event", "orphan_reaped"}, {"pid", pid}})
                << std::endl;
      jail::sys::kill_and_reap(pidfd->get());
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

ZygotePool::Zygote* ZygotePool::pick(std::size_t flavour) {
  for (auto& z : zygotes_) {
    if (z->flavour == flavour && z->state == State::kReady) return z.get();
  }
  return nullptr;
}

void ZygotePool::release(Zygote& z) {
  if (z.state == State::kBusy) z.state = State::kReady;
  auto& waiters = flavours_[z.flavour].waiters;
  if (!waiters.empty()) waiters.front()->cancel();
}

awaitable<boost::system::result<PoolSpawned>> ZygotePool::spawn(std::string_view script,
                                                                const jail::RunParams& params,
                                                                int setup_error_fd) {
  const std::size_t preferred = flavour_for(script);
  const std::shared_ptr<bool> alive = alive_;
  Zygote* z = nullptr;
  for (;;) {
    z = pick(preferred);
    if (z != nullptr) break;
    bool busy = false;
    for (auto& other : zygotes_)
      busy |= other->flavour == preferred && other->state == State::kBusy;
    if (!busy) {
      // None of this flavour is up: any ready zygote beats a cold start (imports are lazy).
      for (std::size_t f = 0; f < flavours_.size() && z == nullptr; ++f) z = pick(f);
      if (z == nullptr) co_return std::make_error_code(std::errc::resource_unavailable_try_again);
      break;
    }
    // A fork takes milliseconds: wait for this flavour rather than import from scratch.
    boost::asio::steady_timer wake(io_, std::chrono::steady_clock::time_point::max());
    auto& waiters = flavours_[preferred].waiters;
    waiters.push_back(&wake);
    co_await wake.async_wait(as_tuple(use_awaitable));
    if (!*alive) co_return std::make_error_code(std::errc::operation_canceled);
    std::erase(waiters, &wake);
  }

  z->state = State::kBusy;
  zygote::SpawnRequest request;
  request.id = ++next_id_;
  request.host_uid = params.host_uid;
  request.host_gid = params.host_gid;
  request.address_space = params.limits.address_space;
  request.cpu_seconds = params.limits.cpu_seconds;
  request.processes = params.limits.processes;
  request.open_files = params.limits.open_files;
  request.file_size = params.limits.file_size;
  int fds[zygote::kRunFds + 1];
  for (std::size_t i = 0; i < 5; ++i) fds[i] = params.fds[i];
  fds[5] = setup_error_fd;
  std::size_t nfds = zygote::kRunFds;
  if (params.cgroup_fd >= 0) {
    request.has_cgroup = 1;
    fds[nfds++] = params.cgroup_fd;
  }
  jail::Child* const process = z->process.get();

  // From the send on, a child of ours may exist until its pidfd is in hand.
  ++spawns_in_flight_;
  struct InFlight {
    ZygotePool* pool;
    std::shared_ptr<bool> alive;
    ~InFlight() {
      if (!*alive) return;
      --pool->spawns_in_flight_;
      pool->sweep_orphans_when_idle();
    }
  } in_flight{this, alive};

  auto fail = [&](std::string why) -> boost::system::error_code {
    sweep_pending_ = true;
    // Not answering in time or in protocol means the zygote is not trustworthy any more:
    // replace it (the supervisor restarts it).
    z->last_error = why;
    log("zygote_wedged", *z, why);
    process->kill();
    return std::make_error_code(std::errc::protocol_error);
  };

  if (auto sent = jail::sys::send_with_fds(z->control->native_handle(),
                                           std::as_bytes(std::span(&request, 1)),
                                           std::span<const int>(fds, nfds));
      !sent) {
    co_return fail("send: " + sent.error().message());
  }
  const bool answered = co_await readable_within(*z->control, options_.spawn_timeout);
  // The zygote may have died and been replaced meanwhile: then touch nothing of it.
  if (!*alive || z->process.get() != process || !z->control) {
    sweep_pending_ = true;
    co_return std::make_error_code(std::errc::operation_canceled);
  }
  if (!answered) co_return fail("no answer within the spawn timeout");

  zygote::SpawnReply reply;
  auto got = jail::sys::recv_with_fds(z->control->native_handle(),
                                      std::as_writable_bytes(std::span(&reply, 1)));
  if (!got) co_return fail("recv: " + got.error().message());
  if (got->bytes == 0) co_return fail("closed its socket");
  if (got->truncated || got->bytes != sizeof reply || reply.magic != zygote::kMagic ||
      reply.id != request.id) {
    co_return fail("malformed reply");
  }
  if (reply.pid <= 0 || got->fd_count != 1) {
    release(*z);
    co_return boost::system::error_code(reply.err != 0 ? reply.err : EPROTO,
                                        boost::system::generic_category());
  }
  ++z->spawned;
  PoolSpawned out;
  out.pid = reply.pid;
  out.pidfd = std::move(got->fds[0]);
  out.flavour = flavours_[z->flavour].name;
  release(*z);
  co_return out;
}

bool ZygotePool::ready() const {
  for (std::size_t f = 0; f < flavours_.size(); ++f) {
    bool up = false;
    for (const auto& z : zygotes_)
      up |= z->flavour == f && (z->state == State::kReady || z->state == State::kBusy);
    if (!up) return false;
  }
  return true;
}

boost::json::object ZygotePool::describe() const {
  boost::json::array list;
  unsigned ready = 0, busy = 0, restarts = 0;
  for (const auto& z : zygotes_) {
    boost::json::object item{{"flavour", flavours_[z->flavour].name},
                             {"state", state_name(static_cast<int>(z->state))},
                             {"restarts", z->restarts},
                             {"spawned", z->spawned}};
    if (z->process && z->state != State::kDead) {
      item["pid"] = z->process->pid();
      item["rss_bytes"] = rss_bytes(z->process->pid());
    }
    if (z->state == State::kReady || z->state == State::kBusy) {
      item["preload_ms"] = z->preload_ms;
      item["layout"] = z->layout;
      item["huge_page_bytes"] = z->huge_page_bytes;
    }
    if (!z->last_error.empty()) item["last_error"] = z->last_error;
    ready += z->state == State::kReady;
    busy += z->state == State::kBusy;
    restarts += z->restarts;
    list.push_back(std::move(item));
  }
  boost::json::array flavours;
  for (const auto& f : flavours_) {
    boost::json::array mods;
    for (const auto& m : f.preload) mods.push_back(boost::json::string(m));
    flavours.push_back(boost::json::object{{"name", f.name}, {"preload", std::move(mods)}});
  }
  return {{"enabled", true},      {"ready", ready},       {"busy", busy},
          {"restarts", restarts}, {"flavours", flavours}, {"zygotes", std::move(list)}};
}

}  // namespace pysandbox::executor
