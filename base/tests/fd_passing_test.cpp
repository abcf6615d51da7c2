// File descriptors over a SOCK_SEQPACKET pair (base/sys/fd_passing.hpp): what the server and a
// zygote rely on. Passed fds must arrive O_CLOEXEC and refer to the same open files; message
// boundaries hold; a closed peer reads as 0 bytes; too many fds are refused by the sender and
// flagged (never leaked) by the receiver; a short buffer is flagged as truncated.
#include "base/sys/fd_passing.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

namespace pysandbox::base::sys {
namespace {

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s)); }

UniqueFd make_memfd(const char* name) {
  UniqueFd fd(::memfd_create(name, MFD_CLOEXEC));
  EXPECT_TRUE(fd) << std::strerror(errno);
  return fd;
}

struct stat stat_of(int fd) {
  struct stat st {};
  EXPECT_EQ(::fstat(fd, &st), 0) << std::strerror(errno);
  return st;
}

bool is_cloexec(int fd) {
  const int flags = ::fcntl(fd, F_GETFD);
  return flags >= 0 && (flags & FD_CLOEXEC) != 0;
}

// How many fds this process holds (minus the one the listing itself uses).
std::size_t open_fd_count() {
  std::size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n - 1;
}

TEST(FdPassing, PairIsSeqpacketAndCloexec) {
  auto pair = make_seqpacket_pair();
  ASSERT_TRUE(pair) << pair.error().message();
  for (int fd : {pair->first.get(), pair->second.get()}) {
    int type = 0;
    socklen_t len = sizeof type;
    ASSERT_EQ(::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
    EXPECT_EQ(type, SOCK_SEQPACKET);
    EXPECT_TRUE(is_cloexec(fd));
  }
}

TEST(FdPassing, DataAndFdsRoundTripAsCloexecCopiesOfTheSameFiles) {
  auto pair = make_seqpacket_pair();
  ASSERT_TRUE(pair);
  UniqueFd file = make_memfd("fd-passing-test");
  ASSERT_EQ(::write(file.get(), "contents", 8), 8);
  auto pipe = make_pipe();
  ASSERT_TRUE(pipe);
  // The sender's copies without O_CLOEXEC: the flag on arrival must come from the receiver.
  UniqueFd plain_file(::fcntl(file.get(), F_DUPFD, 0));
  ASSERT_TRUE(plain_file);
  ASSERT_FALSE(is_cloexec(plain_file.get()));

  const int sent_fds[] = {plain_file.get(), pipe->write.get()};
  const std::string message = "hello, zygote";
  auto sent = send_with_fds(pair->first.get(), bytes_of(message), sent_fds);
  ASSERT_TRUE(sent) << sent.error().message();

  char buf[64] = {};
  auto got = recv_with_fds(pair->second.get(), std::as_writable_bytes(std::span(buf)));
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(std::string(buf, got->bytes), message);
  EXPECT_FALSE(got->truncated);
  ASSERT_EQ(got->fd_count, 2u);
  for (std::size_t i = 0; i < got->fd_count; ++i) {
    ASSERT_TRUE(got->fds[i]);
    EXPECT_NE(got->fds[i].get(), sent_fds[i]) << "a passed fd is a new descriptor";
    EXPECT_TRUE(is_cloexec(got->fds[i].get())) << "fd " << i << " arrived without O_CLOEXEC";
    const struct stat a = stat_of(got->fds[i].get());
    const struct stat b = stat_of(sent_fds[i]);
    EXPECT_EQ(a.st_ino, b.st_ino) << "fd " << i;
    EXPECT_EQ(a.st_dev, b.st_dev) << "fd " << i;
  }
  for (std::size_t i = got->fd_count; i < kMaxPassedFds; ++i) EXPECT_FALSE(got->fds[i]);

  // The same open file description: a shared offset, and the pipe carries data.
  char data[9] = {};
  ASSERT_EQ(::pread(got->fds[0].get(), data, 8, 0), 8);
  EXPECT_STREQ(data, "contents");
  EXPECT_EQ(::lseek(got->fds[0].get(), 0, SEEK_CUR), 8) << "the offset is not shared";
  ASSERT_EQ(::write(got->fds[1].get(), "x", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(pipe->read.get(), &c, 1), 1);
  EXPECT_EQ(c, 'x');
}

TEST(FdPassing, MessagesWithoutFdsKeepTheirBoundaries) {
  auto pair = make_seqpacket_pair();
  ASSERT_TRUE(pair);
  ASSERT_TRUE(send_with_fds(pair->first.get(), bytes_of("a"), {}));
  ASSERT_TRUE(send_with_fds(pair->first.get(), bytes_of("bcd"), {}));
  char buf[16];
  auto one = recv_with_fds(pair->second.get(), std::as_writable_bytes(std::span(buf)));
  ASSERT_TRUE(one);
  EXPECT_EQ(std::string(buf, one->bytes), "a");
  EXPECT_EQ(one->fd_count, 0u);
  EXPECT_FALSE(one->truncated);
  auto two = recv_with_fds(pair->second.get(), std::as_writable_bytes(std::span(buf)));
  ASSERT_TRUE(two);
  EXPECT_EQ(std::string(buf, two->bytes), "bcd");
}

TEST(FdPassing, PeerCloseReadsAsZeroBytes) {
  auto pair = make_seqpacket_pair();
  ASSERT_TRUE(pair);
  pair->first.reset();
  char buf[16];
  auto got = recv_with_fds(pair->second.get(), std::as_writable_bytes(std::span(buf)));
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->bytes, 0u);
  EXPECT_EQ(got->fd_count, 0u);
  EXPECT_FALSE(got->truncated);
}

TEST(FdPassing, SendingToAClosedPeerIsEpipeNotASignal) {
  auto pair = make_seqpacket_pair();
  ASSERT_TRUE(pair);
  pair->second.reset();
  // SIGPIPE's default action would end this test binary; MSG_NOSIGNAL must turn it into EPIPE.
  auto sent = send_with_fds(pair->first.get(), bytes_of("x"), {});
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error(), errno_code(EPIPE)) << sent.error().message();
}

