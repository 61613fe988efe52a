"""The end-to-end builds shared by the e2e tests.

Each selection (python, sdk, provider) is built at most once per session, the
way a user builds it (`invoke build`), and every test that needs it shares the
result; the store is shared too, so a build python is reused across SDKs as
in real use. The store lives in a fresh directory unless
CPYTHON_WASM_TEST_BUILD_DIR names one to reuse (for quick local reruns); CI
always starts from nothing. A missing Docker engine fails these tests, it
never skips them.
"""

import json
import os
from pathlib import Path

import pytest

from cpython_wasm.archives import safe_extract
from cpython_wasm.recipes import Recipes
from tests.helpers import invoke

SELECTION = ("3.13.5", 25, "debian")  # the README's quick start
ARTIFACT = "python-3.13.5-wasi_sdk-25-debian"


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    build_dir = Path(os.environ.get("CPYTHON_WASM_TEST_BUILD_DIR") or root / "build").resolve()
    return {"build": build_dir, "dist": root / "dist", "locks": root / "lockfiles", "root": root}


def build_args(workspace, python, sdk, provider, *extra, target="wasi", dist=None, locks=None):
    """`invoke build` of a selection in the session's store; into the session's dist/ and lockfiles/ unless given."""
    return ["build", "--python", python, "--target", target, "--sdk", str(sdk), "--provider", provider,
            "--build-dir", str(workspace["build"]), "--dist-dir", str(dist or workspace["dist"]),
            "--lock-dir", str(locks or workspace["locks"]), *map(str, extra)]


@pytest.fixture(scope="session")
def build(workspace):
    """build(python, sdk, provider, *extra options, target=) -> {result, artifact, lockfile, lock}, once per session."""
    done = {}

    def run(python, sdk, provider, *extra, recipes=None, target="wasi"):
        key = (python, sdk, provider, extra, recipes, target)
        if key not in done:
            options = [*extra, *(["--recipes", str(recipes)] if recipes else [])]
            result = invoke(*build_args(workspace, python, sdk, provider, *options, target=target), check=True)
            name = Recipes(recipes or Recipes().root).resolve(python, sdk, provider, target).artifact_name
            lockfile = workspace["locks"] / f"{name}.json"
            done[key] = {"result": result, "artifact": workspace["dist"] / f"{name}.tar.gz",
                         "lockfile": lockfile, "lock": json.loads(lockfile.read_text())}
        return done[key]

    return run


@pytest.fixture(scope="session")
def built(build):
    return build(*SELECTION)


@pytest.fixture(scope="session")
def unpacked(built, tmp_path_factory):
    root = tmp_path_factory.mktemp("unpacked")
    safe_extract(built["artifact"], root)
    return root / ARTIFACT
