"""The browser's smoke run: an Emscripten artifact in headless Chromium.

A page of ours (browser_page.html) is served from loopback beside the
artifact's files; it loads python.js with the smoke code as Python's
arguments, collects what Python prints, and marks itself done when the report
line arrives. Chromium is Debian's (/usr/bin/chromium, `apt-get install
chromium`), started headless with a fresh profile and driven by Playwright;
no browser is ever downloaded.
"""

import contextlib
import functools
import http.server
import json
import shutil
import signal
import tempfile
import threading
import time
import urllib.parse
from contextlib import contextmanager
from pathlib import Path

from cpython_wasm.errors import BuildError, UserError
from cpython_wasm.inputs.archives import safe_extract
from cpython_wasm.paths import display_path
from cpython_wasm.tools.smoke import check_report, parse_report, smoke_arguments, stdlib_zip

CHROMIUM = "/usr/bin/chromium"
# No sandbox (we may run as root, in a container), no GPU; Playwright adds a fresh temporary profile.
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage")
PAGE = Path(__file__).resolve().parent / "browser_page.html"
TIMEOUT_SECONDS = 120


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript",
                      ".data": "application/octet-stream"}

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


class IsolatedHandler(QuietHandler):
    """Also sends the headers that make a page cross-origin isolated, as CPython's web_example/server.py does:
    the REPL page's worker waits for input on a SharedArrayBuffer, which a browser gives only to such a page.
    `/` is the page being served (`index`), so that a client opening the server's root (CPython's own browser
    test does) gets it."""

    def __init__(self, *args, index: str, **kwargs):
        self.index = index  # before the base class's __init__, which handles the request
        super().__init__(*args, **kwargs)

    def translate_path(self, path):
        return super().translate_path(f"/{self.index}" if urllib.parse.urlsplit(path).path == "/" else path)

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()


# CPython's REPL pages in an Emscripten artifact: Tools/wasm's (3.11-3.13); Platforms/emscripten's web example
# and its PyREPL page (3.14+, which suspends Python for input through JSPI instead of a worker).
REPL_PAGES = ("python.html", "index.html", "pyrepl.html")


def repl_page(directory: Path, page: str | None = None) -> str:
    """The REPL page of an unpacked Emscripten artifact: `page`, which it must have, or its first."""
    pages = [name for name in REPL_PAGES if (directory / name).is_file()]
    if not pages:
        raise UserError(f"{display_path(directory)} has no REPL page ({', '.join(REPL_PAGES)}): serve an unpacked "
                        f"Emscripten artifact, or its .tar.gz.")
    if page is None:
        return pages[0]
    if page not in pages:
        raise UserError(f"--page {page!r} is not a page of this artifact, whose pages are {', '.join(pages)}. "
                        f"Pass one of them, or leave --page out for {pages[0]}.")
    return page


def serve(artifact: Path, port: int, announce, page: str | None = None) -> None:
    """Serve an Emscripten artifact (its .tar.gz, unpacked first, or its unpacked directory) on 127.0.0.1:port
    (0: a free one) with the headers its REPL pages need, `page` (default: its first) also at `/`;
    `announce(url)` once it listens; until interrupted."""
    with tempfile.TemporaryDirectory(prefix="cpython-wasm-serve-") as temp:
        if artifact.is_dir():
            directory = artifact
        elif artifact.is_file():
            directory = Path(temp) / "artifact"
            safe_extract(artifact, directory, strip_components=1)
        else:
            raise UserError(f"No artifact at {display_path(artifact)}: pass an Emscripten artifact's .tar.gz or the "
                            f"directory it unpacks to.")
        page = repl_page(directory, page)
        with served(directory, functools.partial(IsolatedHandler, index=page), port) as base_url:
            announce(f"{base_url}/{page}")
            # Until Ctrl-C or SIGTERM (how a service manager, or a test, stops it): either way the server
            # closes and the unpacked artifact is removed.
            stopped = threading.Event()
            previous = signal.signal(signal.SIGTERM, lambda number, frame: stopped.set())
            try:
                with contextlib.suppress(KeyboardInterrupt):
                    stopped.wait()
            finally:
                signal.signal(signal.SIGTERM, previous)


