"""End to end: CPython's own REPL page in an Emscripten artifact, as a person uses it, with no network.

`invoke serve` serves the artifact with the headers the page needs; Debian's Chromium (driven by Playwright)
opens the URL it prints, with every request that leaves 127.0.0.1 refused and recorded. The page must load
everything from the artifact (its xterm.js and Ace are shipped beside it, checked by the page's own integrity
hashes), start Python in its worker, run code typed into its own editor when its Run button is pressed,
and run what is typed into its REPL. What Python printed is read from the page's terminal: every string written
to the xterm.js Terminal, recorded by a wrapper installed before the page's scripts run. A screenshot of
each page is kept in the test's output directory. CPython's own browser test (a Playwright spec of its PyREPL
page, 3.14+) runs too, unchanged, on the artifact.
"""

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest

from cpython_wasm.inputs.fetch import Fetcher
from cpython_wasm.paths import Workspace
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.plan import Recipes
from tests.e2e.conftest import EMSCRIPTEN_SELECTION, HELPER_SELECTION
from tests.helpers import INVOKE, PROJECT_ROOT, free_port

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
# Installed before any script of the page: records what is written to every xterm.js Terminal the page makes
# (xterm.js's bundle assigns window.Terminal).
RECORD_TERMINAL = """
window.__terminal = "";
let recorded;
Object.defineProperty(window, "Terminal", {
  configurable: true,
  get() { return recorded; },
  set(Terminal) {
    const write = Terminal.prototype.write;
    Terminal.prototype.write = function (data, callback) {
      window.__terminal += typeof data === "string" ? data : new TextDecoder().decode(data);
      return write.call(this, data, callback);
    };
    recorded = Terminal;
  },
});
"""
# The page's own editor, Ace (3.14+'s web example).
SET_CODE = 'code => ace.edit("editor").setValue(code)'
# 3.13's page: a textarea.
SET_TEXTAREA = 'code => { document.getElementById("codebox").value = code; }'
# Python starts in a worker that loads the whole standard library: slow on a CI machine whose two cores are busy.
WAIT_MS = 180_000


