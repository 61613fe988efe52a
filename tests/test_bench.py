"""The statistics, targets and chart of `invoke bench` (pure logic and files; the measuring itself is in
tests/e2e/test_testsuite.py), and the workloads, run here natively."""

import json
import math
import subprocess
import sys
from types import SimpleNamespace

import pyperf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpython_wasm.cli import build_command
from cpython_wasm.container import workloads
from cpython_wasm.errors import UserError
from cpython_wasm.paths import CONTAINER_SCRIPTS_DIR
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.targets.wasi import Wasi
from cpython_wasm.tools import bench


def raw_speed():
    # Two rounds, two values each; the second wasm round was hit by a slow spell of the machine.
    return {"native": {"nbody": [[0.20, 0.21], [0.22, 0.20]], "regex": [[0.10, 0.10], [0.11, 0.10]]},
            "wasm": {"nbody": [[0.40, 0.44], [0.90, 0.88]], "regex": [[0.15, 0.16], [0.15, 0.17]]}}


def test_a_workloads_ratio_is_the_median_of_its_rounds_fastest_values():
    result = bench.speed(raw_speed())
    nbody = result["workloads"]["nbody"]
    assert nbody["round_ratios"] == [2.0, 4.4]
    assert nbody["ratio"] == pytest.approx(3.2)  # the median of two rounds is their mean
    assert result["workloads"]["regex"]["ratio"] == pytest.approx(1.5)
    assert result["geometric_mean"] == pytest.approx(math.sqrt(3.2 * 1.5), abs=1e-4)
    assert nbody["native"]["values"] == 4 and nbody["wasm"]["min"] == 0.40


def test_the_raw_timings_are_written_in_pyperfs_format(tmp_path):
    suite = bench.suite_of(raw_speed()["wasm"], "wasm")
    suite.dump(str(tmp_path / "wasm.json"))
    loaded = pyperf.BenchmarkSuite.load(str(tmp_path / "wasm.json"))
    assert sorted(loaded.get_benchmark_names()) == ["nbody", "regex"]
    assert loaded.get_benchmark("nbody").get_values() == (0.40, 0.44, 0.90, 0.88)


def results(**overrides):
    base = {
        "artifact": "python-3.13.5-wasi_sdk-25-debian", "machine": {"cpu": "AMD EPYC", "cores": 2},
        "runtime": "wasmtime 50.0.1", "speed": bench.speed(raw_speed()),
        "startup": bench.startup({"processes": {
            "pass": {"native": [0.030, 0.031, 0.029], "wasm": [0.025, 0.027, 0.026]},
            "imports": {"native": [0.050, 0.051, 0.052], "wasm": [0.060, 0.062, 0.061]}}, "wasi": {
            "compile_seconds": 9.5, "first_run": [9.9], "cached": [0.2, 0.21], "precompiled": [0.045, 0.048],
            "precompiled_process": [0.2, 0.19]}}),
        "size": {"python_wasm_linked": 29_000_000, "python_wasm_shipped": 7_500_000, "python_wasm_stripped": 7_400_000,
                 "stdlib": 10_500_000,
                 "artifact_gzip": 6_200_000, "artifact_xz": 4_300_000, "debug_artifact_gzip": 12_000_000},
        "build": {"cold": {"host": {"phases": {"configure-host": 90, "make-host": 140}, "seconds": 230},
                           "package": None},
                  "noop_rebuild": {"seconds": 2.4, "phases": {}, "rebuilt": []}},
    }
    return {**base, **overrides}


def test_each_target_is_met_or_missed_by_its_measured_value():
    measured = bench.targets(results())
    assert {name: target["met"] for name, target in measured.items()} == {
        "slowdown": False, "startup": True, "distributable": True, "noop_rebuild": True,
        "build_time": False}  # n/a: the package stage has no timings in this store
    # Startup: wasm's whole process against native's, measured beside it (its median is the limit).
    assert measured["startup"]["value"] == pytest.approx(0.026) and measured["startup"]["limit"] == pytest.approx(0.030)
    slower = results(startup=bench.startup({"processes": {"pass": {"native": [0.020, 0.021], "wasm": [0.025, 0.026]},
                                                          "imports": {"native": [0.05], "wasm": [0.06]}}}))
    assert bench.targets(slower)["startup"]["met"] is False
    slow = results(build={"cold": {}, "noop_rebuild": {"seconds": 7.0, "phases": {}, "rebuilt": []}})
    assert bench.targets(slow)["noop_rebuild"]["met"] is False


