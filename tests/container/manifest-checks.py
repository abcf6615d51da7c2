#!/usr/bin/python3
"""Helpers for tests/container/run.sh (Debian's python3 + python3-yaml; no other modules).

  manifest-checks.py tojson IN.yaml OUT.json
      multi-document YAML -> JSON array (input of validate-manifests.mjs)
  manifest-checks.py consistency k8s RENDERED.yaml | cloudrun SERVICE.yaml
      the numbers in a manifest agree with the server's admission and timeouts
  manifest-checks.py podman-args RENDERED.yaml
      the Deployment's securityContext and env as podman run flags, one per line, then
      a last line "expect MODE" (the pysandbox.dev/expected-isolation annotation)
"""
import json
import sys

import yaml

SERVER_DEFAULTS = {  # pysandboxd --help defaults the manifests rely on when they leave them out
    "PYSANDBOX_MAX_TIMEOUT_MS": 30000,
    "PYSANDBOX_QUEUE_TIMEOUT_MS": 10000,
    "PYSANDBOX_QUEUE_SIZE": 64,
    "PYSANDBOX_MAX_MEMORY_MB": 2048,
}
QUANTITY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def bytes_of(quantity):
    q = str(quantity)
    for suffix, factor in QUANTITY.items():
        if q.endswith(suffix):
            return float(q[: -len(suffix)]) * factor
    return float(q)


def env_of(container):
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    def num(name):
        return int(env.get(name) or SERVER_DEFAULTS[name])
    return env, num


errors = []


def expect(cond, message):
    print(("ok   " if cond else "FAIL ") + message)
    if not cond:
        errors.append(message)


def check_k8s(path):
    docs = load(path)
    dep = next(d for d in docs if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env, num = env_of(c)
    name = f"{path}: Deployment"
    conc = int(env["PYSANDBOX_MAX_CONCURRENCY"])
    drain_ms = num("PYSANDBOX_MAX_TIMEOUT_MS") + 5000
    pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_stop_s = int(pre_stop[-1]) if pre_stop and pre_stop[0].endswith("sleep") else 0
    grace = pod.get("terminationGracePeriodSeconds", 30)
    expect(grace * 1000 >= pre_stop_s * 1000 + drain_ms,
           f"{name}: terminationGracePeriodSeconds {grace} >= preStop {pre_stop_s} s + drain "
           f"(max timeout + 5 s = {drain_ms / 1000:g} s)")
    mem = bytes_of(c["resources"]["limits"]["memory"])
    need = conc * num("PYSANDBOX_MAX_MEMORY_MB") * 2**20
    expect(mem > need, f"{name}: memory limit {c['resources']['limits']['memory']} > "
                       f"max-concurrency {conc} x max-memory-mb {num('PYSANDBOX_MAX_MEMORY_MB')}")
    # Readiness and start-up mean "serves warm" (/readyz); liveness only "the loop answers".
    for probe, path in (("readinessProbe", "/readyz"), ("startupProbe", "/readyz"),
                        ("livenessProbe", "/healthz")):
        p = c.get(probe, {}).get("httpGet", {})
        expect(p.get("path") == path, f"{name}: {probe} on {path}")
    expect("PORT" not in env, f"{name}: PORT left to the platform / PYSANDBOX_PORT")
    mode = dep["metadata"].get("annotations", {}).get("pysandbox.dev/expected-isolation")
    expect(mode in ("full", "namespaces", "rlimit"), f"{name}: expected-isolation annotation ({mode})")
    floor = env.get("PYSANDBOX_MIN_ISOLATION")
    expect(floor == mode, f"{name}: PYSANDBOX_MIN_ISOLATION ({floor}) = the mode it claims ({mode})")
    kinds = {d["kind"] for d in docs}
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                 "NetworkPolicy"):
        expect(kind in kinds, f"{path}: has a {kind}")
    netpol = next(d for d in docs if d["kind"] == "NetworkPolicy")
    expect(netpol["spec"].get("egress") == [] and "Egress" in netpol["spec"]["policyTypes"],
           f"{path}: NetworkPolicy denies all egress")


