// Direct cgroupfs I/O (the few reads and writes libcgroup does not cover: cgroup.kill,
// cgroup.events, memory.peak, memory.events, cpu.stat, pids.events, and the delegation steps) and
// the parsers for the kernel's file formats (Documentation/admin-guide/cgroup-v2.rst, "Interface
// Files"). Every fd is opened O_CLOEXEC and owned by a UniqueFd.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/sys/unique_fd.hpp"
#include "cgroups/error.hpp"

namespace pysandbox::cgroups::fs {

using base::sys::UniqueFd;

// "<dir>/<name>" without doubling the slash.
std::string join(std::string_view dir, std::string_view name);

// O_RDONLY | O_DIRECTORY | O_CLOEXEC.
Result<UniqueFd> open_dir(const std::string& path);
Result<UniqueFd> open_dir_at(int dir_fd, std::string_view dir_path, const std::string& name);

// Whole small file (cgroup interface files are a few hundred bytes). `dir_path` only names the
// file in error messages.
Result<std::string> read_file(const std::string& path);
Result<std::string> read_file_at(int dir_fd, std::string_view dir_path, const char* name);

// One write(2) of `value` (cgroupfs parses each write as a whole; no trailing newline needed).
Result<void> write_file(const std::string& path, std::string_view value);
Result<void> write_file_at(int dir_fd, std::string_view dir_path, const char* name,
                           std::string_view value);

bool exists_at(int dir_fd, const char* name);

// Names of the subdirectories of `dir_fd` (child cgroups), without "." and "..".
Result<std::vector<std::string>> list_subdirs(int dir_fd, std::string_view dir_path);

// --- parsers -------------------------------------------------------------------------------------

// Space-separated keywords ("cgroup.controllers", "cgroup.subtree_control").
std::vector<std::string> split_words(std::string_view text);
bool has_word(std::string_view text, std::string_view word);

// Value of `key` in a flat-keyed file ("key value\n" lines: memory.events, cpu.stat,
// pids.events, cgroup.events). nullopt if the key is absent or the value is not a number.
std::optional<std::uint64_t> flat_keyed_value(std::string_view text, std::string_view key);

// A single unsigned number (memory.peak, memory.current); "max" is not accepted.
std::optional<std::uint64_t> parse_u64(std::string_view text);

}  // namespace pysandbox::cgroups::fs
