"""End to end: CPython 3.14 for Emscripten through its own helper, Platforms/emscripten, with Debian's
emscripten 6.0.5, offline; run under Node and in Chromium, and CPython's test suite under Node.

The build starts with the session's others (conftest.py). What the helper would download while building
(libffi, mpdecimal, emscripten's bzip2 port, Node through nvm) comes from pinned recipes and the toolchain
image; the recipes' pins are checked against the release's own Platforms/emscripten/config.toml here.
"""

import io
import json
import os
import tarfile
import tomllib
import zipfile

import pytest

from cpython_wasm.build import Build
from cpython_wasm.inputs.archives import safe_extract
from cpython_wasm.inputs.fetch import Fetcher
from cpython_wasm.paths import Workspace
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.tools.browser import browser_smoke
from tests.e2e.conftest import HELPER_SELECTION, fast_suite_under_node, rebuilt_toolchain_is_identical
from tests.helpers import invoke, sha256

pytestmark = pytest.mark.e2e

PYTHON, EMSDK, PROVIDER, TARGET = HELPER_SELECTION
ARTIFACT = f"python-{PYTHON}-emscripten-{EMSDK}-{PROVIDER}"
PLAN = Recipes().resolve(PYTHON, EMSDK, PROVIDER, TARGET)
STDLIB_ZIP = f"python{PLAN.python.line}.zip"
# Upstream's web example and PyREPL page (web_example_pyrepl_jspi/'s index.html and src.mjs, beside the module
# they load under names of their own), and its Node entry.
FILES = {"python.mjs", "python.wasm", STDLIB_ZIP, "index.html", "python.worker.mjs", "server.py",
         "pyrepl.html", "pyrepl.mjs", "node_entry.mjs", "streams.mjs"}
MODULES = ("zlib", "bz2", "sqlite3", "lzma", "ctypes", "decimal")  # the C libraries' modules (recipes/libraries/)


@pytest.fixture(scope="module")
def helper_build(build):
    return build(PYTHON, EMSDK, PROVIDER, target=TARGET)


def test_the_emscripten_image_builds_twice_to_the_same_content(helper_build, workspace, tmp_path):
    build = Build(PLAN, Workspace.from_options(None, workspace["build"], tmp_path / "dist", tmp_path / "locks"), Reporter())
    build.ensure_images()
    assert build.image_contents["toolchain"].id == helper_build["lock"]["images"]["toolchain"]["id"]
    rebuilt_toolchain_is_identical(build)


def release_config(version: str) -> dict:
    """Platforms/emscripten/config.toml of a pinned release, read from its tarball (fetched and verified)."""
    recipes = Recipes()
    pin = recipes.resolve(version, None, "release", "emscripten").release.source
    tarball = Fetcher(Workspace.from_options().cache_dir, (), Reporter()).fetch_all([pin])[pin.sha256]
    with tarfile.open(tarball) as archive:
        member = archive.extractfile(f"Python-{version}/Platforms/emscripten/config.toml")
        return tomllib.load(io.BytesIO(member.read()))


@pytest.mark.parametrize("version", ["3.14.6", "3.15.0rc2"])
def test_the_recipes_pin_what_the_releases_own_helper_pins(version):
    config = release_config(version)
    plan = Recipes().resolve(version, None, "release", "emscripten")  # the official pairing
    assert plan.sdk == config["emscripten-version"] == plan.support.official_sdk
    dependencies = {"libffi": config["dependencies"]["libffi"], "mpdecimal": config["dependencies"]["mpdec"]}
    assert dict(plan.support.dependency_versions) == {name: pin["version"] for name, pin in dependencies.items()}
    libraries = {library.name: library for library in plan.libraries}
    for name, pin in dependencies.items():
        assert (libraries[name].version, libraries[name].source.sha256) == (pin["version"], pin["shasum"])
        assert libraries[name].source.urls[0] == pin["url"].format(version=pin["version"])
    # Debian's 6.0.5 brings the Node major the release names.
    debian = Recipes().resolve(version, "6.0.5", "debian", "emscripten")
    assert debian.toolchain.packages["nodejs"].split(".")[0] == config["node-version"]


