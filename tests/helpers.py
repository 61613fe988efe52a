"""Helpers shared by the tests."""

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w

from cpython_wasm.recipes.plan import RECIPES_DIR, host_arch
from cpython_wasm.tools.browser import QuietHandler, served

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INVOKE = Path(sys.executable).with_name("invoke")
# The README build's lockfile, as committed: real data for tests that need no build.
COMMITTED_LOCKFILE = PROJECT_ROOT / "lockfiles" / "python-3.13.5-wasi_sdk-25-debian.json"


def setting(*path_and_value):
    """A change to a parsed lockfile (or any nested document): set the value at the path of keys before it."""
    *path, value = path_and_value

    def change(document):
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
    return change


def free_port() -> int:
    """A TCP port on 127.0.0.1 free now, for a server started by another program (which may lose it to a race)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_connections(listener, handle) -> None:
    """Accept connections on a listening socket until it is closed, each handled by handle(connection) in a thread."""

    def serve():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()


def run(command, env=None, check=False, timeout=3600) -> subprocess.CompletedProcess:
    """Run a command from the checkout, capturing its output."""
    result = subprocess.run(
        [str(part) for part in command], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} exited {result.returncode}\n{result.stdout}\n{result.stderr[-6000:]}")
    return result


def invoke(*args, env=None, check=False, timeout=3600) -> subprocess.CompletedProcess:
    """Run an invoke task of this checkout the way a user does."""
    return run([INVOKE, *args], env=env, check=check, timeout=timeout)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def pinned_recipes(tmp_path: Path, toolchain_recipe: str, tarball: Path, url: str, made_by: str) -> Path:
    """A copy of recipes/ whose toolchain recipe (e.g. "toolchains/emsdk/3.1.69.toml") pins `tarball`,
    at `url`, as its release provider's archive for this machine's architecture."""
    root = tmp_path / "recipes"
    shutil.copytree(RECIPES_DIR, root)
    path = root / toolchain_recipe
    recipe = tomllib.loads(path.read_text())
    recipe["providers"]["release"]["tarballs"][host_arch()] = {
        "file": tarball.name, "sha256": sha256(tarball), "size": tarball.stat().st_size, "urls": [url],
        "sha256_sources": [f"assembled by {made_by}"],
    }
    path.write_text(tomli_w.dumps(recipe))
    return root


def slow_server(directory: Path, bytes_per_second: int):
    """`directory` over HTTP on 127.0.0.1, each response sent at about `bytes_per_second`; yields the base URL."""

    class Slow(QuietHandler):
        def copyfile(self, source, output):
            chunk = max(bytes_per_second // 20, 1)
            while data := source.read(chunk):
                output.write(data)
                time.sleep(0.05)

    return served(directory, Slow)
