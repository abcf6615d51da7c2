# The benchmark's floor: the service's warm path without any sandbox.
#
# Run by bench/floor_compare.py as an unprivileged user (it refuses to run as root), with the
# interpreter, flags and environment of a sandbox: `/usr/bin/python3 -I -B -u bench/floor.py
# --preload numpy,pandas`. Like a zygote (python/zygote.py) it loads the runner
# (python/runner.py) and the preloads, warms them up with the zygote's own warmers, freezes
# the garbage collector's view of the heap; then it serves requests, one JSON line each on stdin,
# answered by one JSON line on stdout:
#
#   {"mode": "fork" | "ahead" | "cold", "script": "..."}
#   -> {"status": "ok", "result": ..., "stdout": "...", "stderr": "...", "exit": 0}
#      or the runner's error object, with stdout, stderr and exit
#
# fork:  fork a child per request; the child places the run's fds where the runner expects them
#        (0-2 stdin/stdout/stderr, 3 the script in a memfd, 4 the result channel) and calls the
#        runner's child_main(), as a sandbox does; the parent collects and waits.
# ahead: the same child, forked before its request (as the zygote makes its sandbox ahead); it
#        waits in the runner reading the script from a pipe on fd 3. The next one is forked
#        after the answer is written, off the request's clock.
# cold:  spawn `python3 -I -B -u -c <runner>` with the same fds: a cold sandbox's interpreter
#        start, imports included, without the sandbox.
#
# The scripts are the benchmark's own workloads, never user input.

import ast
import fcntl
import gc
import importlib
import importlib.util
import json
import os
import select
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "python", "runner.py")
ZYGOTE = os.path.join(ROOT, "python", "zygote.py")
FIRST_FREE = 10  # run fds are staged above 0-4 before being moved into place


def zygote_warmers():
    """The zygote's _warm_* functions and _WARMERS table, taken from zygote.py itself (which runs
    its bootstrap when imported), so that the floor warms up exactly what a zygote does."""
    with open(ZYGOTE, encoding="utf-8") as f:
        tree = ast.parse(f.read(), ZYGOTE)
    keep = [
        node for node in tree.body
        if (isinstance(node, ast.FunctionDef) and node.name.startswith("_warm_"))
        or (isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "_WARMERS" for t in node.targets))
    ]
    namespace = {}
    exec(compile(ast.Module(body=keep, type_ignores=[]), ZYGOTE, "exec"), namespace)
    return namespace.get("_WARMERS", {})


