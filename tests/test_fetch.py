"""Fetching against real local HTTP servers: pytest-httpserver, and a raw socket
server for the ways a server can misbehave below HTTP."""

import hashlib
import io
import os
import re
import socket
import struct
import subprocess
import sys
import time

import pytest
from rich.console import Console
from werkzeug import Response

from cpython_wasm.errors import FetchError, UserError
from cpython_wasm.inputs import fetch
from cpython_wasm.inputs.fetch import Fetcher, HashMismatch, check_mirror_dirs
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.pins import PinnedFile
from tests.helpers import serve_connections

DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(fetch, "BACKOFF_SECONDS", (0, 0))


def pin(*urls, data=DATA, name="thing-1.0.tar.gz"):
    """The pin of `data`, to be had from `urls`."""
    return PinnedFile(file=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data), urls=urls, sha256_sources=("test",))


def cache_is_clean(cache):
    return not list((cache / "tmp").iterdir())


def test_a_good_download_is_stored_by_hash(tmp_path, httpserver):
    httpserver.expect_request("/thing").respond_with_data(DATA)
    path = Fetcher(tmp_path).fetch(pin(httpserver.url_for("/thing")))
    assert path == tmp_path / "sha256" / SHA
    assert path.read_bytes() == DATA
    assert cache_is_clean(tmp_path)


def test_a_wrong_hash_stores_nothing_and_names_everything(tmp_path, httpserver):
    tampered = DATA[:-8] + b"tampered"
    httpserver.expect_request("/thing").respond_with_data(tampered)
    url = httpserver.url_for("/thing")
    with pytest.raises(HashMismatch) as error:
        Fetcher(tmp_path).fetch(pin(url))
    message = str(error.value)
    assert "thing-1.0.tar.gz" in message and url in message
    assert SHA in message and hashlib.sha256(tampered).hexdigest() in message
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


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_a_bounded_number_of_times(tmp_path, httpserver, status):
    httpserver.expect_request("/flaky").respond_with_data("busy", status=status)
    with pytest.raises(FetchError) as error:
        Fetcher(tmp_path).fetch(pin(httpserver.url_for("/flaky")))
    assert len(httpserver.log) == fetch.ATTEMPTS
    assert f"HTTP {status}" in str(error.value) and "--mirror DIR" in str(error.value)
    assert cache_is_clean(tmp_path)


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


def http_head(length=None):
    """A 200 response's head, announcing `length` bytes of body (no Content-Length if None)."""
    announced = b"" if length is None else b"Content-Length: %d\r\n" % length
    return b"HTTP/1.1 200 OK\r\n" + announced + b"Connection: close\r\n\r\n"


HEAD = http_head(len(DATA))
# Announces the whole body, sends a sliver of it, hangs up.
TRUNCATED = HEAD + DATA[:1000]


def sends(data):
    """Send `data`, then hang up."""
    return lambda connection: connection.sendall(data)


def resets_after(data):
    """Send `data`, then abort the connection: a TCP reset, not an orderly close."""
    def respond(connection):
        connection.sendall(data)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return respond


def stalls_after(data):
    """Send `data`, then nothing more, until the client gives up."""
    def respond(connection):
        connection.sendall(data)
        connection.recv(1)  # returns when the client hangs up
    return respond