def test_the_helper_builds_offline_with_pinned_dependencies(helper_build):
    lock, log = helper_build["lock"], helper_build["result"].stderr
    assert helper_build["artifact"].name == f"{ARTIFACT}.tar.gz"
    assert lock["outputs"][f"{ARTIFACT}.tar.gz"]["sha256"] == sha256(helper_build["artifact"])
    assert lock["build"]["target"] == "wasm32-emscripten" and lock["build"]["emsdk"] == EMSDK
    assert lock["build"]["official_pairing"] is False
    packages = {p["name"]: p["version"] for p in lock["images"]["toolchain"]["packages"]}
    assert packages["emscripten"] == "6.0.5+dfsg+~1.41.5-2" and packages["nodejs"].startswith("24.")
    assert {i["name"] for i in lock["inputs"]} >= {"mpdecimal_4.0.1.orig.tar.gz", "libffi_3.4.8.orig.tar.gz",
                                                   "bzip2_1.0.8.orig.tar.gz"}
    assert {key for key in lock["products"] if key.startswith("library:")} == {
        f"library:{name}" for name in ("zlib", "bzip2", "sqlite", "xz", "libffi", "mpdecimal")}
    # The deviations from the official pairing are said.
    assert f"officially built with emsdk {PLAN.support.official_sdk}" in log
    assert "libffi 3.4.8 instead of 3.4.6" in log
    # Node ran it at the end of the build: every library's module was used.
    assert f"smoke python.mjs under Node: cpython {PYTHON} on emscripten, zlib 1.3.1; used {', '.join(MODULES)}" in log


def test_the_artifact_is_what_platforms_emscripten_lays_out(helper_build, tmp_path):
    safe_extract(helper_build["artifact"], tmp_path)
    root = tmp_path / ARTIFACT
    # Beside upstream's files, the manifest and the REPL page's JavaScript (vendor/, test_repl_page.py).
    assert {p.name for p in root.iterdir()} == FILES | {"manifest.json", "vendor"}
    manifest = json.loads((root / "manifest.json").read_text())
    assert {name for name in manifest["files"] if not name.startswith("vendor/")} == FILES
    assert {name.split("/")[1] for name in manifest["files"] if name.startswith("vendor/")} == {
        "xterm-4.18.0", "ace-builds-1.43.1", "xterm-pty-0.12.0", "xterm-xterm-6.0.0"}
    # The PyREPL page loads its module, which imports xterm-pty and xterm.js from beside it, not from unpkg.com.
    assert '<script type="module" src="pyrepl.mjs">' in (root / "pyrepl.html").read_text()
    module = (root / "pyrepl.mjs").read_text()
    assert '"./vendor/xterm-pty-0.12.0/index.mjs"' in module and '"./vendor/xterm-xterm-6.0.0/lib/xterm.js"' in module
    assert "unpkg.com" not in module
    assert (root / "python.wasm").read_bytes()[:4] == b"\0asm"
    # The standard library zip the page's worker fetches: compiled, without the tests, dated SOURCE_DATE_EPOCH.
    with zipfile.ZipFile(root / STDLIB_ZIP) as stdlib:
        names = stdlib.namelist()
        assert "os.pyc" in names and not any(name.startswith("test/") for name in names)
        released = PLAN.release.release_date
        assert {info.date_time for info in stdlib.infolist()} == {(released.year, released.month, released.day, 0, 0, 0)}


def test_invoke_smoke_runs_it_under_node_and_in_chromium(helper_build, workspace):
    result = invoke("smoke", "--python", PYTHON, "--target", TARGET, "--sdk", EMSDK, "--provider", PROVIDER,
                    "--dist-dir", workspace["dist"], "--lock-dir", workspace["locks"], "--browser", check=True)
    assert f"in Chromium: cpython {PYTHON} on emscripten, zlib 1.3.1; used {', '.join(MODULES)}" in result.stderr


def test_the_chromium_page_runs_the_es_module(helper_build):
    report = browser_smoke(helper_build["artifact"], PYTHON, MODULES)
    assert report["modules"] == dict.fromkeys(MODULES, True) and "HeadlessChrome" in report["browser"]


def test_the_fast_suite_passes_under_node(helper_build, workspace):
    report = fast_suite_under_node(workspace, HELPER_SELECTION, helper_build)
    # The release's config.toml test-args, with a worker per core (python.mjs under Node) for --single-process,
    # and the fast suite's resources taken away (recipes/tests.toml).
    assert report["regrtest"]["options"] == ["-v", "-uall", "--rerun", "-W", "-j", str(os.cpu_count()), "--use=-cpu"]
    lock = json.loads(helper_build["lockfile"].read_text())
    assert lock["tests"]["fast"]["tests"] == report["tests"]


def test_the_artifact_verifies_against_its_lockfile(helper_build):
    result = invoke("verify", helper_build["artifact"], "--lock", helper_build["lockfile"], check=True)
    assert "verified" in result.stdout
