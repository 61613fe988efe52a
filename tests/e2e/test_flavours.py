"""End to end: the snapshot flavour (targets/flavours.py), built from the session's default build.

It reuses every stage of the default build and adds its own two; its smoke run and the verifier pass; the
wasmtime CLI runs it with the argv, environment and preopened directories given at run time, not those of
the snapshot; the interpreter it starts is the one the recipe pre-imported into; and its snapshot stage,
made again from nothing, gives the same bytes.
"""

import hashlib
import json
import subprocess

import pytest

from cpython_wasm.build import Build
from cpython_wasm.inputs import tools
from cpython_wasm.inputs.archives import safe_extract
from cpython_wasm.paths import Workspace
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.plan import Recipes
from tests.e2e.conftest import SELECTION
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
def run(snapshot, session_build, tmp_path_factory):
    """python.wasm of the snapshot artifact under the wasmtime CLI (taken out by the build), precompiled once."""
    root = tmp_path_factory.mktemp("snapshot")
    safe_extract(snapshot["artifact"], root / "artifact", strip_components=1)
    plan = session_build.plan
    cli = session_build.store.path(tools.wasmtime_cli_tool(plan.wasmtime_cli, plan.recipe_paths["wasmtime-cli"])) / "wasmtime"
    subprocess.run([cli, "compile", root / "artifact" / "python.wasm", "-o", root / "python.cwasm"], check=True)
    data = root / "data"
    data.mkdir()
    (data / "given.txt").write_text("given at run time\n")

    def run_snapshot(*arguments, env=()):
        command = [cli, "run", "--allow-precompiled", "--dir", f"{root / 'artifact'}::/", "--dir", f"{data}::/data",
                   *(option for pair in env for option in ("--env", pair)), "--argv0", "/python.wasm",
                   root / "python.cwasm", *arguments]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)
    return run_snapshot


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


def test_the_snapshot_made_again_is_the_same_bytes(snapshot, session_build):
    stages = session_build.stages()
    first = hashlib.sha256((session_build.store.path(stages.snapshot) / "python.wasm").read_bytes()).hexdigest()
    again = session_build.executor.realise(stages.snapshot, fresh=True)
    assert not again.reused
    assert hashlib.sha256((again.path / "python.wasm").read_bytes()).hexdigest() == first
