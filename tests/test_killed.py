"""A process killed at any moment (SIGKILL: the OOM killer, a CI job cancelled) leaves at most a temp file,
never a wrong file in its place, and the next run removes what it left. Each test kills a real child process
half-way through a write."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker.errors
import pytest
import requests
from werkzeug import Response

from cpython_wasm.files import remove_stale_temps, write_atomically
from cpython_wasm.inputs.fetch import Fetcher
from cpython_wasm.stages.engine import remove_container
from cpython_wasm.stages.executor import OWNER_LABEL, owner, owner_is_gone, remove_containers
from tests.test_fetch import CONCURRENT_FETCH, DATA, SHA, cache_is_clean, pin

WRITE_FROM = """
import sys
from pathlib import Path
from cpython_wasm.files import write_atomically
write_atomically(Path(sys.argv[1]), Path(sys.argv[2]))
"""


def start(script: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stderr=subprocess.PIPE, text=True)


def wait_until(process: subprocess.Popen, ready, what: str) -> None:
    """Return once `ready()` holds, `process` still running; fail if it never does."""
    deadline = time.monotonic() + 20
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the child process never got {what}: {process.communicate()[1]}")
        time.sleep(0.02)


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL


def test_a_download_killed_half_way_leaves_a_partial_file_that_the_next_fetch_removes(tmp_path, httpserver):
    resume = threading.Event()

    def stalls_half_way(request):
        def body():
            yield DATA[:len(DATA) // 2]
            resume.wait(30)
            yield DATA[len(DATA) // 2:]
        return Response(body(), headers={"Content-Length": str(len(DATA))})

    httpserver.expect_request("/thing").respond_with_handler(stalls_half_way)
    url, cache = httpserver.url_for("/thing"), tmp_path / "cache"

    def partial_files():
        return list((cache / "tmp").glob(f"{SHA}.*.part")) if (cache / "tmp").is_dir() else []

    child = start(CONCURRENT_FETCH, cache, SHA, url)
    try:
        wait_until(child, lambda: any(path.stat().st_size for path in partial_files()), "half-way through the download")
        kill(child)
    finally:
        resume.set()  # the server serves whole files from now on
    assert len(partial_files()) == 1
    assert not (cache / "sha256" / SHA).exists()

    assert Fetcher(cache).fetch(pin(url)).read_bytes() == DATA
    assert cache_is_clean(cache)


def test_a_write_killed_half_way_leaves_a_temp_file_that_the_next_write_removes(tmp_path):
    target = tmp_path / "dist" / "python.tar.gz"
    write_atomically(target, b"the previous version")
    others = [target.parent / name for name in (".python.tar.gz.notes", "python.tar.gz.12345678")]
    for path in others:
        path.write_text("not a temp file of python.tar.gz")
    fifo = tmp_path / "source"
    os.mkfifo(fifo)
    # Open for reading and writing, so that neither end waits for the other to open; never closed while the
    # child runs, so that after the first MiB its copy waits for more.
    source = os.open(fifo, os.O_RDWR)
    try:
        child = start(WRITE_FROM, target, fifo)
        threading.Thread(target=os.write, args=(source, bytes(1 << 20)), daemon=True).start()

        def temp_files():
            return [path for path in target.parent.iterdir() if path != target and path not in others]

        def writing():
            return any(path.stat().st_size >= 1 << 20 for path in temp_files())

        wait_until(child, writing, "a MiB into its write")
        assert remove_stale_temps(target) == [] and writing()  # a live writer's temp file is left alone
        kill(child)
    finally:
        os.close(source)
    assert len(temp_files()) == 1
    assert target.read_bytes() == b"the previous version"

    write_atomically(target, b"the next version")
    assert sorted(target.parent.iterdir()) == sorted([target, *others])
    assert target.read_bytes() == b"the next version"
    assert all(Path(path).read_text() == "not a temp file of python.tar.gz" for path in others)


class Labelled:
    def __init__(self, labels):
        self.labels = labels


def test_a_stopped_container_is_removed_by_another_build_only_once_its_owner_is_gone():
    """A build reads its container's exit status after the container stops: another build starting then must
    leave that container alone; a killed build's (its process gone) or one without an owner is removed."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = finished.stdout.strip()
    assert not owner_is_gone(Labelled({OWNER_LABEL: owner()}))
    assert owner_is_gone(Labelled({OWNER_LABEL: f"{socket.gethostname()}:{dead}"}))
    assert owner_is_gone(Labelled({}))
    assert not owner_is_gone(Labelled({OWNER_LABEL: f"another-host:{dead}"}))
    assert not owner_is_gone(Labelled({OWNER_LABEL: f"{socket.gethostname()}:not-a-pid"}))


class Removing:
    """A container whose removal the engine answers with `error` (None: removed)."""

    def __init__(self, error=None):
        self.error = error

    def remove(self, force):
        if self.error:
            raise self.error


def engine_error(status: int, explanation: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError(f"{status} Client Error", response=response, explanation=explanation)


def test_a_container_another_build_is_removing_is_not_an_error():
    """Two builds starting at once both find a killed build's containers and both remove them: the one that
    comes second hears 404 or 409 "already in progress", and goes on. Any other refusal is still an error."""
    assert remove_container(Removing()) is True
    assert remove_container(Removing(docker.errors.NotFound("No such container"))) is False
    in_progress = engine_error(409, "removal of container b4c3cc32c5f7 is already in progress")
    assert remove_container(Removing(in_progress)) is False
    assert remove_containers([Removing(), Removing(in_progress), Removing()]) == 2
    for refusal in (engine_error(409, "You cannot remove a running container"), engine_error(500, "driver failed")):
        with pytest.raises(docker.errors.APIError):
            remove_container(Removing(refusal))
