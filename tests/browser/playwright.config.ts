// The web IDE in Debian's Chromium (no browser download: executablePath) against the real
// pysandboxd, started by global-setup.ts. Run through tests/browser/run.sh (CTest browser.ide).
import { defineConfig } from "@playwright/test";

const artifacts = process.env.PYSANDBOX_BROWSER_ARTIFACTS ?? "test-results";

export default defineConfig({
  testDir: ".",
  testMatch: "*.spec.ts",
  outputDir: `${artifacts}/results`,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  globalSetup: "./global-setup.ts",
  use: {
    browserName: "chromium",
    headless: true,
    viewport: { width: 1280, height: 800 },
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      // As root Chromium needs --no-sandbox; the rest keeps it off the (closed) network.
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
    screenshot: "only-on-failure",
    trace: "off",
  },
});