def sends_slowly(head, body, pieces, pause):
    """Send `head`, then `body` in `pieces` pieces, `pause` seconds apart."""
    def respond(connection):
        connection.sendall(head)
        step = -(-len(body) // pieces)
        for offset in range(0, len(body), step):
            time.sleep(pause)
            connection.sendall(body[offset:offset + step])
    return respond


@pytest.fixture
def raw_server():
    """A server that answers each request with state["respond"](connection), in a thread of its own, then hangs up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    state = {"respond": None, "requests": 0}

    def answer(connection):
        with connection:
            connection.recv(65536)
            state["requests"] += 1
            try:
                state["respond"](connection)
            except OSError:
                pass  # the client hung up first

    serve_connections(listener, answer)
    yield state, f"http://127.0.0.1:{listener.getsockname()[1]}/thing"
    listener.close()


def test_a_truncated_body_is_retried_then_the_next_url_is_used(tmp_path, raw_server, httpserver):
    state, truncating_url = raw_server
    state["respond"] = sends(TRUNCATED)
    httpserver.expect_request("/thing").respond_with_data(DATA)
    path = Fetcher(tmp_path).fetch(pin(truncating_url, httpserver.url_for("/thing")))
    assert path.read_bytes() == DATA
    assert state["requests"] == fetch.ATTEMPTS
    assert cache_is_clean(tmp_path)


def test_a_truncated_body_alone_fails_clearly(tmp_path, raw_server):
    state, url = raw_server
    state["respond"] = sends(TRUNCATED)
    with pytest.raises(FetchError, match="broke off mid-transfer"):
        Fetcher(tmp_path).fetch(pin(url))
    assert not (tmp_path / "sha256" / SHA).exists()
    assert cache_is_clean(tmp_path)


def fails_after_every_attempt(cache, url, state):
    """Fetch from a misbehaving server: the FetchError, once every attempt has been made."""
    started = time.monotonic()
    with pytest.raises(FetchError) as error:
        Fetcher(cache).fetch(pin(url))
    assert time.monotonic() - started < 5
    assert state["requests"] == fetch.ATTEMPTS
    message = str(error.value)
    assert "thing-1.0.tar.gz" in message and url in message and "--mirror DIR" in message
    assert not (cache / "sha256" / SHA).exists()
    assert cache_is_clean(cache)
    return message


def test_a_connection_reset_mid_body_is_retried_then_reported(tmp_path, raw_server):
    state, url = raw_server
    state["respond"] = resets_after(HEAD + DATA[:100_000])
    assert "connection reset" in fails_after_every_attempt(tmp_path, url, state)


@pytest.fixture
def short_timeouts(monkeypatch):
    """A read timeout of 0.3 s, and an attempt's deadline of 0.5 s, whatever the file's size."""
    monkeypatch.setattr(fetch, "TIMEOUT", (2, 0.3))
    monkeypatch.setattr(fetch, "DEADLINE_FLOOR_SECONDS", 0.5)
    monkeypatch.setattr(fetch, "MINIMUM_BYTES_PER_SECOND", 10 ** 9)


@pytest.mark.parametrize("sent", [b"", HEAD, HEAD + DATA[:1000]], ids=["before the head", "after the head", "mid-body"])
def test_a_stalled_server_times_out(tmp_path, raw_server, short_timeouts, sent):
    state, url = raw_server
    state["respond"] = stalls_after(sent)
    assert "sent nothing for 0.3 s" in fails_after_every_attempt(tmp_path, url, state)


def test_a_server_trickling_bytes_is_stopped_at_the_deadline(tmp_path, raw_server, short_timeouts):
    state, url = raw_server
    # A piece every 0.05 s never trips the read timeout: the whole would take 50 s.
    state["respond"] = sends_slowly(HEAD, DATA, pieces=1000, pause=0.05)
    message = fails_after_every_attempt(tmp_path, url, state)
    assert "too slow" in message and f"of {len(DATA)} bytes within 0.5 s" in message


def test_a_slow_download_within_the_deadline_for_its_size_succeeds(tmp_path, raw_server, monkeypatch):
    state, url = raw_server
    state["respond"] = sends_slowly(HEAD, DATA, pieces=6, pause=0.1)
    monkeypatch.setattr(fetch, "DEADLINE_FLOOR_SECONDS", 0.1)
    monkeypatch.setattr(fetch, "MINIMUM_BYTES_PER_SECOND", len(DATA) / 5)  # 5 s for the whole file
    assert Fetcher(tmp_path).fetch(pin(url)).read_bytes() == DATA
    assert state["requests"] == 1


def test_a_chunked_body_is_stored_whole(tmp_path, raw_server):
    state, url = raw_server
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in (DATA[:1000], DATA[1000:200_000], DATA[200_000:]))
    state["respond"] = sends_slowly(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunks + b"0\r\n\r\n",
                                    pieces=7, pause=0.01)
    assert Fetcher(tmp_path).fetch(pin(url)).read_bytes() == DATA


def test_bytes_after_the_announced_length_are_not_stored(tmp_path, raw_server):
    state, url = raw_server
    state["respond"] = sends(HEAD + DATA + b"and some more")
    assert Fetcher(tmp_path).fetch(pin(url)).read_bytes() == DATA
    assert cache_is_clean(tmp_path)


def test_a_content_length_shorter_than_the_file_is_a_mismatch_that_says_how_much_came(tmp_path, raw_server):
    state, url = raw_server
    state["respond"] = sends(http_head(1000) + DATA)
    with pytest.raises(HashMismatch) as error:
        Fetcher(tmp_path).fetch(pin(url))
    assert f"({len(DATA)} bytes)" in str(error.value) and "(1000 bytes)" in str(error.value)
    assert not (tmp_path / "sha256" / SHA).exists()
    assert cache_is_clean(tmp_path)


def test_a_body_longer_than_the_pinned_size_is_cut_short(tmp_path, raw_server):
    state, url = raw_server
    state["respond"] = sends_slowly(http_head(), DATA * 50, pieces=50, pause=0.01)  # no Content-Length, 15 MB
    with pytest.raises(HashMismatch, match=f"more than the pinned {len(DATA)} bytes"):
        Fetcher(tmp_path).fetch(pin(url))
    assert cache_is_clean(tmp_path)


def test_a_redirect_loop_is_given_up_on_without_retries(tmp_path, httpserver):
    httpserver.expect_request("/loop").respond_with_data("", status=302, headers={"Location": "/loop"})
    url = httpserver.url_for("/loop")
    fetcher = Fetcher(tmp_path)
    with pytest.raises(FetchError) as error:
        fetcher.fetch(pin(url))
    assert f"{url} (too many redirects" in str(error.value)
    assert len(httpserver.log) == fetcher.session.max_redirects + 1
    assert cache_is_clean(tmp_path)


def writable(path):
    """`path`, made writable again (the cache stores its files read-only)."""
    if path.is_file() and not path.is_symlink():
        path.chmod(0o644)
    return path


def flip_a_bit(path):
    writable(path).write_bytes(DATA[:-1] + bytes([DATA[-1] ^ 1]))


def truncate(path):
    writable(path).write_bytes(DATA[:1000])


def empty(path):
    writable(path).write_bytes(b"")


def replace_by_a_directory(path):
    path.unlink()
    path.mkdir()
    (path / SHA).write_bytes(DATA)


def replace_by_a_symlink(path):
    other = path.parent.parent / "another-file"
    other.write_bytes(b"another file")
    path.unlink()
    path.symlink_to(other)


def replace_by_a_fifo(path):
    path.unlink()
    os.mkfifo(path)  # hashing it would wait for a writer forever


DAMAGES = [flip_a_bit, truncate, empty, replace_by_a_directory, replace_by_a_symlink, replace_by_a_fifo]


def stored_file(cache):
    path = cache / "sha256" / SHA
    assert path.is_file() and not path.is_symlink() and path.read_bytes() == DATA
    return path


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_cache_entry_is_noticed_and_fetched_again(tmp_path, httpserver, damage):
    httpserver.expect_request("/thing").respond_with_data(DATA)
    url = httpserver.url_for("/thing")
    fetcher = Fetcher(tmp_path / "cache")
    damage(fetcher.fetch(pin(url)))
    assert fetcher.fetch(pin(url)) == stored_file(tmp_path / "cache")
    assert fetcher.origins[SHA] == url
    assert len(httpserver.log) == 2
    assert cache_is_clean(tmp_path / "cache")
    if damage is replace_by_a_symlink:
        assert (tmp_path / "cache" / "another-file").read_bytes() == b"another file"  # the link went, not its target


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_cache_entry_nothing_else_can_serve_stops_the_build(tmp_path, damage):
    mirror = tmp_path / "mirror"
    (mirror / "sha256").mkdir(parents=True)
    (mirror / "sha256" / SHA).write_bytes(DATA)
    fetcher = Fetcher(tmp_path / "cache", [mirror])
    damage(fetcher.fetch(pin()))
    (mirror / "sha256" / SHA).unlink()
    with pytest.raises(FetchError) as error:
        fetcher.fetch(pin())
    message = str(error.value)
    assert "thing-1.0.tar.gz" in message and SHA in message
    assert f"the cache ({tmp_path / 'cache' / 'sha256' / SHA} " in message and "removed" in message
    assert not os.path.lexists(tmp_path / "cache" / "sha256" / SHA)
    assert cache_is_clean(tmp_path / "cache")


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


def recording_reporter():
    """A Reporter whose output (warnings included) is kept: reporter.console.file.getvalue()."""
    return Reporter(Console(file=io.StringIO(), width=10_000, highlight=False, soft_wrap=True))


def test_a_mirror_file_with_the_right_name_but_wrong_bytes_is_skipped_and_named(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "thing-1.0.tar.gz").write_bytes(b"an older release")
    reporter = recording_reporter()
    with pytest.raises(FetchError) as error:
        Fetcher(tmp_path / "cache", [mirror], reporter).fetch(pin())
    older = hashlib.sha256(b"an older release").hexdigest()
    assert f"{mirror / 'thing-1.0.tar.gz'} (sha256 {older} (16 bytes), not the pinned bytes; skipped)" in str(error.value)
    assert f"{mirror / 'thing-1.0.tar.gz'} was skipped" in reporter.console.file.getvalue()
    assert not (tmp_path / "cache" / "sha256" / SHA).exists()
    assert cache_is_clean(tmp_path / "cache")


def mirror_holding(path, files):
    """A mirror directory at `path` holding `files` ({relative path: bytes})."""
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


@pytest.mark.parametrize("right_one", ["same mirror, by name", "next mirror", "url"])
def test_a_wrong_file_in_one_mirror_does_not_hide_the_right_one(tmp_path, httpserver, right_one):
    """README: mirror files "are used only if the hash matches"; one that does not is skipped, with a warning."""
    wrong = {f"sha256/{SHA}": b"other bytes stored under the pin's hash"}
    if right_one == "same mirror, by name":
        wrong["thing-1.0.tar.gz"] = DATA
    first = mirror_holding(tmp_path / "first", wrong)
    second = mirror_holding(tmp_path / "second", {"thing-1.0.tar.gz": DATA} if right_one == "next mirror" else {})
    httpserver.expect_request("/thing").respond_with_data(DATA)
    reporter = recording_reporter()
    fetcher = Fetcher(tmp_path / "cache", [first, second], reporter)
    assert fetcher.fetch(pin(httpserver.url_for("/thing"))) == stored_file(tmp_path / "cache")
    expected = {"same mirror, by name": first / "thing-1.0.tar.gz", "next mirror": second / "thing-1.0.tar.gz",
                "url": httpserver.url_for("/thing")}[right_one]
    assert fetcher.origins[SHA] == str(expected)
    assert f"{first / 'sha256' / SHA} was skipped" in reporter.console.file.getvalue()
    assert (first / "sha256" / SHA).read_bytes() == b"other bytes stored under the pin's hash"  # the user's: left alone
    assert len(httpserver.log) == (right_one == "url")
    assert cache_is_clean(tmp_path / "cache")


@pytest.mark.parametrize("damage", [flip_a_bit, truncate, empty, replace_by_a_symlink])
def test_a_damaged_mirror_file_is_skipped_for_the_next_source_and_left_alone(tmp_path, httpserver, damage):
    mirror = tmp_path / "mirror"
    (mirror / "sha256").mkdir(parents=True)
    damaged = mirror / "sha256" / SHA
    damaged.write_bytes(DATA)
    damage(damaged)
    before = damaged.read_bytes()
    httpserver.expect_request("/thing").respond_with_data(DATA)
    reporter = recording_reporter()
    fetcher = Fetcher(tmp_path / "cache", [mirror], reporter)
    assert fetcher.fetch(pin(httpserver.url_for("/thing"))) == stored_file(tmp_path / "cache")
    assert fetcher.origins[SHA] == httpserver.url_for("/thing")
    warned = reporter.console.file.getvalue()
    assert str(damaged) in warned and hashlib.sha256(before).hexdigest() in warned
    assert damaged.read_bytes() == before  # the mirror is the user's: named, not changed
    assert cache_is_clean(tmp_path / "cache")


def test_a_mirror_file_larger_than_the_pin_is_skipped(tmp_path):
    mirror = mirror_holding(tmp_path / "mirror", {f"sha256/{SHA}": DATA * 20, "thing-1.0.tar.gz": DATA})
    reporter = recording_reporter()
    fetcher = Fetcher(tmp_path / "cache", [mirror], reporter)
    fetcher.fetch(pin())
    assert fetcher.origins[SHA] == str(mirror / "thing-1.0.tar.gz")
    assert f"{mirror / 'sha256' / SHA} was skipped: more than the pinned {len(DATA)} bytes" in reporter.console.file.getvalue()
    assert cache_is_clean(tmp_path / "cache")


@pytest.mark.parametrize("make_entry", [os.mkdir, os.mkfifo, lambda path: os.symlink("nothing", path)],
                         ids=["directory", "fifo", "dangling symlink"])
def test_a_mirror_entry_that_is_not_a_file_is_passed_over(tmp_path, httpserver, make_entry):
    mirror = tmp_path / "mirror"
    (mirror / "sha256").mkdir(parents=True)
    make_entry(mirror / "sha256" / SHA)
    httpserver.expect_request("/thing").respond_with_data(DATA)
    fetcher = Fetcher(tmp_path / "cache", [mirror])
    assert fetcher.fetch(pin(httpserver.url_for("/thing"))) == stored_file(tmp_path / "cache")
    assert fetcher.origins[SHA] == httpserver.url_for("/thing")


def test_a_mirror_may_hold_symlinks_their_bytes_are_copied_and_checked(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (tmp_path / "elsewhere").write_bytes(DATA)
    (mirror / "thing-1.0.tar.gz").symlink_to(tmp_path / "elsewhere")
    Fetcher(tmp_path / "cache", [mirror]).fetch(pin())
    stored_file(tmp_path / "cache")


CONCURRENT_FETCH = """
import sys
from cpython_wasm.inputs.fetch import Fetcher
from cpython_wasm.recipes.pins import PinnedFile
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
    ("mirror\n-rf", "contains a control character (U+000A)"),
    ("-mirror", "starts with '-'"),
    ("", "is empty"),
])
def test_mirror_options_are_validated(value, expected):
    with pytest.raises(UserError, match=re.escape(expected)):
        check_mirror_dirs([value])


