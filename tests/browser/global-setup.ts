// Starts the real pysandboxd (PYSANDBOXD) on an ephemeral port, waits until its warm pool is up,
// and hands its URL to the tests (PYSANDBOX_URL); the returned function stops it.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const START_TIMEOUT_MS = 60_000;

export default async function globalSetup(): Promise<() => Promise<void>> {
  const binary = process.env.PYSANDBOXD;
  if (!binary) throw new Error("PYSANDBOXD must name the pysandboxd binary");
  const extra = (process.env.PYSANDBOX_BROWSER_SERVER_ARGS ?? "").split(" ").filter(Boolean);
  const server = spawn(binary, ["--listen", "127.0.0.1", "--port", "0", ...extra], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const log: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pysandboxd did not start:\n${log.join("\n")}`)), START_TIMEOUT_MS);
    server.on("exit", (code) => reject(new Error(`pysandboxd exited (${code}):\n${log.join("\n")}`)));
    createInterface({ input: server.stderr! }).on("line", (line) => {
      if (log.length < 2000) log.push(line);
      try {
        const event = JSON.parse(line);
        if (event.event === "startup" && event.port > 0) {
          clearTimeout(timer);
          resolve(event.port);
        }
      } catch {
        // not a JSON line
      }
    });
  });
  const url = `http://127.0.0.1:${port}`;
  // Warm sandboxes, as a user of a running server gets: wait until no zygote is starting.
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const health = await (await fetch(`${url}/healthz`)).json();
    const zygotes: Array<{ state: string }> = health.pool?.zygotes ?? [];
    if (!zygotes.some((z) => z.state === "starting")) break;
    if (Date.now() > deadline) throw new Error("the warm pool never became ready");
    await new Promise((r) => setTimeout(r, 100));
  }
  process.env.PYSANDBOX_URL = url;

  return async () => {
    if (server.exitCode !== null) return;
    const exited = new Promise((r) => server.on("exit", r));
    server.kill("SIGTERM");
    const timeout = setTimeout(() => server.kill("SIGKILL"), 40_000);
    await exited;
    clearTimeout(timeout);
  };
}
