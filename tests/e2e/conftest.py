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
import subprocess
from pathlib import Path

import pytest

from cpython_wasm.inputs.archives import safe_extract
from cpython_wasm.recipes.plan import Recipes
from tests.helpers import INVOKE, PROJECT_ROOT, invoke

SELECTION = ("3.13.5", 25, "debian")  # the README's quick start
ARTIFACT = "python-3.13.5-wasi_sdk-25-debian"
EMSCRIPTEN_SELECTION = ("3.13.5", "3.1.69", "debian", "emscripten")


# The order the e2e modules run in (the rest after them, by name). First what needs only the default build,
# while the Emscripten build started beside it (see `built`) finishes on the other core; then the Emscripten
# tests, which join it; then the faults, which kill builds and stop the engine, so no build may be running in
# the background; then the other lines (their builds are the ones the faults kill and finish) and the rest.
MODULE_ORDER = ("test_wasi_build", "test_devkit", "test_images", "test_offline", "test_registry_base",
                "test_release_provider", "test_emscripten_build", "test_release_emsdk", "test_faults", "test_lines")


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        module = item.module.__name__.rsplit(".", 1)[-1] if "e2e" in item.nodeid else ""
        return MODULE_ORDER.index(module) if module in MODULE_ORDER else len(MODULE_ORDER)
    items.sort(key=rank)  # stable: within a module, and outside tests/e2e/, the collected order


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


class Builds:
    """build(python, sdk, provider, *extra options, recipes=, target=) -> {result, artifact, lockfile, lock}:
    each selection built once per session, the way a user builds it (`invoke build`).

    build.start(...) begins one in the background, to be joined by the first
    build(...) of it. Two builds at once make use of the second core while one
    of them is in a single-threaded phase (configure, apt, packaging), which
    is about a third of a build; the store's locks order what they share."""

    def __init__(self, workspace, logs: Path):
        self.workspace, self.logs = workspace, logs
        self.done: dict = {}
        self.running: dict = {}

    def _key(self, python, sdk, provider, extra, recipes, target):
        return (python, sdk, provider, tuple(extra), recipes, target)

    def _command(self, python, sdk, provider, extra, recipes, target) -> list[str]:
        options = [*extra, *(["--recipes", str(recipes)] if recipes else [])]
        return build_args(self.workspace, python, sdk, provider, *options, target=target)

    def start(self, python, sdk, provider, *extra, recipes=None, target="wasi") -> None:
        key = self._key(python, sdk, provider, extra, recipes, target)
        if key in self.done or key in self.running:
            return
        log = self.logs / f"build-{len(self.running) + len(self.done)}.log"
        output = open(log, "w")  # a file, not a pipe: a pipe nobody reads would stall the build when full
        process = subprocess.Popen([str(INVOKE), *self._command(python, sdk, provider, extra, recipes, target)],
                                   cwd=PROJECT_ROOT, stdout=output, stderr=subprocess.STDOUT, text=True)
        self.running[key] = (process, output, log)

    def __call__(self, python, sdk, provider, *extra, recipes=None, target="wasi") -> dict:
        key = self._key(python, sdk, provider, extra, recipes, target)
        if key not in self.done:
            command = self._command(python, sdk, provider, extra, recipes, target)
            if key in self.running:
                process, output, log = self.running.pop(key)
                process.wait(timeout=3600)
                output.close()
                result = subprocess.CompletedProcess(process.args, process.returncode, "", log.read_text())
                if result.returncode != 0:
                    pytest.fail(f"{' '.join(command)} exited {result.returncode}\n{result.stderr[-6000:]}")
            else:
                result = invoke(*command, check=True)
            name = Recipes(recipes or Recipes().root).resolve(python, sdk, provider, target).artifact_name
            lockfile = self.workspace["locks"] / f"{name}.json"
            self.done[key] = {"result": result, "artifact": self.workspace["dist"] / f"{name}.tar.gz",
                              "lockfile": lockfile, "lock": json.loads(lockfile.read_text())}
        return self.done[key]


@pytest.fixture(scope="session")
def build(workspace, tmp_path_factory):
    return Builds(workspace, tmp_path_factory.mktemp("builds"))


@pytest.fixture(scope="session")
def built(build):
    # The Emscripten build shares its build python with this one and spends most of its time configuring on
    # one core: started beside it, it is mostly done when tests/e2e/test_emscripten_build.py asks for it.
    build.start(*EMSCRIPTEN_SELECTION[:3], target=EMSCRIPTEN_SELECTION[3])
    return build(*SELECTION)


@pytest.fixture(scope="session")
def unpacked(built, tmp_path_factory):
    root = tmp_path_factory.mktemp("unpacked")
    safe_extract(built["artifact"], root)
    return root / ARTIFACT
