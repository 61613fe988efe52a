"""End to end: CPython's own test suite on the README build's artifact, and the benchmarks (see conftest.py)."""

import json
import shutil
import tomllib

import pytest
import tomli_w

from cpython_wasm.recipes.plan import RECIPES_DIR
from tests.e2e.conftest import ARTIFACT, SELECTION, build_args
from tests.helpers import invoke, sha256

pytestmark = pytest.mark.e2e


def suite_args(workspace, *extra):
    return ["test", *build_args(workspace, *SELECTION)[1:], *extra]


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
                    "--startup-runs", "2", "--output", output)
    assert result.returncode == 0, result.stderr[-6000:]
    results = json.loads((output / f"{ARTIFACT}.json").read_text())
    assert results["artifact_sha256"] == sha256(built["artifact"])
    workloads = results["speed"]["workloads"]
    assert set(workloads) >= {"nbody", "richards", "float", "json_dumps", "json_loads", "regex", "dict_str"}
    assert all(entry["ratio"] > 0.5 for entry in workloads.values())  # wasm is not magically faster than native
    assert 0.5 < results["speed"]["geometric_mean"] < 10
    startup = results["startup"]
    assert startup["precompiled"]["median"] < startup["cached"]["median"] < startup["first_run"]["median"]
    sizes = results["size"]
    assert sizes["python_wasm_shipped"] < sizes["python_wasm_linked"]
    assert sizes["artifact_xz"] < sizes["artifact_gzip"] == built["artifact"].stat().st_size
    assert results["build"]["cold"]["host"]["phases"]["make-host"] > 10
    assert results["build"]["noop_rebuild"]["rebuilt"] == []
    assert set(results["targets"]) == {"slowdown", "startup", "distributable", "noop_rebuild"}
    assert (output / f"{ARTIFACT}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    native = json.loads((output / f"{ARTIFACT}.pyperf" / "native.json").read_text())
    assert {bench["metadata"]["name"] for bench in native["benchmarks"]} == set(workloads)