def test_the_build_time_is_what_profile_guided_optimisation_adds_to_the_cold_build():
    images = {"image base": {"seconds": 10}, "image wasi-sdk-25-debian": None}  # the engine had the toolchain's
    timed = {"build-python": {"seconds": 100}, "host": {"seconds": 120}, "package": {"seconds": 20}}
    guided = {**timed, "profile-runtime": {"seconds": 5}, "host-instrumented": {"seconds": 150},
              "profile": {"seconds": 70}}
    measured = bench.targets(results(build={"images": images, "cold": guided, "noop_rebuild": {"seconds": 2.4},
                                            "profile_stages": ["profile-runtime", "host-instrumented", "profile"]}))
    assert measured["build_time"]["value"] == round(475 / 250, 3) and measured["build_time"]["met"] is True
    slow = {**guided, "profile": {"seconds": 300}}
    assert bench.targets(results(build={"cold": slow, "noop_rebuild": {"seconds": 2.4}, "profile_stages": [
        "profile-runtime", "host-instrumented", "profile"]}))["build_time"]["met"] is False
    unguided = bench.targets(results(build={"cold": timed, "noop_rebuild": {"seconds": 2.4}, "profile_stages": []}))
    assert unguided["build_time"]["value"] == 1.0
    # An image the engine already had is no part of this build's time; a stage this store did not time makes it n/a.
    reused = bench.targets(results(build={"images": {"image base": None}, "cold": guided, "noop_rebuild": {
        "seconds": 2.4}, "profile_stages": ["profile-runtime", "host-instrumented", "profile"]}))
    assert reused["build_time"]["value"] == round(465 / 240, 3)
    untimed = {**guided, "package": None}
    assert bench.targets(results(build={"images": images, "cold": untimed, "noop_rebuild": {"seconds": 2.4},
                                        "profile_stages": []}))["build_time"]["value"] is None


def test_startup_processes_have_a_median_and_a_spread():
    timing = bench.startup({"processes": {"pass": {"native": [0.04, 0.01, 0.03, 0.02, 0.05]}}})["processes"]["pass"]
    assert timing["native"] == {"median": 0.03, "min": 0.01, "runs": 5, "q1": 0.015, "q3": 0.045, "max": 0.05}
    single = bench.startup({"processes": {"pass": {"wasm": [0.02]}}})["processes"]["pass"]["wasm"]
    assert single["q1"] == single["median"] == single["q3"] == 0.02


