// Every sandbox's first process (pid 1 of its PID namespace, or a child subreaper without one):
// a few lines of C that start the runner, reap every process of the sandbox, and report.
//
// Why a separate init rather than the script's interpreter as pid 1: an init reaps the orphans,
// so the CPU and peak memory of every process the script made end up in one rusage (the kernel
// drops what a PID namespace's zombies used when their init dies without reaping them); it ends
// every leftover process as soon as the script's own process exits; it stops the sandbox on the
// server's request while still accounting for it; and the script is an ordinary process (pid 2),
// whose signals to itself behave as anywhere else.
//
// The channel: a pipe whose write end only init (and the runner, until it starts the script)
// holds, and whose read end the server reads. Fixed-size records, each written whole (shorter
// than PIPE_BUF, so atomic); EOF when init exits.
#pragma once

#include <sys/types.h>

#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jail/sandbox_channel.hpp"

namespace pysandbox::jail {

// Async-signal-safe: one write(2) of the whole record.
void write_record(int channel, const ChannelRecord& record) noexcept;
// A kSetupFailed record: the spawner's `step`, which operation of it (`index`), errno `err`.
void write_setup_failed(int channel, std::int32_t step, std::int32_t index,
                        std::int32_t err) noexcept;

// Installs init's handler for kStopSignal (no SA_RESTART: it interrupts the wait). Before the
// runner is started, so that a stop request can never be lost; the runner resets it.
void install_stop_handler() noexcept;
// The runner's side: kStopSignal back to its default action.
void reset_stop_handler() noexcept;

// init as its own small program (pysandbox-init, jail/init/init.cpp), so that nothing of the
// server's or a zygote's memory stays in the sandbox, and the script sees the same pid 1 on every
// start path. Async-signal-safe; each returns only if execveat fails (-errno).
//
// Cold start: init execs first and then starts the runner itself, so that the
// script never sees anything but pysandbox-init as its parent: `path`, `argv` and `envp` are the
// runner's, `exec_step` the spawner's step number for a failed execve of it. At most
// kMaxRunnerArgs arguments.
int exec_init_then_runner(int init_fd, int channel, KillScope scope, std::int32_t exec_step,
                          const char* path, const char* const* argv,
                          const char* const* envp) noexcept;
// Warm start: the runner exists already (a forked interpreter that waits for its run).
int exec_init(int init_fd, pid_t runner, int channel, KillScope scope) noexcept;

// The server's side: records decoded from what the channel held (a trailing partial record is
// ignored).
struct ChannelReport {
  std::optional<ChannelRecord> setup_failed;
  bool running = false;
  std::optional<ChannelRecord> exited;
};
ChannelReport decode_channel(std::string_view bytes);

// Reads `channel` to EOF, blocking (startup probes only), and decodes it.
ChannelReport read_channel_blocking(int channel);

// "exited with status 3", "killed by SIGSEGV": a wait status in words.
std::string describe_wait_status(int status);

}  // namespace pysandbox::jail
