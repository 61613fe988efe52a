"""Fetching against real local HTTP servers: pytest-httpserver, and a raw socket
server for the ways a server can misbehave below HTTP."""

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from werkzeug import Response

from cpython_wasm import fetch
from cpython_wasm.errors import FetchError, UserError
from cpython_wasm.fetch import Fetcher, HashMismatch, check_mirror_dirs
from cpython_wasm.pins import PinnedFile

DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(fetch, "BACKOFF_SECONDS", (0, 0))


def pin(*urls, sha256=SHA, name="thing-1.0.tar.gz"):
    return PinnedFile(file=name, sha256=sha256, size=len(DATA), urls=urls, sha256_sources=("test",))


def cache_is_clean(cache):
    return not list((cache / "tmp").iterdir())


def test_a_good_download_is_stored_by_hash(tmp_path, httpserver):
    httpserver.expect_request("/thing").respond_with_data(DATA)
    path = Fetcher(tmp_path).fetch(pin(httpserver.url_for("/thing")))
    assert path == tmp_path / "sha256" / SHA
    assert path.read_bytes() == DATA
    assert cache_is_clean(tmp_path)


def test_a_wrong_hash_stores_nothing_and_names_everything(tmp_path, httpserver):
    httpserver.expect_request("/thing").respond_with_data(DATA + b"tampered")
    url = httpserver.url_for("/thing")
    with pytest.raises(HashMismatch) as error:
        Fetcher(tmp_path).fetch(pin(url))
    message = str(error.value)
    assert "thing-1.0.tar.gz" in message and url in message
    assert SHA in message and hashlib.sha256(DATA + b"tampered").hexdigest() in message
    assert not (tmp_path / "sha256" / SHA).exists()
    assert cache_is_clean(tmp_path)


def test_a_mismatch_stops_even_when_another_url_would_serve_the_right_bytes(tmp_path, httpserver):
    httpserver.expect_request("/bad").respond_with_data(b"evil")
    httpserver.expect_request("/good").respond_with_data(DATA)
    with pytest.raises(HashMismatch):
        Fetcher(tmp_path).fetch(pin(httpserver.url_for("/bad"), httpserver.url_for("/good")))
    assert all(entry[0].path != "/good" for entry in httpserver.log)


def test_404_then_the_next_url(tmp_path, httpserver):
    httpserver.expect_request("/missing").respond_with_data("gone", status=404)
    httpserver.expect_request("/mirror/thing").respond_with_data(DATA)
    path = Fetcher(tmp_path).fetch(pin(httpserver.url_for("/missing"), httpserver.url_for("/mirror/thing")))
    assert path.read_bytes() == DATA
    assert [entry[0].path for entry in httpserver.log] == ["/missing", "/mirror/thing"]


def test_server_errors_are_retried_a_bounded_number_of_times(tmp_path, httpserver):
    httpserver.expect_request("/flaky").respond_with_data("busy", status=503)
    with pytest.raises(FetchError) as error:
        Fetcher(tmp_path).fetch(pin(httpserver.url_for("/flaky")))
    assert len(httpserver.log) == fetch.ATTEMPTS
    assert "HTTP 503" in str(error.value) and "--mirror DIR" in str(error.value)


def test_everything_unreachable_lists_what_was_tried(tmp_path):
    urls = ("http://127.0.0.1:9/a", "http://no-such-host.invalid/b")
    with pytest.raises(FetchError) as error:
        Fetcher(tmp_path).fetch(pin(*urls))
    message = str(error.value)
    for url in urls:
        assert url in message
    assert "host name not resolved" in message
    assert "--mirror DIR" in message
    assert cache_is_clean(tmp_path)


# Announces the whole body, sends a sliver of it, hangs up.
TRUNCATED = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(DATA)) + DATA[:1000]


