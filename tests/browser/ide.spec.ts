// The web IDE as a person uses it, in Chromium against the real server: load, type and run with
// the keyboard, errors with their traceback line highlighted, a timeout, the examples menu,
// cancel, the mode badge, reload and share links, a narrow screen, and an accessibility audit.
// Screenshots of the main states go to $PYSANDBOX_BROWSER_ARTIFACTS/screenshots.
import AxeBuilder from "@axe-core/playwright";
import { expect, type Page, test } from "@playwright/test";

const artifacts = process.env.PYSANDBOX_BROWSER_ARTIFACTS ?? "test-results";
const shot = (name: string) => `${artifacts}/screenshots/${name}.png`;
const url = () => {
  const value = process.env.PYSANDBOX_URL;
  if (!value) throw new Error("PYSANDBOX_URL is not set (global-setup starts the server)");
  return value;
};

const editor = (page: Page) => page.locator(".cm-content");
const output = (page: Page) => page.locator(".output");
const runButton = (page: Page) => page.getByRole("button", { name: /^Run/ });

// Console errors and uncaught exceptions of the page. A 4xx answer from /execute is the API
// working, and Chromium logs it as a failed resource load: only that is tolerated, when asked.
function watchConsole(page: Page) {
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(`uncaught: ${error.message}`));
  return {
    unexpected: (allowApiErrors = false) =>
      errors.filter((e) => !(allowApiErrors && /Failed to load resource: .*status of 4\d\d/.test(e))),
  };
}

async function open(page: Page) {
  await page.goto(url() + "/");
  await expect(editor(page)).toBeVisible();
  await expect(page.getByTestId("mode-badge")).toBeVisible();
}

// Replaces the script by typing it, as a person would (the editor's auto-indentation and
// bracket closing included: the lines are typed without their indentation).
async function typeScript(page: Page, lines: string[]) {
  await editor(page).click();
  await page.keyboard.press("Control+a");
  await page.keyboard.press("Delete");
  for (let i = 0; i < lines.length; i++) {
    if (i > 0) await page.keyboard.press("Enter");
    await page.keyboard.type(lines[i]);
  }
}

async function loadExample(page: Page, id: string) {
  await page.getByLabel("Examples").selectOption(id);
}

test.beforeEach(async ({ page }) => {
  // Each test starts from the default script.
  await page.goto(url() + "/");
  await page.evaluate(() => localStorage.clear());
});

test("loads without console errors; a typed script runs with Ctrl+Enter", async ({ page }) => {
  const console = watchConsole(page);
  await open(page);
  await page.screenshot({ path: shot("01-loaded") });

  await typeScript(page, ["def main():", 'print("typed in the browser")', 'return {"answer": 6 * 7}']);
  await expect(editor(page)).toContainText('    return {"answer": 6 * 7}');
  await page.keyboard.press("Control+Enter");

  await expect(output(page)).toHaveAttribute("data-outcome", "ok");
  await expect(page.locator("pre.result")).toContainText('"answer": 42');
  await expect(page.getByRole("region", { name: "Stdout" })).toContainText("typed in the browser");
  await expect(page.getByRole("region", { name: "Stderr" })).toContainText("(empty)");
  const run = page.getByRole("region", { name: "Run" });
  await expect(run).toContainText("Wall");
  await expect(run).toContainText("Peak memory");
  await expect(run).toContainText(/Isolation\s*(namespaces|full|rlimit)/);
  await expect(run).toContainText(/Start\s*(warm|cold)/);
  await page.screenshot({ path: shot("02-result") });
  expect(console.unexpected()).toEqual([]);
});

test("an exception shows its traceback and highlights its line", async ({ page }) => {
  const console = watchConsole(page);
  await open(page);
  await loadExample(page, "exception");
  await runButton(page).click();
  await expect(output(page)).toHaveAttribute("data-outcome", "exception");
  await expect(page.locator(".error-message")).toContainText("ZeroDivisionError: division by zero");
  await expect(page.locator("pre.trace")).toContainText('File "<script>", line 2, in average');
  // The innermost frame of the script is highlighted in the editor.
  const highlighted = page.locator(".cm-error-line");
  await expect(highlighted).toHaveCount(1);
  await expect(highlighted).toHaveAttribute("data-error-line", "2");
  await expect(highlighted).toContainText("return sum(values) / len(values)");
  await expect(page.getByRole("region", { name: "Stdout" })).toContainText("averaging an empty list");
  await page.screenshot({ path: shot("03-exception") });
  // Editing the script clears the stale highlight.
  await editor(page).click();
  await page.keyboard.type("#");
  await expect(highlighted).toHaveCount(0);
  expect(console.unexpected(true)).toEqual([]);
});