# The cache owns its directories: what is written or removed resolves inside its root.

def elsewhere_with_a_partial_download(tmp_path):
    """A directory outside the cache holding what a link from the cache could expose: a file named like a
    partial download of the pin, and one named by its hash."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / f"{SHA}.someone-else.part").write_bytes(b"not the cache's to remove")
    (elsewhere / SHA).write_bytes(DATA)  # right bytes even: trusted only where the cache keeps its own
    return elsewhere


def untouched(elsewhere):
    return sorted(path.name for path in elsewhere.iterdir()) == sorted([f"{SHA}.someone-else.part", SHA]) and \
        (elsewhere / f"{SHA}.someone-else.part").read_bytes() == b"not the cache's to remove"


def link_to(target):
    return lambda path: path.symlink_to(target, target_is_directory=True)


@pytest.mark.parametrize("sub", ["tmp", "sha256", "locks"])
@pytest.mark.parametrize("kind", ["link", "dangling link", "file"])
def test_a_cache_directory_that_is_a_link_or_a_file_is_refused(tmp_path, httpserver, sub, kind):
    elsewhere = elsewhere_with_a_partial_download(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    {"link": link_to(elsewhere), "dangling link": link_to(tmp_path / "nowhere"),
     "file": lambda path: path.write_text("a file")}[kind](cache / sub)
    with pytest.raises(UserError) as error:
        Fetcher(cache).fetch(pin(httpserver.url_for("/thing")))
    message = str(error.value)
    assert f"{cache / sub} is {'a symbolic link to' if 'link' in kind else 'a file'}" in message
    assert "Remove" in message and "\n" not in message
    assert untouched(elsewhere) and httpserver.log == []
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("sub", ["tmp", "sha256", "locks"])
def test_a_cache_directory_swapped_for_a_link_after_the_fetcher_was_made_is_refused(tmp_path, httpserver, sub):
    elsewhere = elsewhere_with_a_partial_download(tmp_path)
    cache = tmp_path / "cache"
    fetcher = Fetcher(cache)
    (cache / sub).rmdir()
    (cache / sub).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UserError, match=f"{cache / sub} is a symbolic link to {elsewhere}"):
        fetcher.fetch(pin(httpserver.url_for("/thing")))
    assert untouched(elsewhere) and httpserver.log == []


def test_a_cache_directory_swapped_during_a_download_receives_nothing(tmp_path, httpserver):
    """The last line of defence: the rename into sha256/ checks where sha256/ leads at that moment."""
    cache, elsewhere = tmp_path / "cache", tmp_path / "elsewhere"
    elsewhere.mkdir()

    def swap_then_serve(request):
        (cache / "sha256").rename(tmp_path / "moved")
        (cache / "sha256").symlink_to(elsewhere, target_is_directory=True)
        return Response(DATA)

    httpserver.expect_request("/thing").respond_with_handler(swap_then_serve)
    with pytest.raises(UserError, match=f"{cache / 'sha256'} leads out of {cache}"):
        Fetcher(cache).fetch(pin(httpserver.url_for("/thing")))
    assert list(elsewhere.iterdir()) == [] and list((tmp_path / "moved").iterdir()) == []
    assert cache_is_clean(cache)


@pytest.mark.parametrize("kind", ["link to a file", "directory", "fifo"])
def test_a_lock_file_that_is_not_a_file_is_refused_and_not_followed(tmp_path, httpserver, kind):
    victim = tmp_path / "victim"
    victim.write_text("opening this for a lock would truncate it")
    cache = tmp_path / "cache"
    lock = Fetcher(cache).cache_dir / "locks" / f"{SHA}.lock"
    {"link to a file": lambda: lock.symlink_to(victim), "directory": lock.mkdir, "fifo": lambda: os.mkfifo(lock)}[kind]()
    with pytest.raises(UserError, match=f"The lock file {lock} is a"):
        Fetcher(cache).fetch(pin(httpserver.url_for("/thing")))
    assert victim.read_text() == "opening this for a lock would truncate it"
    assert httpserver.log == []


def test_a_cache_root_reached_through_a_link_is_used_where_it_leads(tmp_path):
    (tmp_path / "real-cache").mkdir()
    (tmp_path / "cache").symlink_to(tmp_path / "real-cache", target_is_directory=True)
    mirror = mirror_holding(tmp_path / "mirror", {"thing-1.0.tar.gz": DATA})
    path = Fetcher(tmp_path / "cache", [mirror]).fetch(pin())
    assert path == tmp_path / "real-cache" / "sha256" / SHA and path.read_bytes() == DATA


# Every input is tried before a build stops; the error names all that are missing.

def test_every_missing_input_is_named_at_once(tmp_path, httpserver):
    for path, data, status in (("/served", DATA, 200), ("/gone", b"", 404), ("/tampered", b"evil", 200)):
        httpserver.expect_request(path).respond_with_data(data, status=status)
    pins = [pin(httpserver.url_for("/gone"), name="gone-1.0.tar.gz", data=b"gone"),
            pin("http://127.0.0.1:9/x", name="unreachable-1.0.tar.gz", data=b"unreachable"),
            pin(httpserver.url_for("/served")),
            pin(httpserver.url_for("/tampered"), name="tampered-1.0.tar.gz", data=b"expected"),
            pin(name="unlisted-1.0.tar.gz", data=b"unlisted")]
    fetcher = Fetcher(tmp_path / "cache")
    with pytest.raises(FetchError) as error:
        fetcher.fetch_all(pins)
    message = str(error.value)
    assert message.startswith("Could not obtain 4 of the 5 pinned inputs")
    for missing in ("gone-1.0.tar.gz", "unreachable-1.0.tar.gz", "tampered-1.0.tar.gz", "unlisted-1.0.tar.gz"):
        assert missing in message
    assert "HTTP 404" in message and "connection failed" in message and "no URL is listed" in message
    assert f"tampered-1.0.tar.gz from {httpserver.url_for('/tampered')} does not have the pinned content" in message
    assert "--mirror DIR" in message and "`invoke matrix`" in message and "--provider debian" in message
    assert "thing-1.0.tar.gz" not in message and stored_file(tmp_path / "cache")  # what could be had, was
    assert "\n" not in message
    assert cache_is_clean(tmp_path / "cache")


def test_inputs_all_at_hand_are_returned_by_hash(tmp_path):
    mirror = mirror_holding(tmp_path / "mirror", {"thing-1.0.tar.gz": DATA, "other.tar.gz": b"other"})
    files = Fetcher(tmp_path / "cache", [mirror]).fetch_all([pin(), pin(name="other.tar.gz", data=b"other")])
    assert files == {SHA: tmp_path / "cache" / "sha256" / SHA,
                     hashlib.sha256(b"other").hexdigest(): tmp_path / "cache" / "sha256" / hashlib.sha256(b"other").hexdigest()}


@pytest.fixture
def offline(monkeypatch):
    """Every request goes to a proxy that refuses connections: nothing leaves this machine, and fast."""
    for variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    for variable in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(variable, raising=False)


def test_an_offline_build_names_every_input_it_cannot_have_and_what_can_be_built(tmp_path, offline):
    from cpython_wasm.build import Build
    from cpython_wasm.paths import Workspace
    from cpython_wasm.recipes.plan import Recipes

    plan = Recipes().resolve("3.13", 24, None)  # `invoke build --python 3.13 --sdk 24`
    workspace = Workspace(tmp_path / "cache", tmp_path / "build", tmp_path / "dist", tmp_path / "lockfiles")
    with pytest.raises(FetchError) as error:
        Build(plan, workspace, recording_reporter()).fetch()  # the executor connects to no engine to fetch
    message = str(error.value)
    assert message.startswith(f"Could not obtain {len(plan.inputs)} of the {len(plan.inputs)} pinned inputs")
    for input_pin in plan.inputs:
        assert input_pin.file in message and input_pin.sha256 in message
    assert "`invoke matrix`" in message and "--provider debian" in message and "--mirror DIR" in message


# `invoke fetch --mirror DIR` fills DIR: it is searched too, and named where a missing file should go.

def test_a_fetch_into_a_mirror_names_that_mirror_not_none_given(tmp_path):
    destination = tmp_path / "destination"
    with pytest.raises(FetchError) as error:
        Fetcher(tmp_path / "cache", filling=destination).fetch(pin())
    message = str(error.value)
    assert f"Mirrors searched: {destination}." in message
    assert f"put it in {destination} (it may keep its name, or be stored as {destination}/sha256/{SHA})" in message
    assert "`invoke fetch` again" in message
    assert "none given" not in message and "pass `--mirror DIR`" not in message


def test_filling_a_mirror_uses_a_file_put_there_by_name(tmp_path):
    destination = mirror_holding(tmp_path / "destination", {"thing-1.0.tar.gz": DATA})
    assert fetch.fill_mirror(Fetcher(tmp_path / "cache", filling=destination), [pin()]) == 1
    assert (destination / "sha256" / SHA).read_bytes() == DATA
    assert fetch.fill_mirror(Fetcher(tmp_path / "cache", filling=destination), [pin()]) == 0


def test_filling_a_mirror_replaces_a_wrong_file_under_the_hash(tmp_path, httpserver):
    destination = mirror_holding(tmp_path / "destination", {f"sha256/{SHA}": b"wrong"})
    httpserver.expect_request("/thing").respond_with_data(DATA)
    assert fetch.fill_mirror(Fetcher(tmp_path / "cache", filling=destination), [pin(httpserver.url_for("/thing"))]) == 1
    assert (destination / "sha256" / SHA).read_bytes() == DATA


@pytest.mark.parametrize("kind", ["link", "file"])
def test_a_mirror_being_filled_whose_sha256_is_not_its_own_directory_is_refused(tmp_path, kind):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    destination = mirror_holding(tmp_path / "destination", {"thing-1.0.tar.gz": DATA})
    if kind == "link":
        (destination / "sha256").symlink_to(elsewhere, target_is_directory=True)
    else:
        (destination / "sha256").write_text("a file")
    with pytest.raises(UserError, match=f"{destination / 'sha256'} is a"):
        fetch.fill_mirror(Fetcher(tmp_path / "cache", filling=destination), [pin()])
    assert list(elsewhere.iterdir()) == []


def test_invoke_fetch_offline_names_every_input_and_the_mirror_to_put_them_in(tmp_path, offline):
    from cpython_wasm import cli

    destination = tmp_path / "destination"
    with pytest.raises(FetchError) as error:
        cli.fetch(recording_reporter(), python="3.13", sdk=24, mirror=[str(destination)], cache_dir=str(tmp_path / "cache"))
    message = str(error.value)
    assert message.startswith("Could not obtain 8 of the 8 pinned inputs")
    assert f"Mirrors searched: {destination}." in message and f"put them in {destination}" in message
    assert "none given" not in message and "pass `--mirror DIR`" not in message
    assert list((destination / "sha256").iterdir()) == []


@pytest.mark.parametrize("where", ["the cache", "inside the cache", "around the cache"])
def test_invoke_fetch_refuses_to_fill_the_cache_itself(tmp_path, where):
    from cpython_wasm import cli

    cache = tmp_path / "cache"
    destination = {"the cache": cache, "inside the cache": cache / "sha256", "around the cache": tmp_path}[where]
    with pytest.raises(UserError, match="each need a directory of their own"):
        cli.fetch(recording_reporter(), python="3.13", sdk=24, mirror=[str(destination)], cache_dir=str(cache))
    assert not cache.exists()
