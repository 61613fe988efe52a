"""A build with --mirror needs no network at all: `invoke fetch` fills a mirror,
then the build runs in a network namespace of its own with no interface but
loopback (the Docker engine is reached through its Unix socket)."""

import os

import pytest

from tests.e2e.conftest import SELECTION, build_args
from tests.helpers import INVOKE, invoke, run

pytestmark = pytest.mark.e2e


def offline(*command):
    """The command, run with the network cut (a new, empty network namespace)."""
    namespace = ["unshare", "--net"] if os.getuid() == 0 else ["unshare", "--net", "--map-root-user"]
    return [*namespace, *map(str, command)]


def test_fetch_fills_a_mirror_and_a_build_from_it_needs_no_network(built, workspace, tmp_path):
    python, sdk, provider = SELECTION
    mirror = tmp_path / "mirror"
    fetched = invoke("fetch", "--python", python, "--sdk", str(sdk), "--provider", provider,
                     "--mirror", str(mirror), check=True)
    pins = {entry["sha256"] for entry in built["lock"]["inputs"]}
    assert {path.name for path in (mirror / "sha256").iterdir()} == pins
    assert "fetch" in fetched.stderr

    probe = run(offline("python3", "-c", "import socket; socket.create_connection(('deb.debian.org', 80), timeout=5)"))
    assert probe.returncode != 0, "the network namespace still reaches the archive"

    empty_cache = tmp_path / "cache"
    result = run(offline(INVOKE, *build_args(workspace, *SELECTION, "--mirror", mirror, "--cache-dir", empty_cache)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"0 from the cache, {len(pins)} fetched and verified" in result.stderr  # every input, from the mirror
    assert {path.name for path in (empty_cache / "sha256").iterdir()} == pins

    # Without the mirror, the same offline build stops at fetch and says how to use one.
    without = run(offline(INVOKE, *build_args(workspace, *SELECTION, "--cache-dir", tmp_path / "cache2")))
    assert without.returncode == 3
    assert "Could not obtain" in without.stderr and "--mirror DIR" in without.stderr
