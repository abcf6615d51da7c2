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

}  // namespace

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

void collect_fds_in_flight() noexcept { base::sys::release_unix_socket(); }

awaitable<Supervised> supervise(SandboxProcess& sandbox, RunStreams streams,
                                const SuperviseLimits& limits, CancelSignal* cancel) {
  auto io = co_await boost::asio::this_coro::executor;
  Supervised s(limits);
  s.started = s.executing = s.exited = Clock::now();

  stream_descriptor out(io, streams.out.release());
  stream_descriptor err(io, streams.err.release());
  stream_descriptor result(io, streams.result.release());
  stream_descriptor channel(io, streams.channel.release());
  boost::asio::steady_timer deadline(io, limits.timeout);
  boost::asio::steady_timer grace(io, Clock::time_point::max());
  boost::asio::steady_timer backstop(io, Clock::time_point::max());
  bool ended = false;    // the main process exited
  int open_streams = 4;  // until 0, the grace after the end may cut them

  // Asks the sandbox to end; if it has not within the grace, ends it by force.
  bool kill_requested = false;
  auto kill_sandbox = [&] {
    sandbox.kill();
    if (kill_requested || ended) return;
    kill_requested = true;
    backstop.expires_after(limits.kill_grace);  // wakes watch_backstop
  };
  auto watch_backstop = [&]() -> awaitable<void> {
    while (!ended) {
      auto [ec] = co_await backstop.async_wait(as_tuple(use_awaitable));
      if (!ec && !ended) {
        sandbox.force_kill();
        co_return;
      }
    }
  };
  auto on_output_overflow = [&] {
    if (limits.truncate_output) return;
    s.output_limited = true;
    kill_sandbox();
  };
  // The result channel is never truncated: a cut JSON document would be useless.
  auto on_result_overflow = [&] {
    s.output_limited = true;
    kill_sandbox();
  };
  auto watch = [&](stream_descriptor& sd, BoundedBuffer& buf,
                   std::function<void()> on_overflow) -> awaitable<void> {
    co_await drain(sd, buf, std::move(on_overflow));
    if (--open_streams == 0) grace.cancel();
  };
  // The channel: "running" marks the end of the setup (cold starts; a warm sandbox was running
  // before its run was handed over).
  auto watch_channel = [&]() -> awaitable<void> {
    std::array<char, 256> chunk;
    for (;;) {
      auto [ec, n] =
          co_await channel.async_read_some(boost::asio::buffer(chunk), as_tuple(use_awaitable));
      if (n > 0) {
        s.channel.append(std::string_view(chunk.data(), n));
        if (!s.report.running && jail::decode_channel(s.channel.data()).running) {
          s.report.running = true;
          s.executing = Clock::now();
        }
      }
      if (ec) break;
    }
    if (--open_streams == 0) grace.cancel();
  };
  auto watch_exit = [&]() -> awaitable<void> {
    s.exit = co_await sandbox.wait_exit();
    s.exited = Clock::now();
    ended = true;
    deadline.cancel();
    backstop.cancel();
    if (!s.exit) sandbox.force_kill();
    co_await sandbox.wait_gone();
    // Every process of the sandbox is gone: a write end still open now is an fd in flight.
    collect_fds_in_flight();
    if (open_streams == 0) co_return;
    grace.expires_after(limits.drain_grace);
    auto [ec] = co_await grace.async_wait(as_tuple(use_awaitable));
    if (ec || open_streams == 0) co_return;  // every stream reached EOF
    s.streams_cut = true;
    // drain() reads what is buffered before it returns.
    for (auto* sd : {&out, &err, &result, &channel}) sd->cancel();
  };
  auto watch_deadline = [&]() -> awaitable<void> {
    // The operands below start in order: a sandbox that was already gone when watch_exit looked
    // found no wait to cancel here, and this one would last the whole timeout.
    if (ended) co_return;
    auto [ec] = co_await deadline.async_wait(as_tuple(use_awaitable));
    if (!ec && !ended) {
      s.timed_out = true;
      kill_sandbox();
    }
  };

  if (cancel != nullptr) {
    cancel->on_cancel([&] {
      if (ended) return;  // nothing left to stop
      s.cancelled = true;
      kill_sandbox();
    });
  }
  co_await (watch(out, s.out, on_output_overflow) && watch(err, s.err, on_output_overflow) &&
            watch(result, s.result, on_result_overflow) && watch_channel() && watch_exit() &&
            watch_deadline() && watch_backstop());
  if (cancel != nullptr) cancel->clear();
  out.close();
  err.close();
  result.close();
  channel.close();
  const bool running = s.report.running;
  s.report = jail::decode_channel(s.channel.data());
  s.report.running = running;

  s.cgroup = sandbox.stats();
  co_await sandbox.teardown();
  s.done = Clock::now();
  co_return s;
}

}  // namespace pysandbox::executor