def high(fd):
    """A close-on-exec copy of fd numbered >= FIRST_FREE, so that placing fds at 0-4 in order
    never overwrites one still to be placed."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, FIRST_FREE)


class Floor:
    def __init__(self, preload):
        self.python = sys.executable
        with open(RUNNER, encoding="utf-8") as f:
            self.runner_source = f.read()
        spec = importlib.util.spec_from_file_location("pysandbox_runner", RUNNER)
        self.runner = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.runner)
        t0 = time.monotonic()
        path = list(sys.path)
        warmers = zygote_warmers()
        self.preloaded = []
        for name in preload:
            module = importlib.import_module(name)
            warm = warmers.get(name)
            if warm is not None:
                warm(module)
            self.preloaded.append(name)
        sys.path[:] = path
        self.preload_ms = round((time.monotonic() - t0) * 1000, 1)
        self.threads = len(os.listdir("/proc/self/task"))
        self.ahead = None
        self.numpy_state = self._numpy_state()
        gc.collect()
        gc.freeze()

    # ------------------------------------------------------------------ children

    def _child(self, fds):
        """In the forked child: fds (stdin, stdout, stderr, script, result) go to 0-4, every other
        fd is closed, then the zygote's after-fork work and the runner. Never returns."""
        try:
            staged = [high(fd) for fd in fds]
            for target, fd in enumerate(staged):
                os.dup2(fd, target, inheritable=True)
            os.closerange(5, os.sysconf("SC_OPEN_MAX"))
            self._reseed_numpy()
            sys.modules.pop("pysandbox_runner", None)
            self.runner.child_main()
        finally:
            os._exit(70)

    def _numpy_state(self):
        """Where numpy's global MT19937 keeps its state, for _reseed_numpy (ctypes is imported
        here, before any fork), or None."""
        np = sys.modules.get("numpy")
        if np is None:
            return None
        import ctypes
        bits = np.random.mtrand._rand._bit_generator
        if type(bits).__name__ != "MT19937":
            return None
        return ctypes, bits.ctypes.state_address

    def _reseed_numpy(self):
        """What zygote.py does in each sandbox (module.cpp's reseed_mt19937): a fresh 624-word key
        from the kernel into the global MT19937, the first word's top bit set, pos 624."""
        if self.numpy_state is None:
            np = sys.modules.get("numpy")
            if np is not None:
                np.random.seed()
            return
        ctypes, address = self.numpy_state
        key = bytearray(os.getrandom(2496))
        key[0:4] = (0x80000000).to_bytes(4, sys.byteorder)
        ctypes.memmove(address, bytes(key), 2496)
        ctypes.c_int.from_address(address + 2496).value = 624

    def _pipes(self):
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        res_r, res_w = os.pipe()
        return (out_r, err_r, res_r), (out_w, err_w, res_w)

    @staticmethod
    def _memfd(script):
        fd = os.memfd_create("script", os.MFD_CLOEXEC)
        os.write(fd, script.encode("utf-8"))
        os.lseek(fd, 0, os.SEEK_SET)
        return fd

    def _fork(self, stdin, script_fd):
        ours, theirs = self._pipes()
        pid = os.fork()
        if pid == 0:
            self._child([stdin, theirs[0], theirs[1], script_fd, theirs[2]])
        for fd in theirs:
            os.close(fd)
        return pid, ours

    def _spawn_cold(self, stdin, script_fd):
        ours, theirs = self._pipes()
        staged = [high(fd) for fd in (stdin, theirs[0], theirs[1], script_fd, theirs[2])]
        try:
            pid = os.posix_spawn(
                self.python, [self.python, "-I", "-B", "-u", "-c", self.runner_source],
                dict(os.environ),
                file_actions=[(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(staged)])
        finally:
            for fd in staged + list(theirs):
                os.close(fd)
        return pid, ours

    def _make_ahead(self):
        script_r, script_w = os.pipe()
        stdin = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        try:
            pid, ours = self._fork(stdin, script_r)
        finally:
            os.close(stdin)
            os.close(script_r)
        self.ahead = (pid, ours, script_w)

    @staticmethod
    def _collect(pid, ours):
        """Reads the child's stdout, stderr and result channel to their ends, then reaps it."""
        names = dict(zip(ours, ("stdout", "stderr", "result")))
        data = {fd: bytearray() for fd in ours}
        open_fds = list(ours)
        while open_fds:
            readable, _, _ = select.select(open_fds, [], [])
            for fd in readable:
                chunk = os.read(fd, 65536)
                if chunk:
                    data[fd] += chunk
                else:
                    os.close(fd)
                    open_fds.remove(fd)
        _, status = os.waitpid(pid, 0)
        text = {names[fd]: bytes(buf).decode("utf-8", "replace") for fd, buf in data.items()}
        try:
            outcome = json.loads(text["result"])
        except ValueError:
            outcome = {"status": "error", "error_type": "no_result",
                       "message": "no result from the child: %r" % text["result"][:200]}
        outcome["stdout"] = text["stdout"]
        outcome["stderr"] = text["stderr"]
        outcome["exit"] = os.waitstatus_to_exitcode(status)
        return outcome

    # ------------------------------------------------------------------ requests

    def run(self, mode, script):
        if mode == "ahead":
            if self.ahead is None:
                self._make_ahead()
            pid, ours, script_w = self.ahead
            self.ahead = None
            os.write(script_w, script.encode("utf-8"))  # workloads are far below a pipe's buffer
            os.close(script_w)
            return self._collect(pid, ours)
        stdin = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        script_fd = self._memfd(script)
        try:
            if mode == "fork":
                pid, ours = self._fork(stdin, script_fd)
            elif mode == "cold":
                pid, ours = self._spawn_cold(stdin, script_fd)
            else:
                return {"status": "error", "error_type": "bad_request",
                        "message": "unknown mode %r" % mode}
        finally:
            os.close(stdin)
            os.close(script_fd)
        return self._collect(pid, ours)

    def serve(self):
        reply(json.dumps({
            "ok": True, "pid": os.getpid(), "uid": os.getuid(), "python": sys.version.split()[0],
            "preloaded": self.preloaded, "preload_ms": self.preload_ms, "threads": self.threads,
        }))
        for line in sys.stdin.buffer:
            request = json.loads(line)
            reply(json.dumps(self.run(request["mode"], request["script"]), ensure_ascii=False))
            if request["mode"] == "ahead":
                self._make_ahead()  # after the answer: off the next request's clock
        if self.ahead is not None:  # EOF: the child reads an empty script and ends
            pid, ours, script_w = self.ahead
            os.close(script_w)
            self._collect(pid, ours)


def reply(text):
    data = (text + "\n").encode("utf-8")
    while data:
        data = data[os.write(1, data):]


def main():
    preload = []
    args = sys.argv[1:]
    if args[:1] == ["--preload"] and len(args) == 2:
        preload = [m for m in args[1].split(",") if m]
    elif args:
        sys.exit("usage: floor.py [--preload MODULE,...]")
    if os.geteuid() == 0 or os.getuid() == 0:
        sys.exit("floor.py runs scripts without a sandbox: run it as an unprivileged user "
                 "(e.g. setpriv --reuid=65534 --regid=65534 --clear-groups)")
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # whatever the caller left open is not a run's
    os.chdir("/tmp")
    Floor(preload).serve()


if __name__ == "__main__":
    main()