def test_the_chart_is_a_png(tmp_path):
    chart = bench.draw({**results(), "targets": bench.targets(results())}, tmp_path / "chart.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 20_000
    assert not list(tmp_path.glob(".*")), "written through a temp file, renamed"


@pytest.mark.parametrize("value, unit, text", [(1.87, "x", "1.87x"), (0.0465, "s", "46 ms"), (2.4, "s", "2.40 s"),
                                               (4_300_000, "bytes", "4.30 MB"), (None, "s", "n/a")])
def test_values_are_shown_in_their_units(value, unit, text):
    assert bench.format_value(value, unit) == text


def test_the_no_op_rebuild_is_the_users_own_command():
    command = build_command({"python": "3.13.5", "sdk": 25, "provider": "debian", "target": "wasi", "mirror": ("/m",),
                             "configure_arg": ("--with-pymalloc",), "recipes": None, "build_dir": "/b"})
    assert command[1:] == ["-m", "invoke", "build", "--python", "3.13.5", "--sdk", "25", "--provider", "debian",
                           "--target", "wasi", "--mirror=/m", "--configure-arg=--with-pymalloc", "--build-dir", "/b"]


def test_every_workload_runs_and_checks_its_own_result():
    """Each workload verifies what it computed (richards its counts, fannkuch its flips): a broken one fails here."""
    for name in workloads.WORKLOADS:
        result = subprocess.run([sys.executable, "-c", (CONTAINER_SCRIPTS_DIR / "workloads.py").read_text(), name,
                                 "--values", "1", "--warmups", "0"], capture_output=True, text=True, check=True)
        measured = json.loads(result.stdout)
        assert measured["workload"] == name and len(measured["values"]) == 1 and measured["values"][0] > 0


def test_the_snapshot_has_its_own_startup_targets():
    """The snapshot flavour: `-c pass` within 10 ms, and the imports it made beforehand as quick as native's."""
    snapshot = results(flavour="snapshot", startup=bench.startup({"processes": {
        "pass": {"native": [0.018, 0.019], "wasm": [0.012, 0.013]},
        "imports": {"native": [0.080, 0.090], "wasm": [0.030, 0.031]}}}))
    measured = bench.targets(snapshot)
    assert measured["startup"]["limit"] == 0.010 and measured["startup"]["met"] is False
    assert measured["startup_imports"]["limit"] == pytest.approx(0.085) and measured["startup_imports"]["met"] is True
    assert "startup_imports" not in bench.targets(results())


def wasi_build():
    return SimpleNamespace(target=Wasi(), plan=Recipes().resolve("3.13.5", "25", "debian", "wasi"))


def test_the_default_runtime_always_runs_first_and_all_adds_every_other():
    build = wasi_build()
    names = lambda chosen: [runtime.name for runtime in chosen]  # noqa: E731
    assert names(bench.chosen_runtimes(build, [])) == ["wasmtime"]
    assert names(bench.chosen_runtimes(build, ["wasmtime-py", "wasmtime", "wasmtime-py"])) == ["wasmtime", "wasmtime-py"]
    assert names(bench.chosen_runtimes(build, ["all"])) == ["wasmtime", "wasmtime-inlining", "wasmtime-winch",
                                                            "wasmtime-py", "node", "node-turbofan"]


@given(st.text(max_size=40).filter(lambda name: name not in {"all", "wasmtime", "wasmtime-inlining", "wasmtime-winch",
                                                               "wasmtime-py", "node", "node-turbofan"}))
@settings(max_examples=200, deadline=None)
def test_any_other_runtime_name_is_refused_in_one_paragraph_naming_the_runtimes(name):
    with pytest.raises(UserError) as refused:
        bench.chosen_runtimes(wasi_build(), ["wasmtime", name])
    message = str(refused.value)
    assert message.startswith(f"--runtime {name!r}: ") and "\n" not in message.replace(name, "").replace(repr(name), "")
    assert "wasmtime-inlining, wasmtime-winch, wasmtime-py, node, node-turbofan" in message


def test_each_runtime_is_compared_with_native_from_the_same_interleaved_run():
    build = wasi_build()
    chosen = bench.chosen_runtimes(build, ["wasmtime-winch"])
    raw = {"speed": {**raw_speed(), "wasmtime-winch": {"nbody": [[0.80, 0.84], [0.88, 0.90]],
                                                       "regex": [[0.30, 0.32], [0.31, 0.30]]}},
           "startup": {"processes": {"pass": {"native": [0.01, 0.012], "wasm": [0.02, 0.022],
                                              "wasmtime-winch": [0.015, 0.016]}}}}
    table = bench.runtime_table(chosen, raw)
    assert list(table) == ["wasmtime", "wasmtime-winch"] and table["wasmtime"]["default"]
    assert table["wasmtime"]["slowdown"] == bench.speed(raw["speed"])["geometric_mean"]
    winch = table["wasmtime-winch"]
    assert winch["ratios"] == {"nbody": pytest.approx(4.2), "regex": pytest.approx(3.0)}
    assert winch["slowdown"] == pytest.approx(math.sqrt(4.2 * 3.0), abs=1e-4)
    assert winch["worst"] == {"workload": "nbody", "ratio": pytest.approx(4.2)}
    assert winch["startup"]["median"] == pytest.approx(0.0155) and not winch["default"]


def test_the_chart_shows_the_other_runtimes(tmp_path):
    chosen = bench.chosen_runtimes(wasi_build(), ["wasmtime-py"])
    raw = {"speed": {**raw_speed(), "wasmtime-py": raw_speed()["wasm"]},
           "startup": {"processes": {"pass": {"native": [0.01], "wasm": [0.02], "wasmtime-py": [0.2]}}}}
    table = bench.runtime_table(chosen, raw)
    chart = bench.draw({**results(runtimes=table), "targets": bench.targets(results())}, tmp_path / "chart.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
