# What a typical sandboxed script does. Measured with strace to derive default.policy (see
# tools/measure_syscalls.sh) and run under the compiled policy by interpreter_test.cpp.
# With PYSANDBOX_EXPECT_SECCOMP=1 it also checks that refused calls fail cleanly.
import asyncio
import ctypes
import errno
import glob
import json
import mmap
import multiprocessing
import os
import pathlib
import random
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

# numpy / pandas
a = np.arange(10000, dtype=np.float64).reshape(100, 100)
assert float((a @ a.T).sum()) > 0
np.random.default_rng(1).random(3)
df = pd.DataFrame({"k": [i % 7 for i in range(1000)], "v": range(1000)})
g = df.groupby("k")["v"].sum()
assert int(g.sum()) == sum(range(1000))
df.describe()
pd.Series([1.0, None]).fillna(0).rolling(2).mean()
pd.Timestamp.now()
pd.to_datetime(["2020-01-01"])

# files under /tmp
d = tempfile.mkdtemp(dir="/tmp")
p = os.path.join(d, "data.json")
with open(p, "w") as f:
    json.dump({"x": [random.random() for _ in range(10)]}, f)
with open(p) as f:
    assert len(json.load(f)["x"]) == 10
df.to_csv(os.path.join(d, "df.csv"))
assert len(pd.read_csv(os.path.join(d, "df.csv"))) == 1000
np.save(os.path.join(d, "x.npy"), np.arange(5))
assert np.load(os.path.join(d, "x.npy")).sum() == 10
assert "data.json" in os.listdir(d)
os.stat(p)
os.rename(p, p + ".bak")
shutil.copy(p + ".bak", p)
os.chmod(p, 0o600)
os.utime(p)
os.symlink(p, os.path.join(d, "ln"))
os.readlink(os.path.join(d, "ln"))
list(os.walk(d))
glob.glob(d + "/*")
pathlib.Path(d, "t.txt").write_text("hello")
os.truncate(os.path.join(d, "t.txt"), 1)
with open(os.path.join(d, "t.txt"), "a") as f:
    f.write("x")
    f.flush()
    os.fsync(f.fileno())
with open(os.path.join(d, "m"), "wb+") as f:
    f.write(b"\0" * 4096)
    f.flush()
    m = mmap.mmap(f.fileno(), 4096)
    m[0:1] = b"x"
    m.close()
shutil.rmtree(d)

# threads
out = []
t = threading.Thread(target=lambda: out.append(sum(range(1000))))
t.start()
t.join()
assert out == [499500]
with ThreadPoolExecutor(2) as ex:
    assert list(ex.map(abs, [-1, -2])) == [1, 2]

# processes
pid = os.fork()
if pid == 0:
    os._exit(7)
_, st = os.waitpid(pid, 0)
assert os.WEXITSTATUS(st) == 7
r = subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True, text=True)
assert r.stdout.strip() == "1", r


async def _amain():
    await asyncio.sleep(0.01)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await proc.wait()
    return 5


assert asyncio.run(_amain()) == 5
with multiprocessing.get_context("fork").Pool(1) as pool:
    assert pool.map(abs, [-3]) == [3]

# descriptors and local IPC
rd, wr = os.pipe()
os.write(wr, b"hi")
assert os.read(rd, 2) == b"hi"
os.close(rd)
os.close(wr)
s1, s2 = socket.socketpair()
s1.sendall(b"x")
assert s2.recv(1) == b"x"
select.select([s2], [], [], 0)
pl = select.poll()
pl.register(s2, select.POLLIN)
pl.poll(0)
ep = select.epoll()
ep.register(s2.fileno(), select.EPOLLIN)
ep.poll(0)
ep.close()
s1.close()
s2.close()
socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()
assert len(os.urandom(16)) == 16

# signals and time
fired = []
signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
signal.alarm(1)
signal.alarm(0)
signal.setitimer(signal.ITIMER_REAL, 0.01)
time.sleep(0.05)
assert fired == [1]
time.time(), time.monotonic(), time.perf_counter(), time.process_time(), time.thread_time()

# odds and ends
CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)
assert CB(lambda x: x + 1)(1) == 2
c = sqlite3.connect(":memory:")
c.execute("create table t(x)")
c.close()
try:
    1 / 0
except ZeroDivisionError:
    traceback.format_exc()
os.getcwd(), os.getpid(), os.getppid(), os.cpu_count(), os.getloadavg(), os.times()
os.sched_getaffinity(0)
os.umask(0o22)
sys.stdin.read()

if os.environ.get("PYSANDBOX_EXPECT_SECCOMP") == "1":
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raise AssertionError("AF_INET socket allowed")
    except PermissionError:
        pass
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) == -1
    assert ctypes.get_errno() == errno.EPERM, ctypes.get_errno()
    try:
        os.setuid(os.getuid())  # not on the allow-list: the default action
        raise AssertionError("setuid allowed")
    except OSError as e:
        assert e.errno == errno.ENOSYS, e

print(json.dumps({"ok": True, "sum": int(g.sum())}))