def check_cloudrun(path):
    (svc,) = load(path)
    tmpl = svc["spec"]["template"]
    spec = tmpl["spec"]
    c = spec["containers"][0]
    env, num = env_of(c)
    conc = int(env["PYSANDBOX_MAX_CONCURRENCY"])
    queue = num("PYSANDBOX_QUEUE_SIZE")
    cc = spec["containerConcurrency"]
    expect(cc == conc + queue,
           f"{path}: containerConcurrency {cc} = max-concurrency {conc} + queue-size {queue}")
    expect(1 <= cc <= 1000, f"{path}: containerConcurrency within Cloud Run's 1..1000")
    need = (num("PYSANDBOX_QUEUE_TIMEOUT_MS") + num("PYSANDBOX_MAX_TIMEOUT_MS")) / 1000 + 5
    ts = spec["timeoutSeconds"]
    expect(need <= ts <= 3600, f"{path}: timeoutSeconds {ts} >= queue timeout + max timeout + 5 s "
                               f"({need:g}) and <= 3600")
    ann = tmpl["metadata"]["annotations"]
    gen = ann.get("run.googleapis.com/execution-environment")
    expect(gen in ("gen1", "gen2"), f"{path}: execution-environment {gen}")
    floor = env.get("PYSANDBOX_MIN_ISOLATION")
    want = {"gen1": "rlimit", "gen2": "namespaces"}.get(gen)
    expect(floor == want, f"{path}: PYSANDBOX_MIN_ISOLATION {floor} fits {gen} ({want})")
    expect("PORT" not in env and "PYSANDBOX_PORT" not in env,
           f"{path}: PORT left to Cloud Run (reserved; the server honours it)")
    port = c["ports"][0]
    expect(port.get("name") in ("http1", "h2c"), f"{path}: port name {port.get('name')}")
    for probe, probe_path in (("startupProbe", "/readyz"), ("livenessProbe", "/healthz")):
        p = c.get(probe, {}).get("httpGet", {})
        expect(p.get("path") == probe_path and p.get("port") == port["containerPort"],
               f"{path}: {probe} on {probe_path} at the container port")
    mem = bytes_of(c["resources"]["limits"]["memory"])
    expect(mem > conc * num("PYSANDBOX_MAX_MEMORY_MB") * 2**20,
           f"{path}: memory limit covers max-concurrency x max-memory-mb")
    for k, v in {**svc["metadata"].get("annotations", {}), **ann}.items():
        expect(isinstance(v, str), f"{path}: annotation {k} is a string")


def podman_args(path):
    """The k8s securityContext as podman flags (what a kubelet + containerd would do)."""
    docs = load(path)
    dep = next(d for d in docs if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    sc = {**pod.get("securityContext", {}), **c.get("securityContext", {})}
    args = []
    if sc.get("privileged"):
        args.append("--privileged")
    caps = sc.get("capabilities") or {}
    if "ALL" in caps.get("drop", []):
        args += ["--cap-drop", "ALL"]
    if caps.get("add"):
        args += ["--cap-add", ",".join(caps["add"])]
    seccomp = (sc.get("seccompProfile") or {}).get("type", "RuntimeDefault")
    if seccomp == "Unconfined":
        args += ["--security-opt", "seccomp=unconfined"]
    elif seccomp != "RuntimeDefault":
        sys.exit(f"podman-args: seccompProfile {seccomp} not translated")
    # AppArmor: this host has none; nothing to translate (documented in the README).
    if sc.get("procMount") == "Unmasked":
        args += ["--security-opt", "unmask=ALL"]
    if sc.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    if sc.get("readOnlyRootFilesystem"):
        args += ["--read-only"]
    for m in c.get("volumeMounts", []):
        args += ["--tmpfs", m["mountPath"]]
    if "runAsUser" in sc:
        args += ["--user", f"{sc['runAsUser']}:{sc.get('runAsGroup', sc['runAsUser'])}"]
    if pod.get("hostUsers") is False:
        # What the kubelet does: a private 65536-id range for the pod.
        args += ["--uidmap", "0:200000:65536", "--gidmap", "0:200000:65536"]
    for e in c.get("env", []):
        if e["name"] != "PYSANDBOX_PORT":
            args += ["-e", f"{e['name']}={e['value']}"]
    for a in args:
        print(a)
    print("expect " + dep["metadata"]["annotations"]["pysandbox.dev/expected-isolation"])


def main():
    cmd, *rest = sys.argv[1:]
    if cmd == "tojson":
        with open(rest[1], "w") as f:
            json.dump(load(rest[0]), f)
    elif cmd == "consistency":
        (check_k8s if rest[0] == "k8s" else check_cloudrun)(rest[1])
        sys.exit(1 if errors else 0)
    elif cmd == "podman-args":
        podman_args(rest[0])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
