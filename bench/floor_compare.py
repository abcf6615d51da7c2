#!/usr/bin/python3
# The service against its floor and against a cold start, interleaved in one run.
#
# For each workload (the W1-W3 of bench/run.sh), N rounds; each round sends the same script, one
# after the other in an order rotated every round (so that load drift weighs on every kind alike),
# to:
#   service      pysandboxd, POST /execute on a kept-alive connection, concurrency 1
#   floor        bench/floor.py: the same warm interpreter forked per request, no sandbox
#   floor-ahead  the same, with the child forked before its request (as the zygote does)
#   cold         `python3 -I -B -u -c <runner>` started for the request, no sandbox
#   service-b    with --compare OTHER_BUILD: a second pysandboxd from that build, the same way
#                (before/after a change, in the same minutes)
# and prints the median and p90 of each, the service's p50 divided by the floor's and by the
# cold start's, with the date and the load average. With --throughput C, each workload then runs
# for --seconds in alternating blocks: the service driven by C clients at once, and the floor as
# --max-concurrency floor processes forking back to back (the service lets that many sandboxes
# run at once; the rest of its C clients queue), and prints requests per second and their ratio. floor.py runs as an unprivileged user;
# the server is started here and needs root like its tests (run this under the sandbox lock).
# Every answer is checked: any error or wrong result stops the run with exit status 1.
#
# Usage: flock /tmp/pysandbox-sandbox-tests.lock bench/floor_compare.py [BUILD_DIR] [options]
# Only the standard library; see bench/README.md.

import argparse
import datetime
import http.client
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The sandbox's environment (executor/factory.cpp, kSandboxEnv): the floor and the cold start
# run with it, so numpy/OpenBLAS size their pools as in a sandbox.
SANDBOX_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "MPLCONFIGDIR": "/tmp",
    "MPLBACKEND": "Agg",
}

# The workloads of bench/run.sh, with the result each must give.
WORKLOADS = {
    "W1": ('def main(): return {"ok": True}', {"ok": True}),
    "W2": ('import pandas as pd\ndef main():\n    s = pd.Series([1, 2, 3])\n'
           '    print("len:", len(s))\n    return {"sum": int(s.sum())}', {"sum": 6}),
    "W3": ("def main(): return sum(i*i for i in range(300000))",
           sum(i * i for i in range(300000))),
}
DESCRIPTION = {
    "W1": 'W1 `return {"ok": True}`',
    "W2": "W2 pandas example",
    "W3": "W3 `sum(i*i for i in range(300000))`",
}
KINDS = ["service", "floor", "floor-ahead", "cold"]
FLOOR_MODE = {"floor": "fork", "floor-ahead": "ahead", "cold": "cold"}


class BenchError(Exception):
    pass


def log(text):
    print("# " + text, file=sys.stderr, flush=True)


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + load()


def mentions(script, module):
    """The service's routing rule (executor/zygote_pool.cpp): the module's top-level name as a
    whole identifier anywhere in the script sends it to the preloaded flavour."""
    top = module.split(".")[0]
    return re.search(r"(?<![A-Za-z0-9_])" + re.escape(top) + r"(?![A-Za-z0-9_])", script) is not None