def wait_for_terminal(page, condition: str, what: str) -> None:
    """Wait until `condition` (JavaScript, on window.__terminal) holds; if it never does, fail saying what the page's
    terminal showed."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(condition, timeout=WAIT_MS)
    except PlaywrightTimeout:
        pytest.fail(f"{what}: not seen in {WAIT_MS // 1000} s; the page's terminal showed "
                    f"{page.evaluate('window.__terminal')[-3000:]!r}")


@pytest.fixture(params=[EMSCRIPTEN_SELECTION[0], HELPER_SELECTION[0]])
def selection(request, build):
    chosen = {EMSCRIPTEN_SELECTION[0]: EMSCRIPTEN_SELECTION, HELPER_SELECTION[0]: HELPER_SELECTION}[request.param]
    result = build(*chosen[:3], target=chosen[3])
    return chosen, result


@pytest.fixture
def served_page(selection, tmp_path):
    """`invoke serve ARTIFACT --port 0` as a user runs it; the URL it prints. Stopped by SIGTERM, it removes the
    artifact it unpacked (into a TMPDIR of its own here, so that can be seen)."""
    _, result = selection
    temporary = tmp_path / "serve-tmp"
    temporary.mkdir()
    process = subprocess.Popen([INVOKE, "serve", str(result["artifact"]), "--port", "0"], cwd=PROJECT_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "TMPDIR": str(temporary)})
    try:
        line = process.stdout.readline()
        match = re.search(r"open (http://127\.0\.0\.1:\d+/\S+\.html)", line)
        assert match, f"invoke serve printed {line!r}"
        assert len(list(temporary.iterdir())) == 1  # the unpacked artifact
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode == 0 and list(temporary.iterdir()) == [], process.stdout.read()


def test_the_repl_page_runs_python_from_its_own_controls_offline(selection, served_page, tmp_path):
    from playwright.sync_api import sync_playwright

    (python, *_), _ = selection
    crc = zlib.crc32(b"wasm")
    refused, errors = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            context = browser.new_context()
            # No network but the artifact's server: anything else is refused, and remembered.
            context.route(re.compile(r"^(?!http://127\.0\.0\.1:)"),
                          lambda route: (refused.append(route.request.url), route.abort()))
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.add_init_script(RECORD_TERMINAL)
            page.goto(served_page)
            # Python started in the page's worker: its buttons are enabled.
            page.wait_for_selector("#repl:not([disabled])", timeout=WAIT_MS)
            assert page.evaluate("crossOriginIsolated") is True

            # Code typed into the page's own editor runs when Run is pressed: Ace on 3.14+'s page, a textarea
            # on 3.13's, whose worker writes main.py through Module.FS (exported by the recipe's LDFLAGS).
            page.evaluate(SET_CODE if page.evaluate("!!window.ace") else SET_TEXTAREA,
                          "import sys, zlib\nprint(sys.version.split()[0], sum(range(101)), zlib.crc32(b'wasm'))")
            page.click("#run")
            wait_for_terminal(page, f"window.__terminal.includes('{python} 5050 {crc}')", "what Run printed")
            # Loaded again, for a fresh worker (the page replaces the one that ran the code, and enables its
            # buttons before the new one is ready).
            page.reload()
            page.wait_for_selector("#repl:not([disabled])", timeout=WAIT_MS)

            # The REPL: started by its button, lines typed into the terminal, the answers printed.
            page.click("#repl")
            page.click("#terminal")
            for count, line in enumerate(["import sys, zlib", "print(sys.version.split()[0], 6 * 7, zlib.crc32(b'wasm'))"]):
                # Each line once the REPL asks for it (its prompt written once more).
                wait_for_terminal(page, f"window.__terminal.split('>>> ').length > {count + 1}", f"prompt {count + 1}")
                page.keyboard.type(line + "\n")
            wait_for_terminal(page, f"window.__terminal.includes('{python} 42 {crc}')", "what the REPL printed")
            page.screenshot(path=str(tmp_path / f"repl-{python}.png"), full_page=True)
            print(f"screenshot: {tmp_path / f'repl-{python}.png'}", file=sys.stderr)
        finally:
            browser.close()
    assert refused == [], f"the page asked the network for {refused}"
    assert errors == []


# CPython's own browser test of its PyREPL page, in the release's source, and our configuration for it.
BROWSER_TEST = "Platforms/emscripten/browser_test"
BROWSER_TEST_CONFIG = PROJECT_ROOT / "tests" / "e2e" / "browser_test.config.mjs"


def release_browser_test(selection: tuple, destination: Path) -> Path:
    """The Platforms/emscripten/browser_test/ of a selection's release, from its pinned source tarball (fetched
    and verified if not in the download cache), unpacked into `destination`."""
    python, emsdk, provider, target = selection
    pin = Recipes().resolve(python, emsdk, provider, target).release.source
    source = Fetcher(Workspace.from_options().cache_dir, (), Reporter()).fetch_all([pin])[pin.sha256]
    prefix = f"Python-{python}/{BROWSER_TEST}/"
    with tarfile.open(source) as archive:
        members = [member for member in archive.getmembers() if member.name.startswith(prefix)]
        archive.extractall(destination, members=members, filter="data")
    return destination / prefix


def test_cpythons_own_browser_test_passes_on_the_pyrepl_page_offline(build, tmp_path):
    """Upstream's spec, unchanged, with the Playwright its package-lock.json pins (npm ci checks every package's
    integrity hash): it opens the PyREPL page at the server's root, waits for the banner, defines and calls a
    function through the terminal and reads its output. Served by `invoke serve --page pyrepl.html`; Chromium
    resolves no host but 127.0.0.1, so the page's xterm.js and xterm-pty must come from the artifact."""
    python, emsdk, provider, target = HELPER_SELECTION
    result = build(python, emsdk, provider, target=target)
    spec = release_browser_test(HELPER_SELECTION, tmp_path / "source")
    shutil.copy(BROWSER_TEST_CONFIG, spec / BROWSER_TEST_CONFIG.name)
    npm = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=spec,
                         capture_output=True, text=True, timeout=600)
    assert npm.returncode == 0, npm.stderr[-4000:]
    output = tmp_path / "playwright"
    run = subprocess.run(["npx", "--no-install", "playwright", "test", "--config", BROWSER_TEST_CONFIG.name],
                         cwd=spec, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PORT": str(free_port()), "INVOKE": str(INVOKE), "CHROMIUM": CHROMIUM,
                              "PROJECT_ROOT": str(PROJECT_ROOT), "ARTIFACT": str(result["artifact"]),
                              "OUTPUT_DIR": str(output)})
    print(run.stdout, run.stderr, f"screenshots: {output}", sep="\n", file=sys.stderr)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert re.search(r"\b1 passed\b", run.stdout) and "failed" not in run.stdout
    assert list(output.rglob("*.png")), "the spec's screenshot"
