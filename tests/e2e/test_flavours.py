"""End to end: the flavours (targets/flavours.py), built beside the session's default build.

The snapshot reuses every stage of the default build and adds its own two; its smoke run and the verifier
pass; the wasmtime CLI runs it with the argv, environment and preopened directories given at run time, not
those of the snapshot; the interpreter it starts is the one the recipe pre-imported into; and its snapshot
stage, made again from nothing, gives the same bytes.

The minimal flavour shares the default build's source and build python and builds its own python.wasm; its
smoke run runs the recipe's programs, the verifier passes, it has only the C modules and the part of the
standard library its recipe keeps, and its fast suite (the tests of what it contains) passes."""

import hashlib
import json
import subprocess
import tomllib

import pytest

from cpython_wasm.build import Build
from cpython_wasm.inputs import tools
from cpython_wasm.inputs.archives import safe_extract
from cpython_wasm.paths import Workspace
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.plan import RECIPES_DIR, Recipes
from tests.e2e.conftest import SELECTION, build_args
from tests.helpers import invoke

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def snapshot(build, built):
    return build(*SELECTION, "--flavour", "snapshot")


@pytest.fixture(scope="module")
def session_build(workspace):
    """A Build of the snapshot plan in the session's store (nothing run by making it)."""
    plan = Recipes().resolve(*SELECTION, flavour="snapshot")
    return Build(plan, Workspace.from_options(build_dir=workspace["build"], dist_dir=workspace["dist"],
                                              lock_dir=workspace["locks"]), Reporter())


@pytest.fixture(scope="module")
def cli(snapshot, session_build):
    """The wasmtime CLI the builds took out of its archive (the one their toolchain image installs)."""
    plan = session_build.plan
    return session_build.store.path(tools.pinned_tool("wasmtime-cli", plan.wasmtime_cli, plan.recipe_paths["wasmtime-cli"])) / "wasmtime"


def runner(cli, artifact, root, base_env=()):
    """python.wasm of an artifact under the wasmtime CLI, precompiled once, with /data preopened and `base_env`
    in every run's environment."""
    safe_extract(artifact, root / "artifact", strip_components=1)
    subprocess.run([cli, "compile", root / "artifact" / "python.wasm", "-o", root / "python.cwasm"], check=True)
    data = root / "data"
    data.mkdir()
    (data / "given.txt").write_text("given at run time\n")

    def run(*arguments, env=()):
        command = [cli, "run", "--allow-precompiled", "--dir", f"{root / 'artifact'}::/", "--dir", f"{data}::/data",
                   *(option for pair in (*base_env, *env) for option in ("--env", pair)), "--argv0", "/python.wasm",
                   root / "python.cwasm", *arguments]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)
    return run


@pytest.fixture(scope="module")
def run(snapshot, cli, tmp_path_factory):
    return runner(cli, snapshot["artifact"], tmp_path_factory.mktemp("snapshot"))


def test_the_snapshot_reuses_the_default_build_and_verifies(snapshot, built):
    lock, stock = snapshot["lock"], built["lock"]
    assert lock["build"]["flavour"] == "snapshot" and "flavour" not in stock["build"]
    shared = {key for key in stock["products"] if key != "package"}
    assert {key: lock["products"][key] for key in shared} == {key: stock["products"][key] for key in shared}
    assert lock["products"]["stock-package"] == stock["products"]["package"]
    assert {"snapshot", "package"} <= lock["products"].keys()
    assert "recipes/flavours/snapshot.toml" in lock["recipes"] and "recipes/tools/wasmtime-cli.toml" in lock["recipes"]
    assert "smoke" in snapshot["result"].stderr and "snapshot" in snapshot["result"].stderr
    verified = invoke("verify", snapshot["artifact"], "--lock", snapshot["lockfile"])
    assert verified.returncode == 0, verified.stderr[-3000:]


def test_argv_environment_and_preopens_are_the_runs_own(run):
    program = ("import json, os, sys; print(json.dumps({'argv': sys.argv, 'env': dict(os.environ), "
               "'data': open('/data/given.txt').read(), 'listed': os.listdir('/data'), "
               "'preimported': [name for name in ('json', 're', 'asyncio') if name in sys.modules], "
               "'main': sorted(name for name in globals() if not name.startswith('__'))}))")
    result = run("-c", program, "first", "second", env=["GREETING=hello", "PYTHONHASHSEED=7"])
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["argv"] == ["-c", "first", "second"]
    assert seen["env"] == {"GREETING": "hello", "PYTHONHASHSEED": "7"}  # nothing of the snapshot's
    assert seen["data"] == "given at run time\n" and seen["listed"] == ["given.txt"]
    assert seen["preimported"] == ["json", "re", "asyncio"]
    assert seen["main"] == ["json", "os", "sys"]  # __main__ holds the program's names only


