import hashlib
import http.server
import json
import socket
import threading
import time

import pytest

from cpython_wasm.inputs.fetch import Fetcher
from cpython_wasm.recipes.pins import PinnedFile
from cpython_wasm.recipes.plan import Recipes, host_arch
from cpython_wasm.tools.matrix import matrix_rows, unavailable, url_answers
from tests.helpers import invoke, pinned_recipes, serve_connections

OFFICIAL = {"3.11": "21", "3.12": "21", "3.13": "24", "3.14": "24", "3.15": "33"}  # PEP 11, as recorded under PEP 816
# CPython's own Platforms/emscripten/config.toml; 3.11-3.13 have no supported Emscripten pairing.
OFFICIAL_EMSDK = {"3.14": "4.0.12", "3.15": "4.0.19"}


def test_every_line_is_listed_with_its_official_pairing():
    rows = matrix_rows(Recipes(), "x86_64", fetcher=None)
    for line, sdk in OFFICIAL.items():
        official = [r for r in rows if r["line"] == line and r["official"] and r["target"] == "wasi"]
        assert official and {(r["sdk"], r["provider"]) for r in official} == {(sdk, "release")}
        assert any(r["latest"] for r in official)
    assert all(r["buildable"] is None for r in rows if r["target"] == "wasi")  # not checked without a fetcher
    assert not any(r["sdk"] in ("26", "27") for r in rows)


def test_emscripten_pairings_are_listed_and_say_which_are_buildable():
    rows = [r for r in matrix_rows(Recipes(), "x86_64", fetcher=None) if r["target"] == "emscripten"]
    official = {(r["line"], r["sdk"]) for r in rows if r["official"]}
    assert official == set(OFFICIAL_EMSDK.items())
    debian = [r for r in rows if r["line"] == "3.13" and r["provider"] == "debian"]
    assert debian and all(r["sdk"] == "3.1.69" and r["buildable"] is None for r in debian)  # availability not checked
    assert debian[0]["artifact"] == f"python-{debian[0]['python']}-emscripten-3.1.69-debian"
    # 3.14+ through CPython's own helper, with the official emsdk and with Debian's 6.0.5.
    helper = {(r["python"], r["sdk"], r["provider"]) for r in rows if r["line"] in OFFICIAL_EMSDK}
    assert {("3.14.6", "6.0.5", "debian"), ("3.14.6", "4.0.12", "release"), ("3.15.0rc2", "6.0.5", "debian"),
            ("3.15.0rc2", "4.0.19", "release")} <= helper
    assert all(r["missing"] == [] for r in rows if r["line"] in OFFICIAL_EMSDK)


def test_an_architecture_without_an_official_tarball_is_listed_as_not_buildable():
    rows = matrix_rows(Recipes(), "aarch64", fetcher=None)
    sdk21 = [r for r in rows if r["sdk"] == "21" and r["provider"] == "release"]
    assert sdk21 and all(r["buildable"] is False and "no official tarball for aarch64" in r["missing"][0] for r in sdk21)


def test_locate_says_where_a_pin_can_be_had(tmp_path, httpserver):
    httpserver.expect_request("/there", method="HEAD").respond_with_data("")
    httpserver.expect_request("/gone", method="HEAD").respond_with_data("", status=404)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "in-mirror.tar.gz").write_bytes(b"x")
    fetcher = Fetcher(tmp_path / "cache", [mirror])

    def pin(name, *urls):
        return PinnedFile(file=name, sha256="a" * 64, urls=urls)

    assert fetcher.locate(pin("in-mirror.tar.gz")) == str(mirror / "in-mirror.tar.gz")
    assert fetcher.locate(pin("x", httpserver.url_for("/gone"), httpserver.url_for("/there"))) == httpserver.url_for("/there")
    assert fetcher.locate(pin("x", httpserver.url_for("/gone"), "http://no-such-host.invalid/x")) is None
    (tmp_path / "cache" / "sha256" / ("a" * 64)).write_bytes(b"x")
    assert fetcher.locate(pin("x")) == "cache"


def test_matrix_json_is_a_build_matrix_for_ci():
    rows = json.loads(invoke("matrix", "--json", "--no-check", check=True).stdout)
    assert rows == matrix_rows(Recipes(), rows[0]["arch"], fetcher=None)
    for row in rows:
        assert {"python", "sdk", "provider", "target"} <= set(row)


