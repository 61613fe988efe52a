// Our Playwright configuration for CPython's own browser test (Platforms/emscripten/browser_test/index.spec.ts),
// copied beside the spec and the node_modules its package-lock.json pins (tests/e2e/test_repl_page.py).
// Upstream's configuration serves its build directory with npm's http-server and downloads a browser; this one
// serves the artifact's PyREPL page at / with `invoke serve` and uses Debian's Chromium, which resolves no
// host but 127.0.0.1, so the page can load nothing from the network. Python starts slower on a busy CI
// machine than Playwright's 5 s default expects, and the test runs once: a retry would hide a flaky page.
import { defineConfig, devices } from "@playwright/test";

const port = process.env.PORT;

export default defineConfig({
  testDir: ".",
  forbidOnly: true,
  retries: 0,
  reporter: "list",
  timeout: 300_000,
  expect: { timeout: 180_000 },
  outputDir: process.env.OUTPUT_DIR,
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    screenshot: "on",
  },
  projects: [
    {
      name: "chromium",
      use: {
        ...devices["Desktop Chrome"],
        launchOptions: {
          executablePath: process.env.CHROMIUM,
          args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        },
      },
    },
  ],
  webServer: {
    // The environment's values are expanded by the shell, never spliced into this string.
    command: 'exec "$INVOKE" serve "$ARTIFACT" --port "$PORT" --page pyrepl.html',
    cwd: process.env.PROJECT_ROOT, // where invoke finds tasks.py
    url: `http://127.0.0.1:${port}/`,
    reuseExistingServer: false,
    timeout: 120_000,
    stdout: "pipe",
  },
});
