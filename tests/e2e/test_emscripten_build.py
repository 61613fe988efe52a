"""End to end: CPython for Emscripten with Debian's emscripten, run under Node and in Chromium.

The build is `invoke build --target emscripten` as a user runs it, beside the
README's WASI build of the same release in the same store (started with it,
see conftest.py): its build python is the WASI build's, one store product.
"""

import json

import pytest

from cpython_wasm.inputs.archives import safe_extract
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.targets import target_of
from cpython_wasm.tools.browser import browser_smoke
from tests.e2e.conftest import EMSCRIPTEN_SELECTION, fast_suite_under_node
from tests.helpers import invoke, sha256

pytestmark = pytest.mark.e2e

PYTHON, EMSDK, PROVIDER, TARGET = EMSCRIPTEN_SELECTION
ARTIFACT = f"python-{PYTHON}-emscripten-{EMSDK}-{PROVIDER}"
FILES = {"python.js", "python.wasm", "python.data", "python.html", "python.worker.js"}
MODULES = ("zlib", "bz2", "sqlite3", "lzma", "ctypes")  # the C libraries' modules (recipes/libraries/)


@pytest.fixture(scope="module")
def emscripten(build, built):
    """The Emscripten build, started beside `built` (the WASI build of the same release)."""
    return build(PYTHON, EMSDK, PROVIDER, target=TARGET)


def test_the_build_writes_an_artifact_that_ran_under_node(emscripten, built):
    lock, log = emscripten["lock"], emscripten["result"].stderr
    plan = Recipes().resolve(PYTHON, EMSDK, PROVIDER, "emscripten")
    assert emscripten["artifact"].name == f"{ARTIFACT}.tar.gz"
    assert lock["outputs"][f"{ARTIFACT}.tar.gz"]["sha256"] == sha256(emscripten["artifact"])
    assert lock["build"] == {
        "python": PYTHON, "target": "wasm32-unknown-emscripten", "emsdk": EMSDK, "provider": PROVIDER,
        "official_pairing": False, "host_arch": lock["build"]["host_arch"], "source_date_epoch": 1749600000,
        "configure_host_args": list(plan.support.configure_host_args),
        "host_environment": {"PYTHONPYCACHEPREFIX": "/cpython/cross-build/wasm32-unknown-emscripten/pycache",
                             "SOURCE_DATE_EPOCH": "1749600000",
                             **{name: value for library in plan.libraries
                                for name, value in target_of(plan).configure_variables(plan, library).items()}},
    }
    assert plan.modules == MODULES
    assert "no official emscripten toolchain" in log
    assert (f"smoke python.js under Node: cpython {PYTHON} on emscripten, zlib 1.3.1; used {', '.join(MODULES)}"
            in log)
    # Stage one is shared with the WASI build of the same release: one product, made (in a fresh store) by
    # whichever build came to it first (they run at once), found by the other.
    assert lock["products"]["build-python"] == built["lock"]["products"]["build-python"]
    assert sum("✓ build-python: reused" not in text for text in (log, built["result"].stderr)) <= 1


def test_the_toolchain_is_debians_emscripten_and_the_libraries_are_pinned(emscripten):
    lock = emscripten["lock"]
    packages = {p["name"]: p for p in lock["images"]["toolchain"]["packages"]}
    assert packages["emscripten"]["version"] == "3.1.69+dfsg-3"
    assert packages["nodejs"]["version"].startswith("20.")
    assert {i["name"] for i in lock["inputs"]} == {
        "Python-3.13.5.tar.xz", "zlib_1.3.dfsg+really1.3.1.orig.tar.gz", "bzip2_1.0.8.orig.tar.gz",
        "sqlite3_3.46.1.orig.tar.xz", "xz-utils_5.8.1.orig.tar.xz", "libffi_3.4.8.orig.tar.gz",
        "xterm-4.18.0.tgz"}  # the REPL page's JavaScript (recipes/web/xterm.toml), shipped beside it
    # Each library a store product of its own, built in the toolchain image: none is part of the image.
    assert {key for key in lock["products"] if key.startswith("library:")} == {
        "library:zlib", "library:bzip2", "library:sqlite", "library:xz", "library:libffi"}
    # Linked as a main module (ctypes opens it with dlopen(NULL)), each archive linked once, as usual.
    assert "--enable-wasm-dynamic-linking" in lock["build"]["configure_host_args"]
    assert lock["build"]["host_environment"]["ZLIB_LIBS"].startswith("-Wl,--no-whole-archive ")
    assert not any(name.endswith(".orig.tar.gz") for name in lock["images"]["toolchain"]["context"])


def test_the_artifact_holds_the_loader_the_module_and_the_preloaded_stdlib(emscripten, tmp_path):
    safe_extract(emscripten["artifact"], tmp_path)
    root = tmp_path / ARTIFACT
    # Beside the build's files, the manifest and the REPL page's xterm.js (vendor/, test_repl_page.py).
    assert {p.name for p in root.iterdir()} == FILES | {"manifest.json", "vendor"}
    manifest = json.loads((root / "manifest.json").read_text())
    assert {name for name in manifest["files"] if not name.startswith("vendor/")} == FILES
    assert {name.split("/")[1] for name in manifest["files"] if name.startswith("vendor/")} == {"xterm-4.18.0"}
    assert manifest["files"]["python.wasm"] == emscripten["lock"]["outputs"]["python.wasm"]
    assert (root / "python.wasm").read_bytes()[:4] == b"\0asm"
    # The standard library travels in python.data, as a zip file (Tools/wasm/wasm_assets.py).
    assert b"python313.zip" in (root / "python.js").read_bytes()
    assert (root / "python.data").stat().st_size > 2_000_000


def test_invoke_smoke_runs_it_under_node_and_in_chromium(emscripten, workspace):
    result = invoke("smoke", "--python", PYTHON, "--target", "emscripten", "--sdk", EMSDK, "--provider", PROVIDER,
                    "--dist-dir", workspace["dist"], "--lock-dir", workspace["locks"], "--browser", check=True)
    assert f"python.js under Node: cpython {PYTHON} on emscripten" in result.stderr
    assert f"in Chromium: cpython {PYTHON} on emscripten, zlib 1.3.1; used {', '.join(MODULES)}" in result.stderr


def test_in_chromium_the_page_reads_what_python_printed(emscripten):
    report = browser_smoke(emscripten["artifact"], PYTHON, MODULES)
    assert report["platform"] == "emscripten" and report["version"] == PYTHON
    assert report["zlib_roundtrip"] and report["json_roundtrip"]
    assert report["modules"] == dict.fromkeys(MODULES, True)  # round trips, a table written and queried
    assert "HeadlessChrome" in report["browser"]


def test_the_artifact_verifies_against_its_lockfile(emscripten):
    result = invoke("verify", emscripten["artifact"], "--lock", emscripten["lockfile"], check=True)
    assert "verified" in result.stdout


def test_the_fast_suite_runs_under_node(emscripten, workspace):
    """The browser flavour's python.js under Node as regrtest's workers (containers/files/run-python-js.cjs mounts
    the work directory and links Lib/test beside the preloaded standard library); what fails is known (MEMFS, no
    test modules in the flavour...)."""
    report = fast_suite_under_node(workspace, EMSCRIPTEN_SELECTION, emscripten)
    # 3.13 names no Emscripten test-args: `make test`'s, with the fast suite's resources taken away.
    assert report["regrtest"]["options"][:1] == ["--fast-ci"] and report["regrtest"]["options"][-1] == "--use=-cpu"
