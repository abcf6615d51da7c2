#include "executor/output_capture.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pysandbox::executor {

bool BoundedBuffer::append(std::string_view chunk) {
  const bool was_over = overflowed();
  if (data_.size() < cap_) data_.append(chunk.substr(0, cap_ - data_.size()));
  total_ += chunk.size();
  return !was_over && overflowed();
}

boost::asio::awaitable<void> drain(boost::asio::posix::stream_descriptor& in, BoundedBuffer& out,
                                   std::function<void()> on_overflow) {
  std::array<char, 64 * 1024> chunk;
  for (;;) {
    auto [ec, n] = co_await in.async_read_some(boost::asio::buffer(chunk),
                                               boost::asio::as_tuple(boost::asio::use_awaitable));
    if (n > 0 && out.append(std::string_view(chunk.data(), n)) && on_overflow) on_overflow();
    if (ec == boost::asio::error::operation_aborted) break;
    if (ec) co_return;  // eof once every writer in the sandbox is gone
  }
  // Cancelled: keep what is already buffered (the writers are gone, nothing more will come).
  boost::system::error_code ec;
  in.non_blocking(true, ec);
  while (!ec) {
    const std::size_t n = in.read_some(boost::asio::buffer(chunk), ec);
    if (n > 0 && out.append(std::string_view(chunk.data(), n)) && on_overflow) on_overflow();
  }
}

std::string sanitize_utf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(in[k]); };
  while (i < in.size()) {
    const unsigned char c = byte(i);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    }
    bool ok = len != 0 && i + len <= in.size();
    for (std::size_t k = 1; ok && k < len; ++k) {
      if ((byte(i + k) & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (byte(i + k) & 0x3F);
    }
    // Reject overlong forms, surrogates and values past U+10FFFF (RFC 3629).
    if (ok) {
      const std::uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
      ok = cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (ok) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

}  // namespace pysandbox::executor
