// Configuration that names things the host must have is checked before the server starts, so
// that a typo fails at once with one clear line instead of a server that reports ok and then
// fails every request (or restarts a zygote forever).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "beast_server/config.hpp"

namespace pysandbox::beast_server {

// Each missing --extra-ro-paths entry, or nullopt.
std::optional<std::string> check_extra_ro_paths(const std::vector<std::string>& paths);

// Asks `python` (-I, isolated mode) whether each of `modules` can be found
// (importlib.util.find_spec; a dotted name imports its parent packages, which is operator
// configuration, not user code). The sentence naming what is missing, or why the check could
// not run, or nullopt. Waits at most `timeout` for the interpreter.
std::optional<std::string> check_preload(const std::string& python,
                                         const std::vector<std::string>& modules,
                                         std::chrono::milliseconds timeout);

// The checks that apply to `config` (the preload list only with the warm pool on, where it is
// used).
std::optional<std::string> check_startup_config(const Config& config);

}  // namespace pysandbox::beast_server
