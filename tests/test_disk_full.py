"""A disk that fills up, for real: the cache or an output directory on a tmpfs of 1 MiB.

Mounting needs root. Without it these tests fail, saying so: a fault test that
is skipped proves nothing.
"""

import os
import subprocess

import invoke
import pytest

from cpython_wasm.cli import run
from cpython_wasm.errors import DiskFull
from cpython_wasm.files import write_atomically
from cpython_wasm.inputs.fetch import CacheDiskFull, Fetcher
from tests.test_fetch import pin

DISK_SIZE = 1 << 20
TOO_BIG = os.urandom(2 * DISK_SIZE)
FITS = os.urandom(DISK_SIZE * 7 // 8)


@pytest.fixture
def small_disk(tmp_path):
    """A directory on a tmpfs of DISK_SIZE bytes, mounted for one test."""
    if os.geteuid() != 0:
        pytest.fail("the disk-full tests mount a 1 MiB tmpfs, which needs root: run the tests as root (CI does)")
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"could not mount a tmpfs at {mount_point}: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def free_bytes(path) -> int:
    status = os.statvfs(path)
    return status.f_bavail * status.f_frsize


def files_in(directory) -> list[str]:
    return sorted(path.relative_to(directory).as_posix() for path in directory.rglob("*") if not path.is_dir())


def reported(capsys, command) -> tuple[int, str]:
    """What a user sees when `command` fails under the command line's error handling: exit status, message."""
    with pytest.raises(invoke.Exit) as exit:
        run(lambda reporter: command())
    message = capsys.readouterr().err.strip()
    assert message.startswith("error: ") and "\n" not in message and "Traceback" not in message
    return exit.value.code, message


@pytest.mark.parametrize("source", ["url", "mirror"])
def test_a_full_cache_disk_stops_the_fetch_and_keeps_nothing(tmp_path, small_disk, httpserver, capsys, source):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "thing-1.0.tar.gz").write_bytes(TOO_BIG)
    httpserver.expect_request("/thing").respond_with_data(TOO_BIG)
    cache = small_disk / "cache"
    fetcher = Fetcher(cache, [mirror] if source == "mirror" else [])
    free = free_bytes(small_disk)
    too_big = pin(httpserver.url_for("/thing"), data=TOO_BIG)
    with pytest.raises(CacheDiskFull) as error:
        fetcher.fetch(too_big)
    message = str(error.value)
    assert "thing-1.0.tar.gz" in message and str(cache) in message and "is full" in message
    assert files_in(cache) == [f"locks/{too_big.sha256}.lock"]
    assert free_bytes(small_disk) == free
    assert len(httpserver.log) == (1 if source == "url" else 0)  # no retry, no other source: the disk stays full

    status, shown = reported(capsys, lambda: fetcher.fetch(too_big))
    assert status == 3 and str(cache) in shown


def test_a_file_that_fits_is_cached_in_no_more_room_than_its_size(tmp_path, small_disk):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "thing-1.0.tar.gz").write_bytes(FITS)
    path = Fetcher(small_disk / "cache", [mirror]).fetch(pin(data=FITS))
    assert path.read_bytes() == FITS


@pytest.mark.parametrize("kind", ["bytes", "file"])
def test_a_full_output_disk_keeps_the_previous_file_and_says_so(tmp_path, small_disk, capsys, kind):
    target = small_disk / "dist" / "python.tar.gz"
    write_atomically(target, b"the previous version")
    free = free_bytes(small_disk)
    source = tmp_path / "new.tar.gz"
    source.write_bytes(TOO_BIG)
    with pytest.raises(DiskFull) as error:
        write_atomically(target, TOO_BIG if kind == "bytes" else source)
    message = str(error.value)
    assert str(target) in message and f"needs {len(TOO_BIG)} bytes" in message and "is unchanged" in message
    assert target.read_bytes() == b"the previous version"
    assert files_in(small_disk) == ["dist/python.tar.gz"]
    assert free_bytes(small_disk) == free

    status, shown = reported(capsys, lambda: write_atomically(target, TOO_BIG))
    assert status == DiskFull.exit_code and str(target) in shown


def test_a_new_file_that_does_not_fit_is_not_created(small_disk):
    target = small_disk / "lockfiles" / "python.json"
    with pytest.raises(DiskFull, match="was not created"):
        write_atomically(target, TOO_BIG)
    assert files_in(small_disk) == []


def test_a_write_needs_no_more_room_than_the_new_file(small_disk):
    filler = small_disk / "filler"
    filler.write_bytes(os.urandom(DISK_SIZE // 3))
    room = free_bytes(small_disk)
    new = os.urandom(room - 4096)  # all the room left but a page
    write_atomically(small_disk / "python.tar.gz", new)
    assert (small_disk / "python.tar.gz").read_bytes() == new
    assert files_in(small_disk) == ["filler", "python.tar.gz"]
