"""The end-to-end builds shared by the e2e tests.

Each selection (python, sdk, provider) is built at most once per session, the
way a user builds it (`invoke build`), and every test that needs it shares the
result; the store is shared too, so a build python is reused across SDKs as
in real use. The store lives in a fresh directory unless
CPYTHON_WASM_TEST_BUILD_DIR names one to reuse (for quick local reruns); CI
always starts from nothing. A missing Docker engine fails these tests, it
never skips them.
"""

import itertools
import json
import os
import subprocess
from pathlib import Path

import pytest

from cpython_wasm.inputs.archives import safe_extract
from cpython_wasm.inputs.fetch import Fetcher
from cpython_wasm.paths import Workspace
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.plan import Recipes
from tests.helpers import INVOKE, PROJECT_ROOT, invoke, sha256

SELECTION = ("3.13.5", 25, "debian")  # the README's quick start
ARTIFACT = "python-3.13.5-wasi_sdk-25-debian"
EMSCRIPTEN_SELECTION = ("3.13.5", "3.1.69", "debian", "emscripten")
HELPER_SELECTION = ("3.14.6", "6.0.5", "debian", "emscripten")  # through CPython's own Platforms/emscripten
EXTENSIONS = ("markupsafe", "simplejson")  # the custom interpreter's (recipes/extensions/)


# The order the tests run in. First the unit tests, which need no build, while the default and the Emscripten
# builds run beside them (see pytest_collection_finish). Then the e2e modules (those not named here after the
# others, by name): what needs only the default build, while the Emscripten build finishes, and the custom
# interpreter, whose from-nothing rebuild starts beside what follows (see `custom`); then the Emscripten
# tests, which join their build, and the reproducibility tests, which join the rebuild; then the faults,
# which kill builds and stop the engine, so no build may be running in the background; then the other lines
# (their builds are the ones the faults kill and finish) and the rest.
MODULE_ORDER = ("test_wasi_build", "test_devkit", "test_extensions", "test_flavours", "test_images", "test_offline",
                "test_registry_base", "test_release_provider", "test_emscripten_build", "test_release_emsdk",
                "test_emscripten_helper", "test_repl_page", "test_reproducibility", "test_faults", "test_lines")


def is_e2e(item) -> bool:
    return item.nodeid.startswith("tests/e2e/")


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        if not is_e2e(item):
            return 0
        module = item.module.__name__.rsplit(".", 1)[-1]
        return 1 + (MODULE_ORDER.index(module) if module in MODULE_ORDER else len(MODULE_ORDER))
    items.sort(key=rank)  # stable: within a module, and among the unit tests, the collected order


SESSION = pytest.StashKey[dict]()  # the e2e session's workspace, background commands and builds


def pytest_collection_finish(session):
    """When the session runs e2e tests: their workspace, and the default and the Emscripten builds started now,
    beside the unit tests that run first (the 3.13 Emscripten build shares its build python with the default
    one and spends most of its time configuring on one core), and the 3.14 Emscripten build of CPython's own
    helper when its tests run."""
    if session.config.option.collectonly or not any(is_e2e(item) for item in session.items):
        return  # nothing will run: no build to start
    factory = session.config._tmp_path_factory  # the tmp_path_factory fixture's: a hook has no public way to it
    root = factory.mktemp("e2e")
    build_dir = Path(os.environ.get("CPYTHON_WASM_TEST_BUILD_DIR") or root / "build").resolve()
    workspace = {"build": build_dir, "dist": root / "dist", "locks": root / "lockfiles", "root": root}
    background = Background(factory.mktemp("background"))
    builds = Builds(workspace, background)
    builds.start(*SELECTION)
    builds.start(*EMSCRIPTEN_SELECTION[:3], target=EMSCRIPTEN_SELECTION[3])
    if any("test_emscripten_helper" in item.nodeid for item in session.items):
        builds.start(*HELPER_SELECTION[:3], target=HELPER_SELECTION[3])
    session.config.stash[SESSION] = {"workspace": workspace, "background": background, "build": builds}


