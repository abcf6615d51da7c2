#include "executor/supervise.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>

namespace pysandbox::executor {

namespace {

using boost::asio::as_tuple;
using boost::asio::awaitable;
using boost::asio::use_awaitable;
using boost::asio::posix::stream_descriptor;
using namespace boost::asio::experimental::awaitable_operators;

// One supervise() call: the run's streams and timers and what was seen so far, shared by the
// watchers that run concurrently on the io_context's one thread.
class Supervision {
 public:
  Supervision(boost::asio::any_io_executor io, SandboxProcess& sandbox, RunStreams streams,
              const SuperviseLimits& limits)
      : sandbox_(sandbox),
        limits_(limits),
        s_(limits),
        out_(io, streams.out.release()),
        err_(io, streams.err.release()),
        result_(io, streams.result.release()),
        channel_(io, streams.channel.release()),
        deadline_(io, limits.timeout),
        grace_(io, Clock::time_point::max()),
        backstop_(io, Clock::time_point::max()) {
    s_.started = s_.executing = s_.exited = Clock::now();
  }

  awaitable<Supervised> run(CancelSignal* cancel) {
    if (cancel != nullptr) {
      cancel->on_cancel([this] {
        if (ended_) return;  // nothing left to stop
        s_.cancelled = true;
        kill_sandbox();
      });
    }
    co_await (watch(out_, s_.out, &Supervision::on_output_overflow) &&
              watch(err_, s_.err, &Supervision::on_output_overflow) &&
              watch(result_, s_.result, &Supervision::on_result_overflow) && watch_channel() &&
              watch_exit() && watch_deadline() && watch_backstop());
    if (cancel != nullptr) cancel->clear();
    close_streams();
    const bool running = s_.report.running;
    s_.report = jail::decode_channel(s_.channel.data());
    s_.report.running = running;

    s_.cgroup = sandbox_.stats();
    co_await sandbox_.teardown();
    s_.done = Clock::now();
    co_return std::move(s_);
  }

 private:
  // Asks the sandbox to end; if it has not within the grace, ends it by force.
  void kill_sandbox() {
    sandbox_.kill();
    if (kill_requested_ || ended_) return;
    kill_requested_ = true;
    backstop_.expires_after(limits_.kill_grace);  // wakes watch_backstop
  }

  void on_output_overflow() {
    if (limits_.truncate_output) return;
    s_.output_limited = true;
    kill_sandbox();
  }
  // The result channel is never truncated: a cut JSON document would be useless.
  void on_result_overflow() {
    s_.output_limited = true;
    kill_sandbox();
  }

  void stream_closed() {
    if (--open_streams_ == 0) grace_.cancel();
  }

  awaitable<void> watch(stream_descriptor& sd, BoundedBuffer& buf,
                        void (Supervision::*on_overflow)()) {
    co_await drain(sd, buf, [this, on_overflow] { (this->*on_overflow)(); });
    stream_closed();
  }

  // The channel: "running" marks the end of the setup (cold starts; a warm sandbox was running
  // before its run was handed over).
  awaitable<void> watch_channel() {
    std::array<char, 256> chunk;
    for (;;) {
      auto [ec, n] =
          co_await channel_.async_read_some(boost::asio::buffer(chunk), as_tuple(use_awaitable));
      if (n > 0) {
        s_.channel.append(std::string_view(chunk.data(), n));
        if (!s_.report.running && jail::decode_channel(s_.channel.data()).running) {
          s_.report.running = true;
          s_.executing = Clock::now();
        }
      }
      if (ec) break;
    }
    stream_closed();
  }

  awaitable<void> watch_exit() {
    s_.exit = co_await sandbox_.wait_exit();
    s_.exited = Clock::now();
    ended_ = true;
    deadline_.cancel();
    backstop_.cancel();
    if (!s_.exit) sandbox_.force_kill();
    co_await sandbox_.wait_gone();
    // Every process of the sandbox is gone: a write end still open now is an fd in flight.
    collect_fds_in_flight();
    if (open_streams_ == 0) co_return;
    grace_.expires_after(limits_.drain_grace);
    auto [ec] = co_await grace_.async_wait(as_tuple(use_awaitable));
    if (ec || open_streams_ == 0) co_return;  // every stream reached EOF
    s_.streams_cut = true;
    // drain() reads what is buffered before it returns.
    for (auto* sd : {&out_, &err_, &result_, &channel_}) sd->cancel();
  }

  awaitable<void> watch_deadline() {
    // The operands of run()'s wait start in order: a sandbox that was already gone when
    // watch_exit looked found no wait to cancel here, and this one would last the whole timeout.
    if (ended_) co_return;
    auto [ec] = co_await deadline_.async_wait(as_tuple(use_awaitable));
    if (!ec && !ended_) {
      s_.timed_out = true;
      kill_sandbox();
    }
  }

  awaitable<void> watch_backstop() {
    while (!ended_) {
      auto [ec] = co_await backstop_.async_wait(as_tuple(use_awaitable));
      if (!ec && !ended_) {
        sandbox_.force_kill();
        co_return;
      }
    }
  }

  void close_streams() {
    out_.close();
    err_.close();
    result_.close();
    channel_.close();
  }

  SandboxProcess& sandbox_;
  const SuperviseLimits& limits_;
  Supervised s_;
  stream_descriptor out_, err_, result_, channel_;
  boost::asio::steady_timer deadline_, grace_, backstop_;
  bool ended_ = false;    // the main process exited
  int open_streams_ = 4;  // until 0, the grace after the end may cut them
  bool kill_requested_ = false;
};

}  // namespace

void collect_fds_in_flight() noexcept { base::sys::release_unix_socket(); }

awaitable<Supervised> supervise(SandboxProcess& sandbox, RunStreams streams,
                                const SuperviseLimits& limits, CancelSignal* cancel) {
  Supervision supervision(co_await boost::asio::this_coro::executor, sandbox, std::move(streams),
                          limits);
  co_return co_await supervision.run(cancel);
}

awaitable<Supervised> supervise_run(SandboxProcess& sandbox, RunIo io, base::sys::UniqueFd channel,
                                    const ExecuteRequest& request, const Settings& settings) {
  RunStreams streams{std::move(io.out.read), std::move(io.err.read), std::move(io.result.read),
                     std::move(channel)};
  io = RunIo{};
  SuperviseLimits limits;
  limits.timeout = request.timeout;
  limits.max_output_bytes = settings.max_output_bytes;
  limits.truncate_output = settings.truncate_output;
  co_return co_await supervise(sandbox, std::move(streams), limits, request.cancel.get());
}

}  // namespace pysandbox::executor
