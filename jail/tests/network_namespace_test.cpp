// Which network namespace a zygote puts its next sandbox in: one handed back only when it holds no
// unix socket, a fresh one otherwise (jail/network_namespace.hpp).
#include "jail/network_namespace.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "base/sys/unique_fd.hpp"

namespace pysandbox::jail {
namespace {

constexpr std::string_view kHeader = "Num       RefCount Protocol Flags    Type St Inode Path\n";

TEST(ListsNoUnixSocketTest, OnlyAHeaderAloneIsEmpty) {
  const std::string socket_line =
      "0000000000000000: 00000002 00000000 00000000 0001 03 12345 @pysandbox\n";
  struct Case {
    std::string text;
    bool empty;
  } const cases[] = {
      {std::string(kHeader), true},
      {std::string(kHeader) + socket_line, false},
      {std::string(kHeader) + "0000", false},  // a socket line cut by the read's size
      {"", false},                             // nothing read: not known to be empty
      {"Num       RefCount", false},           // a header cut short
      {"something else\n", false},
  };
  for (const auto& c : cases) EXPECT_EQ(lists_no_unix_socket(c.text), c.empty) << c.text;
}

ino_t current_namespace() {
  struct stat st {};
  return ::stat("/proc/thread-self/ns/net", &st) == 0 ? st.st_ino : 0;
}

// Each step in a child of its own (it changes the process's network namespace); the exit status
// says which step failed.
int choose_namespaces(int proc_fd) {
  auto fresh = enter_next_network_namespace(-1, proc_fd);
  if (!fresh || *fresh != NetworkNamespaceChoice::kCreated) return 10;
  const ino_t first = current_namespace();
  base::sys::UniqueFd first_fd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (first == 0 || !first_fd) return 11;

  // Nothing was left in it: handed back, it is reused.
  auto other = enter_next_network_namespace(-1, proc_fd);
  if (!other || *other != NetworkNamespaceChoice::kCreated || current_namespace() == first)
    return 20;
  auto reused = enter_next_network_namespace(first_fd.get(), proc_fd);
  if (!reused || *reused != NetworkNamespaceChoice::kReused || current_namespace() != first)
    return 21;

  // A socket open in it (even unnamed, even one about to be passed on): never reused.
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return 30;
  auto refused = enter_next_network_namespace(first_fd.get(), proc_fd);
  if (!refused || *refused != NetworkNamespaceChoice::kCreated || current_namespace() == first)
    return 31;

  // Once its sockets are closed it is as it was created.
  ::close(pair[0]);
  ::close(pair[1]);
  auto again = enter_next_network_namespace(first_fd.get(), proc_fd);
  if (!again || *again != NetworkNamespaceChoice::kReused || current_namespace() != first)
    return 40;

  // Not a network namespace (a file): a fresh one, never the one we are in.
  base::sys::UniqueFd not_netns(::open("/proc/self/status", O_RDONLY | O_CLOEXEC));
  auto bad = enter_next_network_namespace(not_netns.get(), proc_fd);
  if (!bad || *bad != NetworkNamespaceChoice::kCreated || current_namespace() == first) return 50;
  return 0;
}

TEST(NetworkNamespaceTest, ReusesAHandedBackNamespaceOnlyWhenItHoldsNoUnixSocket) {
  if (::geteuid() != 0) GTEST_SKIP() << "creating network namespaces needs root";
  base::sys::UniqueFd proc(::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(proc);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(choose_namespaces(proc.get()));
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "step that failed (choose_namespaces)";
}

}  // namespace
}  // namespace pysandbox::jail
