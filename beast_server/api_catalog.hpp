// Every error the HTTP API answers with, in one table: its `error_type`, HTTP status and what it
// means. The OpenAPI document (/openapi.json) is generated from it, and the tests drive the
// server to emit each entry (and nothing outside it), so the document and the server cannot
// drift apart.
#pragma once

#include <span>
#include <string_view>
#include <vector>

namespace pysandbox::beast_server {

// Who is at fault, and so what a client should do about it.
enum class ErrorClass {
  kRequest,  // the client's request is wrong: fix it, do not retry as is
  kScript,   // the script itself failed: `trace`, `stdout`, `stderr` say how
  kLimit,    // a limit stopped the script: raise the limit or do less
  kService,  // the service cannot answer now (retry) or failed (report request_id)
};

struct ErrorKind {
  std::string_view error_type;
  unsigned status;
  ErrorClass error_class;
  std::string_view meaning;
};

// In the order of the README's error table. An error_type may appear under several statuses
// (too_large: 413 for a body or script, 431 for a header).
std::span<const ErrorKind> error_catalog();

// The entry for (error_type, status), or nullptr if the server never answers that pair.
const ErrorKind* find_error_kind(std::string_view error_type, unsigned status);

// Distinct statuses, ascending; and the error types answered under one status.
std::vector<unsigned> error_statuses();
std::vector<std::string_view> error_types_for_status(unsigned status);
// Distinct error types, in catalog order.
std::vector<std::string_view> error_types();

std::string_view to_string(ErrorClass error_class);

}  // namespace pysandbox::beast_server
