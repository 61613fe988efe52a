"""End to end: a custom interpreter with C extension modules from pinned sdists (targets/extensions.py).

The README's build with MarkupSafe and simplejson linked in (the session's
`custom` build): it reuses the default build's stages, its smoke run proves
the C code runs, it verifies, and each project's own test suite, from its
sdist, passes on it under wasmtime. Its from-nothing rebuild is in
test_reproducibility.py. Then what is refused: an extension that does not
compile for WASI (in its own phase, nothing published), and a name that
shadows the standard library (before anything is built).
"""

import hashlib
import json
import re
import shutil
import tarfile
from importlib.metadata import distribution
from pathlib import Path

import pytest

from cpython_wasm.inputs.archives import safe_extract
from cpython_wasm.runtime import run_wasi
from tests.e2e.conftest import ARTIFACT, EXTENSIONS, SELECTION, build_args, sdist
from tests.helpers import PROJECT_ROOT, invoke

pytestmark = pytest.mark.e2e

# pytest and what it imports, copied from this checkout's virtualenv (pinned by requirements/test.txt) to run
# MarkupSafe's tests inside python.wasm.
PYTEST = ("pytest", "pluggy", "iniconfig", "packaging", "pygments")
# pytest's plugins that need what WASI lacks: os.dup (capture by file descriptor, faulthandler), /dev/null
# (logging's file handler); and its cache, which would write into the read-only sdist.
PYTEST_OPTIONS = ("-p", "no:cacheprovider", "-p", "no:faulthandler", "-p", "no:logging", "--capture=sys")
# simplejson's tests that need what WASI has not: processes (subprocess: its command-line tool, run twice,
# with and without the C speedups; a recursion guard checked in a child) and threads.
SIMPLEJSON_NEEDS_PROCESSES = {f"test_tool.TestTool.{name}" for name in (
    "test_stdin_stdout", "test_infile_stdout", "test_infile_outfile", "test_utf8_infile_stdout",
    "test_utf8_infile_outfile")} | {"test_iterable.TestIterable.test_unbounded_iterable_recursion_is_guarded"}
SIMPLEJSON_NEEDS_THREADS = {f"test_free_threading.TestFreeThreading.{name}" for name in (
    "test_concurrent_encode", "test_concurrent_decode", "test_concurrent_encode_decode",
    "test_shared_encoder_instance")}