test("a syntax error highlights the line the sentence names", async ({ page }) => {
  await open(page);
  await loadExample(page, "syntax_error");
  await page.keyboard.press("Control+Enter");
  await expect(output(page)).toHaveAttribute("data-outcome", "syntax_error");
  await expect(page.locator(".cm-error-line")).toHaveAttribute("data-error-line", "1");
});

test("a timeout shows as such, with the running indicator meanwhile", async ({ page }) => {
  await open(page);
  await loadExample(page, "timeout");
  await expect(page.getByLabel("Timeout (ms)")).toHaveValue("1000");
  await page.keyboard.press("Control+Enter");
  await expect(page.getByText(/Running… \d/)).toBeVisible();
  await expect(runButton(page)).toBeDisabled();
  await page.screenshot({ path: shot("04-running") });
  await expect(output(page)).toHaveAttribute("data-outcome", "timeout");
  await expect(page.locator(".error-message")).toContainText("did not finish within 1000 ms");
  await expect(page.locator(".outcome-limit")).toBeVisible();
  await expect(runButton(page)).toBeEnabled();
  await page.screenshot({ path: shot("05-timeout") });
});

test("the examples menu loads each example; pandas and numpy run", async ({ page }) => {
  await open(page);
  const options = await page.getByLabel("Examples").locator("option:not([disabled])").allTextContents();
  expect(options.length).toBeGreaterThanOrEqual(12);
  for (const [id, result] of [
    ["pandas", '"sum": 6'],
    ["numpy", '"total": 15'],
    ["network", '"connected": false'],
    ["file_write", '"written": false'],
  ] as const) {
    await loadExample(page, id);
    await page.keyboard.press("Control+Enter");
    await expect(output(page)).toHaveAttribute("data-outcome", "ok");
    await expect(page.locator("pre.result")).toContainText(result);
  }
  for (const [id, type] of [
    ["no_main", "no_main"],
    ["main_not_callable", "main_not_callable"],
    ["not_json_serializable", "not_json_serializable"],
    ["memory_limit", "memory_limit"],
    ["output_limit", "output_limit"],
    ["killed", "killed"],
  ] as const) {
    await loadExample(page, id);
    await page.keyboard.press("Control+Enter");
    await expect(output(page)).toHaveAttribute("data-outcome", type);
  }
  // Undo brings back the script the last example (killed: ctypes) replaced.
  await expect(editor(page)).toContainText("ctypes");
  await editor(page).click();
  await page.keyboard.press("Control+z");
  await expect(editor(page)).toContainText("sys.stdout.write(block)");
  await expect(editor(page)).not.toContainText("ctypes");
});

test("stdin reaches the script", async ({ page }) => {
  await open(page);
  await loadExample(page, "stdin");
  await page.getByLabel("Standard input").fill("one two three");
  await runButton(page).click();
  await expect(page.locator("pre.result")).toContainText('"words": 3');
});

test("cancel aborts the request", async ({ page }) => {
  await open(page);
  await typeScript(page, ["import time", "def main():", "time.sleep(8)"]);
  await page.getByLabel("Timeout (ms)").fill("10000");
  const request = page.waitForRequest((r) => r.url().endsWith("/execute"));
  await runButton(page).click();
  const sent = await request;
  await expect(page.getByText(/Running…/)).toBeVisible();
  const cancel = page.getByRole("button", { name: "Cancel" });
  await expect(cancel).toBeEnabled();
  const failed = page.waitForEvent("requestfailed", (r) => r === sent);
  await cancel.click();
  await expect(page.getByText(/Cancelled after/)).toBeVisible();
  expect((await failed).failure()?.errorText).toMatch(/ABORTED|cancel/i);
  await expect(runButton(page)).toBeEnabled();
  await expect(cancel).toBeDisabled();
  // The server sees its client go and stops the run at once, long before the script's 8 s.
  await expect
    .poll(async () => (await (await fetch(url() + "/healthz")).json()).admission.in_flight, {
      timeout: 5000,
    })
    .toBe(0);
});

test("the mode badge and pool state match /healthz", async ({ page }) => {
  await open(page);
  const health = await (await fetch(url() + "/healthz")).json();
  await expect(page.getByTestId("mode-badge")).toHaveText(health.isolation.mode);
  const pool = page.getByTestId("pool-state");
  if (health.pool.enabled) {
    await expect(pool).toContainText(/pool: \d+ ready, \d+ busy/);
  } else {
    await expect(pool).toContainText("pool: off");
  }
});

