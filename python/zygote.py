# pysandbox zygote bootstrap: the server runs it as `/usr/bin/python3 -I -B -u -c <this file>`,
# exactly the interpreter, flags and environment of a cold sandbox (whose runner it executes
# with -c the same way), with its control socket on fd 3 (zygote/protocol.hpp).
#
# It loads the runner and the preloads, warms them up, and hands over to the native half
# (_pysandbox_zygote, zygote/module.cpp), which builds the sandbox's root once and then makes
# sandboxes ahead of their runs. serve() returns only in such a sandbox's runner: there, numpy's
# global generator gets a fresh seed, the runner waits for its run, and then runs the script.
#
# Never runs user code itself, never reads a request: a run's script and stdin go from the
# server straight to the sandbox.


def _zygote():
    import gc
    import importlib.machinery
    import importlib.util
    import json
    import os
    import sys
    import time

    def send(text):
        os.write(3, text.encode("utf-8"))

    def fail(what):
        send(json.dumps({"ok": False, "error": what}))
        os._exit(1)

    try:
        config = json.loads(os.read(3, 16384).decode("utf-8"))
    except (OSError, ValueError) as exc:
        fail("config: %s" % exc)
    if os.getppid() != config["parent_pid"]:
        os._exit(3)  # the server died before we could watch for it (PR_SET_PDEATHSIG)
    t0 = time.monotonic()
    path = list(sys.path)

    def load(name, file, loader=None):
        spec = importlib.util.spec_from_file_location(name, file, loader=loader)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    try:
        native = load("_pysandbox_zygote", config["module"],
                      importlib.machinery.ExtensionFileLoader("_pysandbox_zygote",
                                                              config["module"]))
        runner = load("pysandbox_runner", config["runner"])
    except BaseException as exc:
        fail("loading %s: %r" % (config["module"], exc))

    loaded = []
    for name in config["preload"]:
        try:
            module = importlib.import_module(name)
            warm = _WARMERS.get(name)
            if warm is not None:
                warm(module)
        except BaseException as exc:
            fail("preload %s: %s: %s" % (name, type(exc).__name__, exc))
        loaded.append(name)
    sys.path[:] = path  # as a cold interpreter has it

    # fork() copies one thread: a zygote with a second thread (a BLAS pool, a timer) would hand
    # its sandboxes locks held by a thread that no longer exists.
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        fail("the preloads started %d threads; a zygote must stay single-threaded to fork"
             % threads)

    # Everything alive now is shared copy-on-write with the sandboxes: keep the collector from
    # touching (and so copying) it in each of them.
    gc.collect()
    gc.freeze()
    try:
        facts = native.prepare(config["policy"], config["tmpfs_bytes"], config["ro_paths"],
                               config["python"], config["init"])
    except RuntimeError as exc:
        fail(str(exc))
    hello = {
        "ok": True,
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "preloaded": loaded,
        "preload_ms": round((time.monotonic() - t0) * 1000, 1),
        "threads": threads,
        "layout": facts["layout"],
        "huge_page_bytes": facts["huge_page_bytes"],
    }
    reseed_numpy = _numpy_reseeder(native, sys.modules.get("numpy"))
    native.serve(json.dumps(hello), config["processes"], config["open_files"],
                 config["file_size"], config.get("fault_exit_after_fork", 0))

    # From here on: a sandbox's runner (pid 2 of its sandbox), ahead of its run. random reseeds
    # itself after fork (os.register_at_fork); numpy's global RandomState does not, and was
    # seeded once in the zygote: every sandbox would draw the same numbers.
    reseed_numpy()
    for name in ("_pysandbox_zygote", "pysandbox_runner"):
        sys.modules.pop(name, None)
    # The runner's success path once, on a script of its own, so that the pages it writes are
    # copied now rather than on the run's clock; it leaves nothing a script could see.
    runner.warm_up()
    native.await_run()
    runner.child_main()


def _numpy_reseeder(native, np):
    """How each sandbox gives numpy's global generator a fresh kernel-random key, decided once in
    the zygote (every sandbox inherits the same generator): straight into its MT19937's key from C
    (np.random.seed()'s guarantee, without its Python-level SeedSequence), or np.random.seed()
    when it is not the MT19937 expected or holds a cached normal."""
    if np is None:
        return lambda: None
    generator = getattr(getattr(np.random, "mtrand", None), "_rand", None)
    bits = getattr(generator, "_bit_generator", None)
    if (type(bits).__name__ == "MT19937" and type(bits).__module__ == "numpy.random._mt19937"
            and not generator.get_state(legacy=False)["has_gauss"]):
        capsule = bits.capsule
        return lambda: native.reseed_mt19937(capsule)
    return np.random.seed


def _warm_numpy(np):
    a = np.arange(1000, dtype=np.float64)
    float((a * a).sum())
    a.reshape(10, 100).mean(axis=0).tolist()
    repr(a)
    np.random.default_rng(0).random(4)


def _warm_pandas(pd):
    # The first call into pandas' formatting, reductions, groupby and dict conversion loads
    # lazily imported submodules and fills caches: pay for it here, once, not in every sandbox.
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

_zygote()
