#include "executor/output_capture.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "base/sys/syscalls.hpp"

namespace pysandbox::executor {
namespace {

TEST(BoundedBuffer, KeepsEverythingUnderTheCap) {
  BoundedBuffer b(10);
  EXPECT_FALSE(b.append("hello"));
  EXPECT_FALSE(b.append("world"));
  EXPECT_EQ(b.data(), "helloworld");
  EXPECT_FALSE(b.overflowed());
}

TEST(BoundedBuffer, CutsAtTheCapAndSignalsOverflowExactlyOnce) {
  BoundedBuffer b(8);
  EXPECT_FALSE(b.append("12345"));
  EXPECT_TRUE(b.append("67890"));
  EXPECT_FALSE(b.append("more"));
  EXPECT_EQ(b.data(), "12345678");
  EXPECT_TRUE(b.overflowed());
  EXPECT_EQ(b.total(), 14u);
}

TEST(BoundedBuffer, ZeroCapKeepsNothing) {
  BoundedBuffer b(0);
  EXPECT_TRUE(b.append("x"));
  EXPECT_EQ(b.data(), "");
}

TEST(Drain, ReadsToEofPastTheCapWithoutBlockingTheWriter) {
  boost::asio::io_context io;
  auto pipe = base::sys::make_pipe();
  ASSERT_TRUE(pipe);
  // 1 MiB through a 64 KiB pipe: the writer only finishes if drain keeps reading past the cap.
  const std::string payload(1 << 20, 'x');
  pid_t writer = ::fork();
  ASSERT_GE(writer, 0);
  if (writer == 0) {
    pipe->read.reset();
    std::size_t done = 0;
    while (done < payload.size()) {
      ssize_t n = ::write(pipe->write.get(), payload.data() + done, payload.size() - done);
      if (n <= 0) ::_exit(1);
      done += static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  pipe->write.reset();
  boost::asio::posix::stream_descriptor in(io, pipe->read.release());
  BoundedBuffer buf(1000);
  int overflows = 0;
  boost::asio::co_spawn(io, drain(in, buf, [&] { ++overflows; }), boost::asio::detached);
  io.run();
  int status = 0;
  ASSERT_EQ(::waitpid(writer, &status, 0), writer);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(buf.data().size(), 1000u);
  EXPECT_EQ(buf.total(), payload.size());
  EXPECT_EQ(overflows, 1);
}

TEST(SanitizeUtf8, KeepsValidTextIntact) {
  const std::string text = "plain, caf\xC3\xA9, \xE2\x82\xAC, \xF0\x9F\x98\x80";
  EXPECT_EQ(sanitize_utf8(text), text);
}

TEST(SanitizeUtf8, ReplacesInvalidSequences) {
  EXPECT_EQ(sanitize_utf8("a\xFF"
                          "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(sanitize_utf8("\xC3"), "\xEF\xBF\xBD");                                  // truncated
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '/'
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

}  // namespace
}  // namespace pysandbox::executor
