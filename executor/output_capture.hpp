// Bounded capture of a child's output stream: keeps at most `cap` bytes, keeps draining (and
// discarding) past it so the child never blocks on a full pipe, and reports the overflow once.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace pysandbox::executor {

class BoundedBuffer {
 public:
  explicit BoundedBuffer(std::size_t cap) : cap_(cap) {}

  // Returns true exactly once: on the append that first goes past the cap.
  bool append(std::string_view chunk);

  const std::string& data() const noexcept { return data_; }
  std::string take() noexcept { return std::move(data_); }
  bool overflowed() const noexcept { return total_ > cap_; }
  std::size_t total() const noexcept { return total_; }

 private:
  std::size_t cap_;
  std::size_t total_ = 0;
  std::string data_;
};

// Reads until EOF or error; when cancelled, still reads what is already buffered. `on_overflow`
// runs once, when the buffer first overflows.
boost::asio::awaitable<void> drain(boost::asio::posix::stream_descriptor& in, BoundedBuffer& out,
                                   std::function<void()> on_overflow);

// Replaces invalid UTF-8 sequences with U+FFFD so the text can go into a JSON string.
std::string sanitize_utf8(std::string_view bytes);

}  // namespace pysandbox::executor
