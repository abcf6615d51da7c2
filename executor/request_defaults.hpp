// The defaults and caps of what a run may ask for, written once: the server's Config (its flags,
// --help and the README's table), its RequestLimits and ExecuteRequest all start from these.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pysandbox::executor {

inline constexpr std::size_t kDefaultMaxScriptBytes = 256u << 10;
inline constexpr unsigned kDefaultTimeoutMs = 5000;
inline constexpr unsigned kDefaultMaxTimeoutMs = 30000;
inline constexpr unsigned kDefaultMemoryMb = 256;
inline constexpr unsigned kDefaultMaxMemoryMb = 2048;

}  // namespace pysandbox::executor
