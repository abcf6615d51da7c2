// mount_failure(): the first cause wins, EINVAL from make-rprivate is tolerated only when nothing
// propagated. Pure: no child, no root.
#include "probe/root_namespaces.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace pysandbox::probe {
namespace {

// A trial where every step the child reached succeeded.
MountTrial all_done() {
  MountTrial t;
  t.step_err.fill(0);
  t.child_ready = true;
  return t;
}

struct Case {
  const char* name;
  MountTrial trial;
  std::string expected;  // "" means private mounts are usable
};

MountTrial with(MountTrial t, RootStep step, int err) {
  t.step_err[step] = err;
  return t;
}

MountTrial propagated(MountTrial t) {
  t.propagated = true;
  return t;
}

MountTrial died(MountTrial t) {
  t.child_ready = false;
  return t;
}

TEST(MountFailure, FirstCauseWins) {
  const Case cases[] = {
      {"all steps done", all_done(), ""},
      {"rprivate EINVAL, no propagation", with(all_done(), kRootPrivate, EINVAL), ""},
      {"probe tmpfs refused", with(all_done(), kRootProbeTmpfs, EPERM),
       "mount tmpfs: Operation not permitted"},
      {"probe tmpfs never reached", with(died(all_done()), kRootProbeTmpfs, -1),
       "mount tmpfs: not reached"},
      {"propagation beats a dead child", died(propagated(all_done())),
       "a mount in a new mount namespace showed up in ours (make-rprivate: ok)"},
      {"propagation names rprivate's errno", propagated(with(all_done(), kRootPrivate, EINVAL)),
       "a mount in a new mount namespace showed up in ours (make-rprivate: Invalid argument)"},
      {"child died before the handshake", died(all_done()), "the probe child died"},
      {"rprivate refused otherwise", with(all_done(), kRootPrivate, EACCES),
       "make-rprivate: Permission denied"},
      {"tmp tmpfs refused", with(all_done(), kRootTmpTmpfs, ENOSPC),
       "mount tmpfs on /tmp: No space left on device"},
      {"tmp tmpfs never reached", with(all_done(), kRootTmpTmpfs, -1),
       "mount tmpfs on /tmp: not reached"},
      {"proc and connect do not decide mounts",
       with(with(all_done(), kRootProc, EPERM), kRootConnect, 0), ""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(mount_failure(c.trial), c.expected) << c.name;
  }
}

}  // namespace
}  // namespace pysandbox::probe