def test_scripts_modules_exit_status_and_the_frozen_hash_secret(run, tmp_path):
    script = run("/data/given.txt")  # not Python: a SyntaxError, reported as CPython reports it
    assert script.returncode == 1 and "SyntaxError" in script.stderr
    assert run("-c", "raise SystemExit(7)").returncode == 7
    assert run("-m", "json.tool", "--help").stdout.startswith("usage:")
    refused = run("-X", "dev", "-c", "pass")
    assert refused.returncode == 2 and "options were fixed when the snapshot was made" in refused.stderr
    # The hash secret was fixed when the snapshot was made (PYTHONHASHSEED=0's): the same in every run,
    # whatever PYTHONHASHSEED says at run time.
    hashes = {run("-c", "print(hash('abc'))", env=[f"PYTHONHASHSEED={seed}"]).stdout for seed in ("1", "2", "random")}
    assert len(hashes) == 1
    flags = run("-c", "import sys; print(sys.flags.hash_randomization)").stdout.strip()
    assert flags == "0"
    # What the snapshot made is in the collector's permanent generation (gc.freeze()); what a run makes is not.
    frozen = run("-c", "import gc; before = gc.get_freeze_count(); x = [[] for _ in range(1000)]; gc.collect(); "
                       "print(before, gc.get_freeze_count())").stdout.split()
    assert int(frozen[0]) > 10000 and frozen[0] == frozen[1]


def test_the_snapshot_made_again_is_the_same_bytes(snapshot, session_build):
    stages = session_build.stages()
    first = hashlib.sha256((session_build.store.path(stages.snapshot) / "python.wasm").read_bytes()).hexdigest()
    again = session_build.executor.realise(stages.snapshot, fresh=True)
    assert not again.reused
    assert hashlib.sha256((again.path / "python.wasm").read_bytes()).hexdigest() == first


@pytest.fixture(scope="module")
def minimal(build, built):
    return build(*SELECTION, "--flavour", "minimal")


@pytest.fixture(scope="module")
def run_minimal(minimal, cli, tmp_path_factory):
    return runner(cli, minimal["artifact"], tmp_path_factory.mktemp("minimal"), base_env=["PYTHONHOME=/"])


def test_the_minimal_flavour_builds_its_own_interpreter_runs_its_programs_and_verifies(minimal, built):
    lock, stock = minimal["lock"], built["lock"]
    assert lock["build"]["flavour"] == "minimal"
    assert lock["products"]["build-python"] == stock["products"]["build-python"]
    assert not any(key.startswith("library:") for key in lock["products"])
    assert all(lock["products"][key] != stock["products"][key] for key in ("host", "devkit", "package"))
    configure = lock["build"]["configure_host_args"]
    assert "--disable-test-modules" in configure and "py_cv_module__decimal=n/a" in configure
    assert "recipes/flavours/minimal.toml" in lock["recipes"]
    assert not any(path.startswith("recipes/libraries/") for path in lock["recipes"])
    recipe = tomllib.loads((RECIPES_DIR / "flavours" / "minimal.toml").read_text())
    for name in recipe["programs"]:  # the smoke run ran each program on the artifact
        assert f"program:{name}" in minimal["result"].stderr, name
    verified = invoke("verify", minimal["artifact"], "--lock", minimal["lockfile"])
    assert verified.returncode == 0, verified.stderr[-3000:]
    assert minimal["artifact"].stat().st_size < built["artifact"].stat().st_size / 2


def test_the_minimal_interpreter_has_only_what_its_recipe_keeps(run_minimal):
    recipe = tomllib.loads((RECIPES_DIR / "flavours" / "minimal.toml").read_text())
    program = ("import json, os, sys; print(json.dumps({'builtin': sorted(sys.builtin_module_names), "
               "'lib': sorted(os.listdir(sys.prefix + '/lib/python3.13')), "
               "'encodings': sorted(os.listdir(sys.prefix + '/lib/python3.13/encodings'))}))")
    result = run_minimal("-c", program)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert not set(recipe["host"]["without_modules"]) & set(seen["builtin"])
    assert {"_json", "_sha2", "_struct", "math", "binascii", "_datetime"} <= set(seen["builtin"])
    assert "_testcapi" not in seen["builtin"]
    assert "asyncio" not in seen["lib"] and "email" not in seen["lib"] and "json" in seen["lib"]
    codecs = [name.removeprefix("encodings.") for name in recipe["stdlib"] if name.startswith("encodings.")]
    assert seen["encodings"] == sorted(f"{name}.pyc" for name in ("__init__", *codecs))
    assert "utf_16" in codecs and "cp437" not in codecs
    missing = run_minimal("-c", "import asyncio")
    assert missing.returncode == 1 and "ModuleNotFoundError: No module named 'asyncio'" in missing.stderr
    assert run_minimal("-m", "json.tool", "/data/given.txt").returncode == 1  # runpy: -m works; not JSON
    assert run_minimal("-c", "import sys; print(open('/data/given.txt').read(), end='')").stdout == "given at run time\n"


def test_the_minimal_fast_suite_runs_the_tests_of_what_it_contains(minimal, workspace):
    result = invoke("test", *build_args(workspace, *SELECTION, "--flavour", "minimal")[1:], "--suite", "fast")
    report_path = workspace["dist"] / f"{minimal['artifact'].name.removesuffix('.tar.gz')}.test-fast.json"
    assert result.returncode == 0, result.stderr[-6000:]
    report = json.loads(report_path.read_text())
    assert report["passed"] is True and report["unexpected_failures"] == []
    # What it does not contain is not run; what it leaves out on purpose fails as known (recipes/tests.toml).
    assert report["not_contained"] == ["test_zlib", "test_bz2", "test_lzma", "test_sqlite3"]
    assert report["modules"]["run"] >= 40 and report["tests"]["passed"] > 4000
    for module in ("test_json", "test_re", "test_os", "test_fileio", "test_grammar", "test_hashlib", "test_unicodedata"):
        assert module not in report["modules"]["failed"] and module not in report["modules"]["skipped"], module
    assert all(failure["known"] for failure in report["failures"])
