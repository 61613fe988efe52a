"""The end-to-end build shared by every e2e test.

One session-scoped build (CPython 3.13.5 × WASI SDK 25 × debian), run the way
a user runs it (`invoke build`). It runs in a fresh build directory unless
CPYTHON_WASM_TEST_BUILD_DIR names one to reuse (for quick local reruns); CI
always starts from nothing. A missing Docker engine fails these tests, it
never skips them.
"""

import json
import os
from pathlib import Path

import pytest

from cpython_wasm.archives import safe_extract
from tests.helpers import invoke

SELECTION = ["--python", "3.13", "--sdk", "25", "--provider", "debian"]
ARTIFACT = "python-3.13.5-wasi_sdk-25-debian"


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    build_dir = Path(os.environ.get("CPYTHON_WASM_TEST_BUILD_DIR") or root / "build").resolve()
    return {"build": build_dir, "dist": root / "dist", "locks": root / "lockfiles"}


def build_args(workspace, *extra):
    return ["build", *SELECTION, "--build-dir", str(workspace["build"]), "--dist-dir", str(workspace["dist"]),
            "--lock-dir", str(workspace["locks"]), *extra]


@pytest.fixture(scope="session")
def built(workspace):
    result = invoke(*build_args(workspace), check=True)
    artifact = workspace["dist"] / f"{ARTIFACT}.tar.gz"
    lockfile = workspace["locks"] / f"{ARTIFACT}.json"
    return {"result": result, "artifact": artifact, "lockfile": lockfile, "lock": json.loads(lockfile.read_text())}


@pytest.fixture(scope="session")
def unpacked(built, tmp_path_factory):
    root = tmp_path_factory.mktemp("unpacked")
    safe_extract(built["artifact"], root)
    return root / ARTIFACT