def percentile(values, p):
    """Nearest rank: the smallest sample with at least p% of the samples at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# ---------------------------------------------------------------------- server


class Server:
    def __init__(self, binary, flags, work):
        self.err_path = os.path.join(work, "server.err")
        command = [binary, "--listen", "127.0.0.1", "--port", "0"] + flags
        log("server: " + shlex.join(command))
        with open(os.path.join(work, "server.out"), "wb") as out, open(self.err_path, "wb") as err:
            self.process = subprocess.Popen(command, stdout=out, stderr=err,
                                            stdin=subprocess.DEVNULL)
        self.startup = None
        deadline = time.monotonic() + 30
        while self.startup is None:
            if self.process.poll() is not None:
                raise BenchError("the server exited during startup:\n" + self.log_tail())
            if time.monotonic() > deadline:
                raise BenchError("no startup line from the server within 30 s:\n" + self.log_tail())
            with open(self.err_path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if '"event":"startup"' in line:
                        self.startup = json.loads(line)
                        break
            time.sleep(0.1)
        self.port = self.startup["port"]
        self.wait_ready()
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def log_tail(self):
        with open(self.err_path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-20:])

    def get(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path),
                                        timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_ready(self):
        """/readyz answers 200 once the pool's zygotes have made their first sandboxes."""
        deadline = time.monotonic() + 120
        while True:
            status, body = self.get("/readyz")
            if status == 200:
                return
            if self.process.poll() is not None:
                raise BenchError("the server exited while starting:\n" + self.log_tail())
            if time.monotonic() > deadline:
                raise BenchError("the server was not ready within 120 s: %s" % body[:300])
            time.sleep(0.1)

    def pool(self):
        status, body = self.get("/healthz")
        if status != 200:
            raise BenchError("GET /healthz: HTTP %d" % status)
        return json.loads(body).get("pool", {})

    def execute(self, script):
        body = json.dumps({"script": script, "timeout_ms": 30000})
        self.connection.request("POST", "/execute", body=body,
                                headers={"Content-Type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise BenchError("service: HTTP %d: %s" % (response.status, data[:500]))
        return json.loads(data)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ---------------------------------------------------------------------- floor


class Floor:
    """One bench/floor.py process, run as the unprivileged user with the sandbox's interpreter,
    flags and environment."""

    def __init__(self, python, user, preload):
        command = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups",
                   python, "-I", "-B", "-u", os.path.join(HERE, "floor.py")]
        if preload:
            command += ["--preload", ",".join(preload)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        env=SANDBOX_ENV, cwd="/tmp")
        line = self.process.stdout.readline()
        if not line:
            raise BenchError("floor.py %s did not start (exit %s)"
                             % (",".join(preload) or "minimal", self.process.wait()))
        self.hello = json.loads(line)
        if self.hello.get("uid") == 0:
            raise BenchError("floor.py runs as root")

    def run(self, mode, script):
        self.process.stdin.write((json.dumps({"mode": mode, "script": script}) + "\n").encode())
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise BenchError("floor.py ended (exit %s)" % self.process.wait())
        return json.loads(line)

    def stop(self):
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ---------------------------------------------------------------------- run


def one(kind, name, servers, floor):
    """One request of one kind; returns (milliseconds, warm start or None). Raises on an error
    or a result other than the workload's."""
    script, expected = WORKLOADS[name]
    t0 = time.perf_counter_ns()
    if kind in servers:
        answer = servers[kind].execute(script)
    else:
        answer = floor.run(FLOOR_MODE[kind], script)
    ms = (time.perf_counter_ns() - t0) / 1e6
    if kind not in servers and (answer.get("status") != "ok" or answer.get("exit") != 0):
        raise BenchError("%s %s: %s" % (kind, name, json.dumps(answer)[:800]))
    if answer.get("result") != expected:
        raise BenchError("%s %s: result %r, expected %r" % (kind, name, answer.get("result"),
                                                             expected))
    return ms, answer.get("start")


def run_workload(name, rounds, warmup, servers, floors, preload, kinds):
    script = WORKLOADS[name][0]
    for s in servers.values():
        # A fresh connection: the last one may have idled past the server's idle timeout while
        # the previous workload's throughput blocks ran (http.client reconnects when closed).
        s.connection.close()
    floor = floors[1] if preload and any(mentions(script, m) for m in preload) else floors[0]
    samples = {kind: [] for kind in kinds}
    starts = {}
    for _ in range(warmup):
        for kind in kinds:
            one(kind, name, servers, floor)
    for i in range(rounds):
        shift = i % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            ms, start = one(kind, name, servers, floor)
            samples[kind].append(ms)
            if kind in servers:
                key = kind + " " + str(start)
                starts[key] = starts.get(key, 0) + 1
    return samples, starts, ("preloaded" if floor is floors[1] else "minimal")


def saturate(kind, name, clients, seconds):
    """`clients` is a list of callables each sending one request of workload `name` (a service
    connection or a floor process of its own); each runs in a thread of its own, back to back,
    for `seconds`. Returns completed requests per second. Raises on any error or wrong result."""
    script, expected = WORKLOADS[name]
    deadline = time.monotonic() + seconds
    counts = [0] * len(clients)
    errors = []

    def drive(i):
        try:
            while time.monotonic() < deadline and not errors:
                answer = clients[i](script)
                if answer.get("result") != expected:
                    raise BenchError("%s %s: %s" % (kind, name, json.dumps(answer)[:800]))
                counts[i] += 1
        except Exception as exc:  # reported once the threads are joined
            errors.append(exc)

    t0 = time.monotonic()
    threads = [threading.Thread(target=drive, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0  # includes the requests in flight at the deadline
    if errors:
        raise BenchError("%s %s under load: %s" % (kind, name, errors[0]))
    return sum(counts) / elapsed


def run_throughput(name, args, server, floor_sets, preload, blocks=4):
    """Alternating blocks of service and floor saturation; returns (service rps, floor rps)."""
    script = WORKLOADS[name][0]
    floors = floor_sets[1] if preload and any(mentions(script, m) for m in preload) else floor_sets[0]
    connections = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
                   for _ in range(args.throughput)]

    def service_client(connection):
        def send(script):
            body = json.dumps({"script": script, "timeout_ms": 30000})
            connection.request("POST", "/execute", body=body,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            data = response.read()
            if response.status != 200:
                raise BenchError("service: HTTP %d: %s" % (response.status, data[:500]))
            return json.loads(data)
        return send

    def floor_client(floor):
        def send(script):
            answer = floor.run("fork", script)
            if answer.get("status") != "ok" or answer.get("exit") != 0:
                raise BenchError("floor: " + json.dumps(answer)[:800])
            return answer
        return send

    rates = {"service": [], "floor": []}
    per_block = args.seconds / blocks
    try:
        for block in range(blocks):
            order = ["service", "floor"] if block % 2 == 0 else ["floor", "service"]
            for kind in order:
                clients = ([service_client(c) for c in connections] if kind == "service"
                           else [floor_client(f) for f in floors])
                rates[kind].append(saturate(kind, name, clients, per_block))
    finally:
        for c in connections:
            c.close()
    return (sum(rates["service"]) / blocks, sum(rates["floor"]) / blocks)


def main():
    parser = argparse.ArgumentParser(
        description="pysandboxd against its floor (the same warm interpreters forked without a "
                    "sandbox) and a cold python3 start, interleaved. Run it under the sandbox "
                    "lock: flock /tmp/pysandbox-sandbox-tests.lock bench/floor_compare.py ...")
    parser.add_argument("build_dir", nargs="?", default=os.path.join(ROOT, "build"),
                        help="build directory holding bin/pysandboxd (default: build)")
    parser.add_argument("-n", "--requests", type=int, default=50,
                        help="measured rounds per workload, one request of each kind (default 50)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="unmeasured rounds per workload first (default 3)")
    parser.add_argument("--workloads", default="W1,W2,W3", help="default W1,W2,W3")
    parser.add_argument("--preload", default="numpy,pandas",
                        help="the preloaded flavour's modules, for the server (--preload) and the "
                             "floor alike (default numpy,pandas)")
    parser.add_argument("--max-concurrency", type=int, default=2)
    parser.add_argument("--server-flag", action="append", default=[],
                        help="pass this flag to pysandboxd; repeatable, one argument each, later "
                             "ones win (e.g. --server-flag=--pool=off)")
    parser.add_argument("--python", default="/usr/bin/python3",
                        help="the floor's and cold start's interpreter (the sandbox's; default "
                             "/usr/bin/python3)")
    parser.add_argument("--user", type=int, default=65534,
                        help="uid and gid the floor runs as (default 65534, nobody)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (server log)")
    parser.add_argument("--compare", metavar="OTHER_BUILD",
                        help="also run OTHER_BUILD/bin/pysandboxd (with its own share/pysandbox) "
                             "as the kind service-b, interleaved with the others, e.g. a copy of "
                             "the build before a change")
    parser.add_argument("--throughput", type=int, default=0, metavar="C",
                        help="also measure throughput: the service with C concurrent clients "
                             "against --max-concurrency floor processes (default 0: off)")
    parser.add_argument("--seconds", type=float, default=20,
                        help="with --throughput: seconds per workload and kind, in alternating "
                             "blocks (default 20)")
    args = parser.parse_args()
    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        if w not in WORKLOADS:
            parser.error("unknown workload %s (known: %s)" % (w, ", ".join(WORKLOADS)))
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    binary = os.path.join(args.build_dir, "bin", "pysandboxd")
    if not os.access(binary, os.X_OK):
        parser.error("%s not found; build it first (cmake --build BUILD --target pysandboxd)"
                     % binary)
    kinds = list(KINDS)
    if args.compare:
        other = os.path.join(args.compare, "bin", "pysandboxd")
        if not os.access(other, os.X_OK):
            parser.error("%s not found" % other)
        kinds.insert(1, "service-b")
    if shutil.which("setpriv") is None:
        parser.error("setpriv not found (util-linux)")
    preload = [m for m in args.preload.split(",") if m]

    command_line = shlex.join([os.path.relpath(sys.argv[0])] + sys.argv[1:])
    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = uptime()
    work = tempfile.mkdtemp(prefix="pysandbox-floor.")
    server = None
    servers = {}
    floors = []
    failed = True
    try:
        server_flags = (["--max-concurrency", str(args.max_concurrency),
                         "--preload=" + ",".join(preload)] + args.server_flag)
        server = servers["service"] = Server(binary, server_flags, work)
        if args.compare:
            work_b = os.path.join(work, "service-b")
            os.mkdir(work_b)
            # Its own sandbox uids: a server sweeps every process of its range at start.
            servers["service-b"] = Server(other, server_flags + ["--uid-base=2100000"], work_b)
        floors.append(Floor(args.python, args.user, []))
        floors.append(Floor(args.python, args.user, preload) if preload else floors[0])
        pool = server.pool()
        floor_sets = []
        if args.throughput:
            # --max-concurrency floor processes per flavour: as many forks at once as sandboxes.
            floor_sets.append([floors[0]] + [Floor(args.python, args.user, [])
                                             for _ in range(args.max_concurrency - 1)])
            floor_sets.append([floors[1]] + [Floor(args.python, args.user, preload)
                                             for _ in range(args.max_concurrency - 1)]
                              if preload else floor_sets[0])
            floors.extend(f for group in floor_sets for f in group[1:] if f not in floors)
        results = {}
        rates = {}
        for name in workloads:
            log("%s: %d warm-up + %d measured rounds of %s" % (name, args.warmup, args.requests,
                                                                ", ".join(kinds)))
            results[name] = run_workload(name, args.requests, args.warmup, servers, floors,
                                         preload, kinds)
            if args.throughput:
                log("%s: throughput, service at c=%d against %d floor processes, %.0f s each"
                    % (name, args.throughput, args.max_concurrency, args.seconds))
                rates[name] = run_throughput(name, args, server, floor_sets, preload)
        failed = False
    except BenchError as exc:
        print("floor_compare: " + str(exc), file=sys.stderr)
    finally:
        for floor in floors[::-1]:
            if floor.process.poll() is None:
                floor.stop()
        for s in servers.values():
            s.stop()
        if args.keep or failed:
            log("work directory kept: " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failed:
        return 1

    finished = datetime.datetime.now(datetime.timezone.utc)
    load_end = uptime()
    print("pysandboxd against its floor and a cold start, interleaved")
    print("command:  " + command_line)
    print("date:     %s to %s UTC" % (started.strftime("%Y-%m-%d %H:%M:%S"),
                                      finished.strftime("%H:%M:%S")))
    print("host:     %s, %d CPUs, kernel %s" % (platform.node(), os.cpu_count(),
                                                 platform.release()))
    print("load:     start: %s" % load_start)
    print("          end:   %s" % load_end)
    print("server:   %s, version %s, mode %s, --max-concurrency %d, pool %s" % (
        binary, server.startup.get("version"), server.startup.get("mode"), args.max_concurrency,
        "on" if pool.get("enabled") else "off"))
    if args.compare:
        b = servers["service-b"]
        print("service-b: %s, version %s, mode %s" % (other, b.startup.get("version"),
                                                      b.startup.get("mode")))
    print("floor:    %s %s as uid %d; minimal preload %.0f ms; preloaded %s, %.0f ms" % (
        args.python, floors[0].hello.get("python"), args.user, floors[0].hello["preload_ms"],
        ",".join(floors[1].hello["preloaded"]) or "-", floors[1].hello["preload_ms"]))
    print("rounds:   %d per workload after %d warm-up rounds; each round one request of each kind"
          ", order rotated per round" % (args.requests, args.warmup))
    print()
    print("%-4s %-12s %4s %10s %10s %10s %10s   %s" % ("", "kind", "n", "p50 ms", "p90 ms",
                                                       "min ms", "max ms", ""))
    table = []
    for name in workloads:
        samples, starts, flavour = results[name]
        p50 = {k: percentile(samples[k], 50) for k in kinds}
        p90 = {k: percentile(samples[k], 90) for k in kinds}
        for kind in kinds:
            note = ""
            if kind in servers:
                note = "starts: " + ", ".join("%s %d" % (k.split(" ", 1)[1], v) for k, v in sorted(
                    starts.items()) if k.split(" ", 1)[0] == kind)
            elif kind != "cold":
                note = "flavour: " + flavour
            print("%-4s %-12s %4d %10.2f %10.2f %10.2f %10.2f   %s" % (
                name, kind, len(samples[kind]), p50[kind], p90[kind], min(samples[kind]),
                max(samples[kind]), note))
        ratios = (p50["service"] / p50["floor"], p50["service"] / p50["floor-ahead"],
                  p50["service"] / p50["cold"])
        print("%-4s service p50 / floor p50 = %.2fx, / floor-ahead p50 = %.2fx, "
              "/ cold p50 = %.3fx (%.1f%%)" % (name, ratios[0], ratios[1], ratios[2],
                                                 100 * ratios[2]))
        if args.compare:
            print("%-4s service-b p50 / floor p50 = %.2fx, / floor-ahead p50 = %.2fx, "
                  "/ cold p50 = %.3fx; service p50 / service-b p50 = %.2fx" % (
                      name, p50["service-b"] / p50["floor"], p50["service-b"] / p50["floor-ahead"],
                      p50["service-b"] / p50["cold"], p50["service"] / p50["service-b"]))
        table.append((name, p50, p90, ratios))
    if rates:
        print()
        print("throughput: the service at c=%d (--max-concurrency %d) against %d floor processes "
              "forking back to back, %.0f s each in alternating blocks" % (
                  args.throughput, args.max_concurrency, args.max_concurrency, args.seconds))
        for name in workloads:
            service_rps, floor_rps = rates[name]
            print("%-4s service %.1f req/s, floor %.1f req/s: service / floor = %.2fx" % (
                name, service_rps, floor_rps, service_rps / floor_rps))
    print()
    print("markdown:")
    print()
    print("| workload | service p50 (p90) | floor p50 (p90) | floor-ahead p50 | cold p50 "
          "| service / floor | service / floor-ahead | service / cold |")
    print("|---|---|---|---|---|---|---|---|")
    for name, p50, p90, ratios in table:
        print("| %s | %.1f ms (%.1f) | %.1f ms (%.1f) | %.1f ms | %.0f ms | %.2fx | %.2fx | %.3fx |" % (
            DESCRIPTION[name], p50["service"], p90["service"], p50["floor"], p90["floor"],
            p50["floor-ahead"], p50["cold"], ratios[0], ratios[1], ratios[2]))
        if args.compare:
            print("| %s, service-b | %.1f ms (%.1f) | | | | %.2fx | %.2fx | %.3fx |" % (
                DESCRIPTION[name], p50["service-b"], p90["service-b"],
                p50["service-b"] / p50["floor"], p50["service-b"] / p50["floor-ahead"],
                p50["service-b"] / p50["cold"]))
    print()
    print("`%s`, %s UTC, %d CPUs, load average %s at start, %s at end." % (
        command_line, started.strftime("%Y-%m-%d %H:%M"), os.cpu_count(),
        load_start.split("load average:")[-1].strip(), load_end.split("load average:")[-1].strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