test("a reload keeps the script and its settings", async ({ page }) => {
  await open(page);
  await typeScript(page, ["def main():", "return 'kept across reloads'"]);
  await page.getByLabel("Memory (MB)").fill("128");
  await page.reload();
  await expect(editor(page)).toContainText("return 'kept across reloads'");
  await expect(page.getByLabel("Memory (MB)")).toHaveValue("128");
});

test("a share link opens the same script elsewhere", async ({ page, browser }) => {
  await open(page);
  await typeScript(page, ["def main():", "return 'shared'"]);
  await page.getByRole("button", { name: "Share" }).click();
  const link = await page.locator("#share-url").inputValue();
  expect(link).toContain("#run=");

  const other = await browser.newContext();  // fresh storage: only the link carries the script
  const visitor = await other.newPage();
  await visitor.goto(link);
  await expect(visitor.locator(".cm-content")).toContainText("return 'shared'");
  await expect(visitor.getByText("Loaded the script from the shared link.")).toBeVisible();
  expect(new URL(visitor.url()).hash).toBe("");
  await visitor.keyboard.press("Control+Enter");
  await expect(visitor.locator("pre.result")).toContainText('"shared"');
  await other.close();
});

test("keyboard only: choose an example, run it, reach the output", async ({ page }) => {
  await open(page);
  await page.locator("body").click({ position: { x: 5, y: 5 } });
  // Tab order starts in the toolbar: the examples menu first.
  await page.keyboard.press("Tab");
  await expect(page.getByLabel("Examples")).toBeFocused();
  await page.keyboard.press("ArrowDown");  // selects the first example and loads it
  await expect(page.getByLabel("Examples")).toBeFocused();
  await expect(editor(page)).toContainText("hello from the sandbox");
  await expect(page.getByRole("status").filter({ hasText: "Loaded the example" })).toBeVisible();
  // The shortcut works from anywhere; then the Run button is next in the tab order.
  await page.keyboard.press("Control+Enter");
  await expect(output(page)).toHaveAttribute("data-outcome", "ok");
  await page.keyboard.press("Tab");
  await expect(runButton(page)).toBeFocused();
  const runs = page.waitForResponse((r) => r.url().endsWith("/execute"));
  await page.keyboard.press("Enter");
  await runs;
  await expect(runButton(page)).toBeEnabled();
  // The editor follows the toolbar in the tab order; Escape then Tab leaves it again.
  await page.getByRole("button", { name: "Share" }).focus();
  await page.keyboard.press("Tab");
  await expect(editor(page)).toBeFocused();
  // Escape then Tab leaves the editor (Tab alone indents).
  await page.keyboard.press("Escape");
  await page.keyboard.press("Tab");
  await expect(editor(page)).not.toBeFocused();
});

test("narrow screen: one column, nothing wider than the viewport", async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await open(page);
  await loadExample(page, "exception");
  await page.keyboard.press("Control+Enter");
  await expect(output(page)).toHaveAttribute("data-outcome", "exception");
  // The output, below the editor here, is brought into view when the run ends.
  await expect(page.locator(".output-pane")).toBeInViewport();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width).toBeLessThanOrEqual(390);
  // Both boxes from one frame: the output may still be scrolling into view, and two separate
  // boundingBox() calls would measure it at two scroll positions.
  const [editorBottom, outputTop] = await page.evaluate(() => {
    const editorBox = document.querySelector(".editor")!.getBoundingClientRect();
    const outputBox = document.querySelector(".output-pane")!.getBoundingClientRect();
    return [editorBox.bottom, outputBox.top];
  });
  expect(outputTop).toBeGreaterThan(editorBottom - 1);
  await page.screenshot({ path: shot("06-narrow"), fullPage: true });
});

for (const scheme of ["light", "dark"] as const) {
  test(`accessibility audit (${scheme}): labels, roles, contrast`, async ({ page }) => {
    await page.emulateMedia({ colorScheme: scheme });
    await open(page);
    await loadExample(page, "exception");
    await page.keyboard.press("Control+Enter");
    await expect(output(page)).toHaveAttribute("data-outcome", "exception");
    const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21aa"]).analyze();
    const violations = results.violations.map(
      (v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")})`,
    );
    expect(violations).toEqual([]);
    if (scheme === "dark") await page.screenshot({ path: shot("07-dark") });
  });
}
