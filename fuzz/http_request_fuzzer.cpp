// libFuzzer entry point over the HTTP request path (http_request_harness.hpp). Built and run by
// fuzz/run.sh with clang, AddressSanitizer and UndefinedBehaviorSanitizer.
#include <cstdio>
#include <cstdlib>

#include "fuzz/http_request_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string problem = pysandbox::fuzz::check_http_request(data, size);
  if (!problem.empty()) {
    std::fprintf(stderr, "http_request_fuzzer: %s\n", problem.c_str());
    std::abort();
  }
  return 0;
}