@contextmanager
def served(directory: Path, handler=QuietHandler, port: int = 0):
    """`directory` over HTTP on 127.0.0.1, on `port` (0: a free one); yields the base URL."""
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                                 functools.partial(handler, directory=str(directory)))
    except OSError as error:
        raise UserError(f"Cannot listen on 127.0.0.1:{port} ({error.strerror}). Choose another --port, or 0 for "
                        f"a free one.") from None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def module_stdlib(directory: Path) -> dict | None:
    """For an artifact of Platforms/emscripten (3.14+: python.mjs), where the page fetches the standard library
    zip and where in Emscripten's file system it writes it, as CPython's own worker does: /lib/python3XY.zip,
    with /lib/python3.X/lib-dynload beside it; None for python.js (3.11-3.13), whose python.data preloads it."""
    if not (directory / "python.mjs").is_file():
        return None
    zip_file = stdlib_zip(directory)
    line = zip_file.stem.removeprefix("python")
    return {"url": zip_file.name, "path": f"/lib/python{line.replace('.', '')}.zip",
            "dynload": f"/lib/python{line}/lib-dynload"}


def run_in_chromium(directory: Path, arguments: list[str], timeout: float = TIMEOUT_SECONDS) -> dict:
    """Serve `directory` (an unpacked artifact), run its interpreter (python.js, or python.mjs) with `arguments` in
    Chromium; return what the page saw."""
    if not Path(CHROMIUM).is_file():
        raise UserError(f"Chromium is not installed at {CHROMIUM}; the browser smoke run uses Debian's. Run "
                        f"`scripts/setup` (or `apt-get install chromium`) and try again.")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise UserError("Playwright is not installed; it drives Chromium for the browser smoke run. Run "
                        "`scripts/setup` (it installs the project with its test extras) and try again.") from None
    shutil.copy(PAGE, directory / "smoke.html")
    query = json.dumps({"arguments": arguments, "stdlib": module_stdlib(directory)})
    console = []
    with served(directory) as base_url, sync_playwright() as playwright:
        # launch() starts Chromium with a new, temporary profile each time.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page()
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
            page.add_init_script(f"window.SMOKE = {query};")
            page.goto(f"{base_url}/smoke.html")
            try:
                page.wait_for_function("document.getElementById('status').textContent !== 'running'",
                                       timeout=timeout * 1000)
            except PlaywrightError as error:
                raise BuildError(f"The page did not finish within {timeout:.0f} s ({error.message.splitlines()[0]}). "
                                 f"Console: {console[-20:]}") from None
            result = {"status": page.text_content("#status"), "stdout": page.text_content("#stdout"),
                      "stderr": page.text_content("#stderr"), "console": console,
                      "user_agent": page.evaluate("navigator.userAgent")}
        finally:
            browser.close()
    return result


def browser_smoke(artifact: Path, expected_version: str, modules=()) -> dict:
    """Unpack an Emscripten artifact and run the smoke code in Chromium; the report, or a BuildError."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cpython-wasm-browser-") as temp:
        unpacked = Path(temp) / "artifact"
        safe_extract(artifact, unpacked, strip_components=1)
        seen = run_in_chromium(unpacked, smoke_arguments(modules))
    if seen["status"] != "done":
        raise BuildError(f"In Chromium, python.js of {display_path(artifact)} ended with {seen['status']!r}. "
                         f"stderr: {seen['stderr'][-2000:]!r}; console: {seen['console'][-20:]}")
    report = parse_report(seen["stdout"], f"{display_path(artifact)} in Chromium")
    problems = check_report(report, expected_version, "emscripten", modules)
    if problems:
        raise BuildError(f"In Chromium, {display_path(artifact)} has problems: {'; '.join(problems)}. Report: {report}")
    report.update(browser=seen["user_agent"], seconds=round(time.monotonic() - start, 2))
    return report
