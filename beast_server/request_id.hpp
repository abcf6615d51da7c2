// X-Request-Id: the client's id when it is safe to echo into headers and logs, else a fresh one.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pysandbox::beast_server {

inline constexpr std::size_t kMaxRequestIdLength = 128;

// 1..128 characters of [A-Za-z0-9._-]: nothing that could split a header or a log line.
bool is_valid_request_id(std::string_view id);

// 16 lowercase hex characters from the kernel's CSPRNG: ids must not be guessable from one
// another (they are handed to clients and appear in logs).
std::string generate_request_id();

// The client's id if valid, else a generated one.
std::string choose_request_id(std::string_view from_client);

}  // namespace pysandbox::beast_server