@pytest.fixture(scope="session")
def workspace(request):
    return request.config.stash[SESSION]["workspace"]


def sdist(name: str) -> Path:
    """An extension's sdist (recipes/extensions/), from the download cache: fetched and verified if not there."""
    pin = Recipes().extensions[name][1].source
    return Fetcher(Workspace.from_options().cache_dir, (), Reporter()).fetch_all([pin])[pin.sha256]


def build_args(workspace, python, sdk, provider, *extra, target="wasi", dist=None, locks=None):
    """`invoke build` of a selection in the session's store; into the session's dist/ and lockfiles/ unless given."""
    return ["build", "--python", python, "--target", target, "--sdk", str(sdk), "--provider", provider,
            "--build-dir", str(workspace["build"]), "--dist-dir", str(dist or workspace["dist"]),
            "--lock-dir", str(locks or workspace["locks"]), *map(str, extra)]


def fast_suite_under_node(workspace, selection, built: dict) -> dict:
    """`invoke test --suite fast` of an Emscripten `selection` (python, emsdk, provider, target), as a user runs
    it; its report, once what every such run must show holds: it passed, under Node's workers, on the built
    artifact, everything that failed known (recipes/tests.toml), and the modules of the C libraries and the
    core ones neither failed nor skipped."""
    python, emsdk, provider, target = selection
    result = invoke("test", *build_args(workspace, python, emsdk, provider, target=target)[1:], "--suite", "fast")
    report = json.loads((workspace["dist"] / f"{built['artifact'].name.removesuffix('.tar.gz')}.test-fast.json").read_text())
    assert result.returncode == 0, result.stderr[-6000:]
    assert "workers under Node" in result.stderr
    assert report["passed"] is True and report["runtime"] == "node"
    assert report["artifact_sha256"] == sha256(built["artifact"])
    assert report["unexpected_failures"] == [] and report["known_failures"]
    assert report["tests"]["run"] > 3000 and report["modules"]["run"] >= 45
    for module in ("test_json", "test_zlib", "test_bz2", "test_lzma", "test_sqlite3", "test_re", "test_str"):
        assert module not in report["modules"]["failed"] and module not in report["modules"]["skipped"], module
    return report


def rebuilt_toolchain_is_identical(build) -> None:
    """The build's toolchain image, built again from its Dockerfile without the engine's layer cache (apt and
    every RUN line again, on the same native image) and normalised, is the very same image: same image ID."""
    first = build.image_contents["toolchain"]
    again = build.executor.ensure_image(build.toolchain, build.plan.base.mirror, build.plan.base.source_date_epoch,
                                        fresh=True)
    assert not again.reused
    assert again.content == first, f"{build.toolchain.name}: see {build.store.logs_dir}/*-image-{build.toolchain.name}"


class Background:
    """Commands run beside the tests, each joined by the first test that needs its result. Two at once make use
    of the second core while one of them is in a single-threaded phase (configure, apt, packaging), which is
    about a third of a build; the store's locks order what they share. Output goes to a file, not a pipe: a pipe
    nobody reads would stall the command when full."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.running: dict = {}
        self.started = itertools.count()  # each command's own log, also once others have been joined

    def start(self, key, command: list, env=None) -> None:
        if key in self.running:
            return
        log = self.logs / f"background-{next(self.started)}.log"
        output = open(log, "w")
        process = subprocess.Popen([str(part) for part in command], cwd=PROJECT_ROOT, stdout=output,
                                   stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
        self.running[key] = (process, output, log)

    def join(self, key, timeout=3600) -> subprocess.CompletedProcess | None:
        """The command's result (its output as stderr), once it ended; None if it was never started."""
        if key not in self.running:
            return None
        process, output, log = self.running.pop(key)
        process.wait(timeout=timeout)
        output.close()
        return subprocess.CompletedProcess(process.args, process.returncode, "", log.read_text())


