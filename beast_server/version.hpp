// The service's version, set by CMake from the project version.
#pragma once

#include <string_view>

#ifndef PYSANDBOX_VERSION
#define PYSANDBOX_VERSION "dev"
#endif

namespace pysandbox::beast_server {

inline constexpr std::string_view kVersion = PYSANDBOX_VERSION;

}  // namespace pysandbox::beast_server
