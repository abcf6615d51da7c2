// A request refused before it reached the executor: the HTTP status, the contract's error_type
// and a sentence for the client.
#pragma once

#include <string>

namespace pysandbox::beast_server {

struct ApiError {
  unsigned status = 400;
  std::string error_type;
  std::string message;
};

}  // namespace pysandbox::beast_server
