// The examples menu: what the service does, and one of each way a run can fail.

export interface Example {
  id: string;
  title: string;
  script: string;
  // Settings the example needs to show its point (e.g. a short timeout).
  timeout_ms?: number;
  memory_mb?: number;
  stdin?: string;
}

export const EXAMPLES: Example[] = [
  {
    id: "hello",
    title: "Hello: print and return a value",
    script: `def main():
    print("hello from the sandbox")
    return {"sum": 1 + 2, "items": (1, 2)}
`,
  },
  {
    id: "pandas",
    title: "pandas: a Series",
    script: `import pandas as pd


def main():
    s = pd.Series([1, 2, 3])
    print("len:", len(s))
    return {"sum": int(s.sum())}
`,
  },
  {
    id: "numpy",
    title: "numpy: an array",
    script: `import numpy as np


def main():
    a = np.arange(6).reshape(2, 3)
    return {"shape": list(a.shape), "total": int(a.sum()), "rows": a.tolist()}
`,
  },
  {
    id: "stdin",
    title: "Read standard input",
    script: `import sys


def main():
    words = sys.stdin.read().split()
    return {"words": len(words), "longest": max(words, key=len, default=None)}
`,
    stdin: "the quick brown fox jumps over the lazy dog",
  },
  {
    id: "exception",
    title: "Error: an exception (traceback)",
    script: `def average(values):
    return sum(values) / len(values)


def main():
    print("averaging an empty list...")
    return average([])
`,
  },
  {
    id: "syntax_error",
    title: "Error: a syntax error",
    script: `def main()
    return 1
`,
  },
  {
    id: "no_main",
    title: "Error: no main()",
    script: `def helper():
    return 1
`,
  },
  {
    id: "main_not_callable",
    title: "Error: main is not a function",
    script: `main = 42
`,
  },
  {
    id: "not_json_serializable",
    title: "Error: a result that is not JSON",
    script: `import numpy as np


def main():
    return np.float64(0.5)
`,
  },
  {
    id: "timeout",
    title: "Limit: a timeout (1 s)",
    script: `def main():
    while True:
        pass
`,
    timeout_ms: 1000,
  },
  {
    id: "memory_limit",
    title: "Limit: memory",
    script: `def main():
    chunks = []
    while True:
        chunks.append(bytearray(16 * 1024 * 1024))
`,
    memory_mb: 128,
  },
  {
    id: "output_limit",
    title: "Limit: too much output",
    script: `import sys


def main():
    block = "x" * (1024 * 1024)
    for _ in range(100):
        sys.stdout.write(block)
`,
  },
  {
    id: "killed",
    title: "Limit: killed by a signal (segfault)",
    script: `import ctypes


def main():
    return ctypes.string_at(0)  # reads address 0: SIGSEGV
`,
  },
  {
    id: "network",
    title: "Blocked: a network call",
    script: `import socket


def main():
    try:
        socket.create_connection(("1.1.1.1", 80), timeout=2)
    except OSError as e:
        return {"connected": False, "error": f"{type(e).__name__}: {e}"}
    return {"connected": True}
`,
  },
  {
    id: "file_write",
    title: "Blocked: writing outside /tmp",
    script: `def main():
    with open("/tmp/scratch.txt", "w") as f:  # the sandbox's private /tmp works
        f.write("ok")
    try:
        with open("/usr/lib/python3/pwned.py", "w") as f:
            f.write("print('pwned')")
    except OSError as e:
        return {"written": False, "error": f"{type(e).__name__}: {e}"}
    return {"written": True}
`,
  },
];

export const DEFAULT_EXAMPLE = EXAMPLES[0];
