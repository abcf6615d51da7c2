# pysandbox zygote bootstrap: imported by pysandbox-zygote (CPython embedded in a small C++
# program) once at startup. start() loads the runner and the preloads and warms them up; the
# zygote then only forks. child_main() runs in each forked child, after the C++ side has put it in
# its sandbox (namespaces, cgroup, uid, tmpfs, rlimits, seccomp) and closed every other fd.
#
# Never runs user code itself, never reads a request: the child reads the script from its fd 3.

import gc
import importlib
import importlib.util
import json
import os
import sys
import time

_runner = None


def _warm_numpy(np):
    a = np.arange(1000, dtype=np.float64)
    float((a * a).sum())
    a.reshape(10, 100).mean(axis=0).tolist()
    repr(a)
    np.random.default_rng(0).random(4)


def _warm_pandas(pd):
    # The first call into pandas' formatting, reductions, groupby and dict conversion loads
    # lazily imported submodules and fills caches: pay for it here, once, not in every child.
    s = pd.Series([1, 2, 3, 4])
    int(s.sum())
    str(s)
    df = pd.DataFrame({"a": [1, 2, 2], "b": [0.5, 1.5, 2.5], "c": ["x", "y", "z"]})
    repr(df)
    df.describe()
    df.to_dict()
    df.groupby("a").sum(numeric_only=True)
    df.mean(numeric_only=True)
    df.sort_values("b").head(2)
    pd.to_datetime(["2024-01-01"]).year.tolist()


_WARMERS = {"numpy": _warm_numpy, "pandas": _warm_pandas}


def start(runner_path, preload):
    """Returns the hello record (JSON text) for the server."""
    global _runner
    t0 = time.monotonic()
    try:
        spec = importlib.util.spec_from_file_location("pysandbox_runner", runner_path)
        runner = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(runner)
        _runner = runner
    except BaseException as exc:
        return json.dumps({"ok": False, "error": "runner %s: %r" % (runner_path, exc)})

    loaded = []
    for name in preload:
        try:
            module = importlib.import_module(name)
            warm = _WARMERS.get(name)
            if warm is not None:
                warm(module)
        except BaseException as exc:
            return json.dumps({"ok": False, "error": "preload %s: %s: %s" % (name, type(exc).__name__, exc)})
        loaded.append(name)

    # fork() copies one thread: a zygote with a second thread (a BLAS pool, a timer) would hand
    # its children locks held by a thread that no longer exists.
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        return json.dumps({"ok": False, "error": "the preloads started %d threads; a zygote must stay single-threaded to fork" % threads})

    # Everything alive now is shared copy-on-write with the children: keep the collector from
    # touching (and so copying) it in each of them.
    gc.collect()
    gc.freeze()
    return json.dumps({
        "ok": True,
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "preloaded": loaded,
        "preload_ms": round((time.monotonic() - t0) * 1000, 1),
        "threads": threads,
    })


def child_main():
    # random reseeds itself after fork (os.register_at_fork); numpy's global RandomState does
    # not, and was seeded once in the zygote: every child would draw the same numbers.
    np = sys.modules.get("numpy")
    if np is not None:
        np.random.seed()
    _runner.child_main()