class Builds:
    """build(python, sdk, provider, *extra options, recipes=, target=) -> {result, artifact, lockfile, lock}:
    each selection built once per session, the way a user builds it (`invoke build`).

    build.start(...) begins one in the background, to be joined by the first build(...) of it."""

    def __init__(self, workspace, background: Background):
        self.workspace, self.background = workspace, background
        self.done: dict = {}

    def _key(self, python, sdk, provider, extra, recipes, target):
        return (python, sdk, provider, tuple(extra), recipes, target)

    def _command(self, python, sdk, provider, extra, recipes, target) -> list[str]:
        options = [*extra, *(["--recipes", str(recipes)] if recipes else [])]
        return build_args(self.workspace, python, sdk, provider, *options, target=target)

    def start(self, python, sdk, provider, *extra, recipes=None, target="wasi") -> None:
        key = self._key(python, sdk, provider, extra, recipes, target)
        if key not in self.done:
            self.background.start(key, [INVOKE, *self._command(python, sdk, provider, extra, recipes, target)])

    def __call__(self, python, sdk, provider, *extra, recipes=None, target="wasi") -> dict:
        key = self._key(python, sdk, provider, extra, recipes, target)
        if key not in self.done:
            command = self._command(python, sdk, provider, extra, recipes, target)
            result = self.background.join(key)
            if result is None:
                result = invoke(*command, check=True)
            elif result.returncode != 0:
                pytest.fail(f"{' '.join(command)} exited {result.returncode}\n{result.stderr[-6000:]}")
            given = {option: [extra[index + 1] for index, named in enumerate(extra[:-1]) if named == option]
                     for option in ("--extension", "--flavour")}
            name = Recipes(recipes or Recipes().root).resolve(
                python, sdk, provider, target, extensions=given["--extension"],
                flavour=(given["--flavour"] or [None])[-1]).artifact_name
            lockfile = self.workspace["locks"] / f"{name}.json"
            self.done[key] = {"result": result, "artifact": self.workspace["dist"] / f"{name}.tar.gz",
                              "lockfile": lockfile, "lock": json.loads(lockfile.read_text())}
        return self.done[key]


@pytest.fixture(scope="session")
def background(request):
    return request.config.stash[SESSION]["background"]


@pytest.fixture(scope="session")
def build(request):
    return request.config.stash[SESSION]["build"]


@pytest.fixture(scope="session")
def built(build):
    return build(*SELECTION)


@pytest.fixture(scope="session")
def custom(build, built, background, tmp_path_factory, request):
    """The custom interpreter: the default build with MarkupSafe and simplejson linked in. Its from-nothing
    rebuild (test_reproducibility.py), if the session runs it, starts beside the tests that follow, in a store
    of its own."""
    result = build(*SELECTION, *(option for name in EXTENSIONS for option in ("--extension", name)))
    if any("test_reproducibility" in item.nodeid for item in request.session.items):
        background.start("rebuild", *rebuild_command(result, tmp_path_factory.getbasetemp()))
    return result


def rebuild_command(built: dict, temporary: Path) -> tuple[list, dict]:
    """`invoke rebuild --check` of a build's lockfile, into a new directory below the session's `temporary` one,
    under umask 077 and another time zone (the command and its environment)."""
    output = temporary / "elsewhere" / "a" / "deeper" / "rebuild"
    command = [INVOKE, "rebuild", "--check", "--lock", built["lockfile"], "--output", output,
               "--artifact", built["artifact"]]
    return ["sh", "-c", 'umask 077 && exec "$@"', "rebuild", *command], {"TZ": "Pacific/Kiritimati"}


@pytest.fixture(scope="session")
def unpacked(built, tmp_path_factory):
    root = tmp_path_factory.mktemp("unpacked")
    safe_extract(built["artifact"], root)
    return root / ARTIFACT