TEST(FdPassing, ExactlyTheMaximumNumberOfFdsPasses) {
  auto pair = make_seqpacket_pair();
  ASSERT_TRUE(pair);
  UniqueFd file = make_memfd("fd-passing-max");
  std::vector<int> fds(kMaxPassedFds, file.get());
  ASSERT_TRUE(send_with_fds(pair->first.get(), bytes_of("m"), fds));
  char buf[4];
  auto got = recv_with_fds(pair->second.get(), std::as_writable_bytes(std::span(buf)));
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->truncated);
  ASSERT_EQ(got->fd_count, kMaxPassedFds);
  for (const auto& fd : got->fds) EXPECT_EQ(stat_of(fd.get()).st_ino, stat_of(file.get()).st_ino);
}

TEST(FdPassing, TheSenderRefusesMoreThanTheMaximumAndSendsNothing) {
  auto pair = make_seqpacket_pair();
  ASSERT_TRUE(pair);
  UniqueFd file = make_memfd("fd-passing-too-many");
  std::vector<int> fds(kMaxPassedFds + 1, file.get());
  auto sent = send_with_fds(pair->first.get(), bytes_of("too many"), fds);
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error(), errno_code(E2BIG)) << sent.error().message();
  // Nothing reached the peer.
  ASSERT_TRUE(set_nonblocking(pair->second.get()));
  char buf[16];
  auto got = recv_with_fds(pair->second.get(), std::as_writable_bytes(std::span(buf)));
  ASSERT_FALSE(got) << "a message arrived: " << got->bytes << " bytes";
  EXPECT_TRUE(got.error() == errno_code(EAGAIN) || got.error() == errno_code(EWOULDBLOCK))
      << got.error().message();
}

TEST(FdPassing, ExcessFdsFromARawSenderAreFlaggedAndNotLeaked) {
  // A peer that ignores kMaxPassedFds (a broken or hostile zygote): the receiver keeps at most
  // kMaxPassedFds, says the message was truncated, and ends up holding no stray descriptor.
  const std::size_t before = open_fd_count();
  {
    auto pair = make_seqpacket_pair();
    ASSERT_TRUE(pair);
    UniqueFd file = make_memfd("fd-passing-raw");
    constexpr std::size_t kSent = kMaxPassedFds + 4;
    int fds[kSent];
    for (auto& fd : fds) fd = file.get();
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)] = {};
    char byte = 'r';
    iovec iov{&byte, 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fds);
    std::memcpy(CMSG_DATA(c), fds, sizeof fds);
    ASSERT_EQ(::sendmsg(pair->first.get(), &msg, MSG_NOSIGNAL), 1) << std::strerror(errno);

    char buf[4];
    auto got = recv_with_fds(pair->second.get(), std::as_writable_bytes(std::span(buf)));
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(got->bytes, 1u);
    EXPECT_TRUE(got->truncated);
    EXPECT_LE(got->fd_count, kMaxPassedFds);
    for (std::size_t i = 0; i < got->fd_count; ++i) EXPECT_TRUE(is_cloexec(got->fds[i].get()));
  }
  EXPECT_EQ(open_fd_count(), before) << "descriptors leaked";
}

TEST(FdPassing, ABufferTooSmallForTheMessageIsTruncated) {
  auto pair = make_seqpacket_pair();
  ASSERT_TRUE(pair);
  UniqueFd file = make_memfd("fd-passing-short");
  const int fd = file.get();
  const std::string message(100, 'z');
  ASSERT_TRUE(send_with_fds(pair->first.get(), bytes_of(message), std::span<const int>(&fd, 1)));
  char buf[10];
  auto got = recv_with_fds(pair->second.get(), std::as_writable_bytes(std::span(buf)));
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_TRUE(got->truncated);
  EXPECT_EQ(got->bytes, sizeof buf);
  // The rest of the record is gone (SOCK_SEQPACKET): the next read waits for a new message.
  ASSERT_TRUE(set_nonblocking(pair->second.get()));
  auto next = recv_with_fds(pair->second.get(), std::as_writable_bytes(std::span(buf)));
  EXPECT_FALSE(next) << "the tail of a truncated message was delivered as a new one";
}

}  // namespace
}  // namespace pysandbox::base::sys