@pytest.fixture(scope="module")
def installed(custom, tmp_path_factory) -> Path:
    """The custom artifact and its debug artifact unpacked (the tests' sources beside their .pyc), and pytest."""
    root = tmp_path_factory.mktemp("custom")
    name = custom["artifact"].name.removesuffix(".tar.gz")
    for tarball in (custom["artifact"], custom["artifact"].with_name(f"{name}.debug.tar.gz")):
        safe_extract(tarball, root / "artifact", strip_components=1)
    for project in PYTEST:
        for file in distribution(project).files:
            if file.parts[0] != ".." and "__pycache__" not in file.parts:
                (root / "site" / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(file.locate(), root / "site" / file)
    (root / "tmp").mkdir()
    return root


def run_tests(installed: Path, project: str, arguments: list[str], tmp_path: Path) -> tuple[int, str]:
    """Python code run by the custom python.wasm under wasmtime, the project's sdist unpacked at /project and
    pytest at /site; its exit status and its output."""
    safe_extract(sdist(project), tmp_path / "sdist", strip_components=1)
    status = run_wasi(str(installed / "artifact" / "python.wasm"), arguments,
                      dirs=[(installed / "artifact", "/"), (installed / "site", "/site"), (tmp_path / "sdist", "/project"),
                            (installed / "tmp", "/tmp")],
                      env={"PYTHONHOME": "/", "PYTHONPATH": "/site"}, stdout=tmp_path / "out", stderr=tmp_path / "err")
    return status, (tmp_path / "out").read_text() + (tmp_path / "err").read_text()


def test_the_custom_interpreter_reuses_the_default_build_and_runs_the_c_code(built, custom):
    lock, default = custom["lock"], built["lock"]
    assert custom["artifact"].name == f"{ARTIFACT}+markupsafe-3.0.3+simplejson-4.3.0.tar.gz"
    assert lock["build"]["extensions"] == list(EXTENSIONS) and "extensions" not in default["build"]
    # CPython is not compiled again: every stage of the default build is the very same product.
    for stage in ("build-python", "host", "devkit", "library:zlib", "library:sqlite"):
        assert lock["products"][stage] == default["products"][stage], stage
    assert {"extension:markupsafe", "extension:simplejson", "interpreter"} <= lock["products"].keys()
    log = custom["result"].stderr
    assert "✓ host: reused" in log and "✓ devkit: reused" in log
    assert re.search(r"✓ smoke .*used zlib, bz2, sqlite3, lzma, markupsafe, simplejson", log), log[-3000:]
    sdists = {pin["name"]: pin["sha256"] for pin in lock["inputs"]}
    assert sdists["markupsafe-3.0.3.tar.gz"] == "722695808f4b6457b320fdc131280796bdceb04ab50fe1795cd540799ebe1698"
    assert sdists["simplejson-4.3.0.tar.gz"] == "ffe34ab51a0d37e6d1c661a5672df00d2d5e18804e38eac07abffb83fa5ec3d7"
    assert {"recipes/extensions/markupsafe.toml", "recipes/extensions/simplejson.toml"} <= lock["recipes"].keys()
    sbom = json.loads(custom["artifact"].with_name(f"{lock['artifact']}.cdx.json").read_text())
    purls = {component.get("purl") for component in sbom["components"]}
    assert {"pkg:pypi/markupsafe@3.0.3", "pkg:pypi/simplejson@4.3.0"} <= purls


def test_the_custom_interpreter_verifies(custom):
    for tarball in (custom["artifact"], custom["artifact"].with_name(f"{custom['lock']['artifact']}.devkit.tar.gz")):
        result = invoke("verify", tarball, "--lock", custom["lockfile"], check=True)
        assert "verified:" in result.stdout
    result = invoke("smoke", "--artifact", custom["artifact"], "--lock-dir", custom["lockfile"].parent,  # the name
                    check=True)  # says its extensions
    assert "markupsafe, simplejson" in result.stderr


def test_the_pure_python_packages_are_compiled_beside_the_standard_library(custom):
    with tarfile.open(custom["artifact"]) as archive:
        names = set(archive.getnames())
    lib = f"{custom['lock']['artifact']}/lib/python3.13"
    assert {f"{lib}/markupsafe/__init__.pyc", f"{lib}/simplejson/decoder.pyc", f"{lib}/json/__init__.pyc"} <= names
    assert not [name for name in names if name.endswith((".c", ".py"))]


def test_markupsafe_passes_its_own_tests(installed, tmp_path):
    status, output = run_tests(installed, "markupsafe",
                               ["-m", "pytest", *PYTEST_OPTIONS, "--rootdir", "/project", "/project/tests"], tmp_path)
    # Each test runs twice, with the pure-Python and with the C implementation; one tests only the C one.
    assert status == 0, output[-4000:]
    assert re.search(r"\b79 passed, 1 skipped\b", output), output[-2000:]


def test_simplejson_passes_its_own_tests_but_those_needing_processes_or_threads(installed, tmp_path):
    # As its own entry point runs them (with its README's doctests), with and without the C speedups.
    status, output = run_tests(installed, "simplejson",
                               ["-c", "import simplejson.tests as t; t.main(project_dir='/project')", "-v"], tmp_path)
    failed = {match.group(1).removeprefix("simplejson.tests.")
              for match in re.finditer(r"^(?:ERROR|FAIL): \w+ \(([\w.]+)\)", output, re.MULTILINE)}
    assert failed == SIMPLEJSON_NEEDS_PROCESSES | SIMPLEJSON_NEEDS_THREADS, output[-4000:]
    for reason in re.findall(r"^(?:OSError|RuntimeError): (.*)$", output, re.MULTILINE):
        assert "does not support processes" in reason or "thread" in reason, reason
    ran = int(re.search(r"^Ran (\d+) tests", output, re.MULTILINE).group(1))
    assert ran >= 550 and re.search(r"FAILED \(errors=15, skipped=\d+\)", output), output[-1000:]
    # Its tests of the C speedups themselves ran and passed in the first pass (skipped in the second only).
    speedups = set(re.findall(r"^(test_\w+ \(simplejson\.tests\.test_speedups\.[\w.]+\)) \.\.\. skipped "
                              r"'C Extension not available'$", output, re.MULTILINE))
    assert len(speedups) >= 10 and all(f"{test} ... ok" in output for test in speedups), output[-3000:]


def recipes_with(tmp_path: Path, name: str, recipe: str) -> Path:
    root = tmp_path / "recipes"
    shutil.copytree(PROJECT_ROOT / "recipes", root)
    (root / "extensions" / f"{name}.toml").write_text(recipe)
    return root


def local_sdist(tmp_path: Path, name: str, files: dict[str, str]) -> tuple[Path, str]:
    """An sdist of `files`, in a mirror directory; its sha256."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    tree = tmp_path / f"{name}-1.0"
    for path, text in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    tarball = mirror / f"{name}-1.0.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(tree, arcname=tree.name)
    return mirror, hashlib.sha256(tarball.read_bytes()).hexdigest()


def extension_recipe(name: str, sha256: str, package: str, module: str, source: str) -> str:
    return f"""name = "{name}"
version = "1.0"
packages = ["{package}"]
smoke = "pass"
[[modules]]
name = "{module}"
sources = ["{source}"]
[source]
file = "{name}-1.0.tar.gz"
sha256 = "{sha256}"
"""


def test_an_extension_that_does_not_compile_for_wasi_fails_in_its_phase_and_publishes_nothing(
        built, workspace, tmp_path):
    mirror, sha256 = local_sdist(tmp_path, "forky", {
        "forky/__init__.py": "",
        "forky/_fork.c": "#include <Python.h>\n#include <unistd.h>\n"
                         "PyMODINIT_FUNC PyInit__fork(void) { fork(); return NULL; }\n"})
    recipes = recipes_with(tmp_path, "forky", extension_recipe("forky", sha256, "forky", "forky._fork",
                                                              "forky/_fork.c"))
    dist = tmp_path / "dist"
    result = invoke(*build_args(workspace, *SELECTION, "--extension", "forky", "--recipes", recipes,
                                "--mirror", mirror, dist=dist, locks=tmp_path / "locks"))
    assert result.returncode == 1, result.stderr[-3000:]
    assert "extension: build-forky" in result.stderr and "fork" in result.stderr
    log = re.search(r"Its full log is (\S+?build-forky\.log)", result.stderr)
    assert log and "fork" in (PROJECT_ROOT / log.group(1)).read_text(), result.stderr[-3000:]
    assert not dist.exists() or not list(dist.iterdir())
    assert not (tmp_path / "locks").exists()


def test_an_extension_shadowing_the_standard_library_is_refused_before_building(built, workspace, tmp_path):
    mirror, sha256 = local_sdist(tmp_path, "jsonish", {"json/__init__.py": "", "json/_fast.c": "int x;\n"})
    recipes = recipes_with(tmp_path, "jsonish", extension_recipe("jsonish", sha256, "json", "json._fast",
                                                                "json/_fast.c"))
    result = invoke(*build_args(workspace, *SELECTION, "--extension", "jsonish", "--recipes", recipes,
                                "--mirror", mirror, dist=tmp_path / "dist", locks=tmp_path / "locks"))
    assert result.returncode == 2, result.stderr[-3000:]
    assert "`json`" in result.stderr and "shadow" in result.stderr and "Traceback" not in result.stderr
    assert "▶ image" not in result.stderr and "▶ extension" not in result.stderr