@pytest.fixture
def raw_server():
    """A server that sends a fixed HTTP response (possibly lying about its length) and hangs up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    state = {"response": b"", "requests": 0}

    def serve():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                state["requests"] += 1
                connection.sendall(state["response"])

    threading.Thread(target=serve, daemon=True).start()
    yield state, f"http://127.0.0.1:{listener.getsockname()[1]}/thing"
    listener.close()


def test_a_truncated_body_is_retried_then_the_next_url_is_used(tmp_path, raw_server, httpserver):
    state, truncating_url = raw_server
    state["response"] = TRUNCATED
    httpserver.expect_request("/thing").respond_with_data(DATA)
    path = Fetcher(tmp_path).fetch(pin(truncating_url, httpserver.url_for("/thing")))
    assert path.read_bytes() == DATA
    assert state["requests"] == fetch.ATTEMPTS
    assert cache_is_clean(tmp_path)


def test_a_truncated_body_alone_fails_clearly(tmp_path, raw_server):
    state, url = raw_server
    state["response"] = TRUNCATED
    with pytest.raises(FetchError, match="broke off mid-transfer"):
        Fetcher(tmp_path).fetch(pin(url))
    assert not (tmp_path / "sha256" / SHA).exists()
    assert cache_is_clean(tmp_path)


def test_a_damaged_cache_entry_is_noticed_and_fetched_again(tmp_path, httpserver):
    httpserver.expect_request("/thing").respond_with_data(DATA)
    fetcher = Fetcher(tmp_path)
    path = fetcher.fetch(pin(httpserver.url_for("/thing")))
    path.chmod(0o644)
    path.write_bytes(DATA[:-1] + bytes([DATA[-1] ^ 1]))  # one flipped bit
    assert fetcher.fetch(pin(httpserver.url_for("/thing"))).read_bytes() == DATA
    assert len(httpserver.log) == 2


def test_mirror_directories_come_before_urls(tmp_path, httpserver):
    by_name, by_hash = tmp_path / "by-name", tmp_path / "by-hash"
    by_name.mkdir()
    (by_hash / "sha256").mkdir(parents=True)
    (by_name / "thing-1.0.tar.gz").write_bytes(DATA)
    (by_hash / "sha256" / SHA).write_bytes(DATA)
    url = httpserver.url_for("/thing")
    for mirror in (by_name, by_hash):
        cache = tmp_path / f"cache-{mirror.name}"
        assert Fetcher(cache, [mirror]).fetch(pin(url)).read_bytes() == DATA
    assert httpserver.log == []


def test_a_mirror_file_with_the_right_name_but_wrong_bytes_is_refused(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "thing-1.0.tar.gz").write_bytes(b"an older release")
    with pytest.raises(HashMismatch, match="mirror/thing-1.0.tar.gz"):
        Fetcher(tmp_path / "cache", [mirror]).fetch(pin())


CONCURRENT_FETCH = """
import sys
from cpython_wasm.fetch import Fetcher
from cpython_wasm.pins import PinnedFile
pin = PinnedFile(file="thing", sha256=sys.argv[2], urls=(sys.argv[3],))
print(Fetcher(sys.argv[1]).fetch(pin))
"""


def test_two_processes_fetching_one_file_download_it_once(tmp_path, httpserver):
    def slow(request):
        time.sleep(1.0)
        return Response(DATA)

    httpserver.expect_request("/thing").respond_with_handler(slow)
    command = [sys.executable, "-c", CONCURRENT_FETCH, str(tmp_path), SHA, httpserver.url_for("/thing")]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=60)[0].strip() for process in processes]
    assert [process.returncode for process in processes] == [0, 0]
    assert outputs[0] == outputs[1] == str(tmp_path / "sha256" / SHA)
    assert len(httpserver.log) == 1
    assert (tmp_path / "sha256" / SHA).read_bytes() == DATA


@pytest.mark.parametrize("value, expected", [
    ("https://example.org/mirror", "is a URL"),
    ("ftp://example.org/mirror", "is a URL"),
    ("/no/such/directory", "is not a directory"),
])
def test_mirror_options_are_validated(value, expected):
    with pytest.raises(UserError, match=expected):
        check_mirror_dirs([value])
