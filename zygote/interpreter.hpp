// The zygote's embedded CPython: started once, preloaded, then only forked.
#pragma once

#include <string>
#include <vector>

namespace pysandbox::zygote {

struct InterpreterOptions {
  std::string python_path;     // the interpreter the cold path runs (sys.executable, prefix)
  std::string bootstrap_path;  // zygote.py
  std::string runner_path;     // runner.py
  std::vector<std::string> preload;
};

// Initialises the interpreter (isolated, unbuffered, no bytecode writes: the cold path's
// `python3 -I -B -u`), loads the runner and the preloads. Returns the hello record (JSON text),
// {"ok": false, "error": ...} on failure.
std::string start_interpreter(const InterpreterOptions& options);

// {"ok": false, "error": "<what>"}, `what` escaped for JSON: the hello of a zygote that failed.
std::string error_hello(const std::string& what);

// Around each fork (PyOS_BeforeFork/AfterFork_Parent: the import lock and at-fork hooks).
void before_fork() noexcept;
void after_fork_parent() noexcept;

// In the sandboxed child: at-fork hooks (random reseeds), then the runner; never returns.
[[noreturn]] void run_child() noexcept;

}  // namespace pysandbox::zygote
