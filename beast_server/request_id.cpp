#include "beast_server/request_id.hpp"

#include <sys/random.h>

#include <array>
#include <cstdint>
#include <random>

namespace pysandbox::beast_server {

bool is_valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  for (const char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string generate_request_id() {
  std::array<unsigned char, 8> bytes{};
  // getrandom never blocks once the pool is initialised (long before a server starts); should
  // it fail anyway, a seeded Mersenne twister still gives unpredictable-enough ids.
  if (::getrandom(bytes.data(), bytes.size(), GRND_NONBLOCK) !=
      static_cast<ssize_t>(bytes.size())) {
    thread_local std::mt19937_64 fallback{std::random_device{}()};
    std::uint64_t value = fallback();
    for (auto& byte : bytes) {
      byte = static_cast<unsigned char>(value & 0xff);
      value >>= 8;
    }
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  id.reserve(bytes.size() * 2);
  for (const unsigned char byte : bytes) {
    id += kHex[byte >> 4];
    id += kHex[byte & 0xf];
  }
  return id;
}

std::string choose_request_id(std::string_view from_client) {
  if (is_valid_request_id(from_client)) return std::string(from_client);
  return generate_request_id();
}

}  // namespace pysandbox::beast_server