@pytest.fixture
def silent_url():
    """A URL whose server accepts connections (the kernel does, up to the backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/never"


@pytest.fixture
def trickling_url():
    """A URL whose server sends its headers a byte every 0.1 s, for 20 s: no read timeout trips on it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)

        def trickle(connection):
            with connection:
                connection.recv(65536)
                for byte in (b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200)[:200]:
                    try:
                        connection.sendall(bytes([byte]))
                    except OSError:
                        return  # the client gave up
                    time.sleep(0.1)

        serve_connections(listener, trickle)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/slow"


def _pin(name: str, *urls: str) -> PinnedFile:
    return PinnedFile(file=name, sha256=hashlib.sha256(name.encode()).hexdigest(), urls=urls)


def test_a_server_that_never_answers_is_unreachable_once_the_deadline_passes(tmp_path, silent_url, trickling_url,
                                                                             httpserver):
    httpserver.expect_request("/there", method="HEAD").respond_with_data("")
    httpserver.expect_request("/gone", method="HEAD").respond_with_data("", status=404)
    # Many silent URLs: the deadline bounds them all together, and they hold up no other.
    silent = [_pin(f"silent-{n}.tar.gz", f"{silent_url}/{n}") for n in range(40)]
    there = _pin("there.tar.gz", silent_url, httpserver.url_for("/there"))  # one URL answering is enough
    gone = _pin("gone.tar.gz", httpserver.url_for("/gone"))
    trickling = _pin("trickling.tar.gz", trickling_url)  # only the deadline stops this one
    started = time.monotonic()
    missing = unavailable(Fetcher(tmp_path / "cache"), [*silent, there, gone, trickling], deadline=0.5)
    # Asked one after another with fetch's timeouts, the silent ones would take a minute each; the trickling
    # one takes 20 s, whatever the timeouts.
    assert time.monotonic() - started < 15
    assert missing == {**{pin.sha256: f"{pin.file}: unreachable (timed out)" for pin in [*silent, trickling]},
                       gone.sha256: "gone.tar.gz: HTTP 404"}


def test_each_url_is_asked_once_and_all_at_once(tmp_path):
    """Three URLs, answered only when all three requests are in at the same time."""
    together = threading.Barrier(3, timeout=20)

    class Together(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            try:
                together.wait()
                self.send_response(200)
            except threading.BrokenBarrierError:
                self.send_response(503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Together)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        # Five pins of the same file (one row each, as in the matrix), two others.
        pins = [_pin("shared.tar.gz", f"{base}/shared")] * 5 + [_pin("a.tar.gz", f"{base}/a"), _pin("b.tar.gz", f"{base}/b")]
        assert url_answers({url for pin in pins for url in pin.urls}, deadline=30) == dict.fromkeys(
            [f"{base}/shared", f"{base}/a", f"{base}/b"])
        assert unavailable(Fetcher(tmp_path / "cache"), pins, deadline=30) == {}  # a fourth request would wait alone
    finally:
        server.shutdown()
        server.server_close()


def test_the_matrix_names_the_input_that_cannot_be_had_and_why(tmp_path, silent_url):
    tarball = tmp_path / "wasi-sdk-25.0-x86_64-linux.tar.gz"
    tarball.write_bytes(b"not fetched")
    recipes = Recipes(pinned_recipes(tmp_path, "toolchains/wasi-sdk/25.toml", tarball, silent_url, "test_matrix"))
    fetcher = Fetcher(tmp_path / "cache")
    unchecked = matrix_rows(recipes, host_arch(), None, only="latest")
    checkable = [row for row in unchecked if row["buildable"] is None]  # the others cannot be built here anyway
    silent_sha256 = hashlib.sha256(b"not fetched").hexdigest()
    for row in checkable:  # every other input is in the cache: no network needed
        for pin in recipes.resolve(row["python"], row["sdk"], row["provider"], row["target"]).inputs:
            if pin.sha256 != silent_sha256:
                fetcher.cached_path(pin).write_bytes(b"")
    rows = matrix_rows(recipes, host_arch(), fetcher, only="latest", deadline=0.5)
    for before, row in zip(unchecked, rows, strict=True):
        if before not in checkable:
            assert row == before
        elif row["sdk"] == "25" and row["provider"] == "release" and row["target"] == "wasi":
            assert row["buildable"] is False and row["missing"] == [f"{tarball.name}: unreachable (timed out)"]
        else:
            assert row["buildable"] is True and row["missing"] == []
    assert any(row["sdk"] == "25" and row["buildable"] is False for row in rows)
