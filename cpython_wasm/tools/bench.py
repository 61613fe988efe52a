"""Benchmarks: how fast, how quick to start, how small and how quick to build an artifact is.

    invoke bench --python 3.13.5 --sdk 25 --provider debian [--rounds N] [--values N] [--check]

Everything is measured in one go, on this machine, against the native build
python of the same release built from the same source (CPython's default
flags: -O3, no LTO, no PGO), and written to

    bench/results/<artifact>.json      every measurement, the statistics, the machine, the targets
    bench/results/<artifact>.png       the same at a glance
    bench/results/<artifact>.pyperf/   native.json and wasm.json in pyperf's format
                                       (`python -m pyperf compare_to native.json wasm.json`)

Speed: the workloads of workloads.py, timed inside each interpreter, the
interpreters interleaved round by round inside the toolchain container (see
bench_runner.py). A round's ratio is the wasm process's fastest value over
the native process's fastest value; a workload's ratio is the median of its
rounds, so a slow spell of a shared machine spoils one round, not the
result; the slowdown is the geometric mean of the workloads' ratios.
Startup, size and build times: see `startup`, `sizes` and `build_times`.
"""

import gzip
import io
import json
import lzma
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyperf

from cpython_wasm.build import Build, BuildResult
from cpython_wasm.container.wasm import strip_debug_info
from cpython_wasm.container.workloads import WORKLOADS
from cpython_wasm.errors import BuildError, UserError
from cpython_wasm.files import write_atomically
from cpython_wasm.inputs import tools
from cpython_wasm.inputs.archives import safe_extract
from cpython_wasm.paths import CONTAINER_SCRIPTS_DIR, CONTAINER_SOURCE, CONTAINER_TOOLS, PACKAGE_DIR, PROJECT_ROOT, display_path
from cpython_wasm.recipes.artifacts import debug_artifact_name
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.stages.executor import Bind
from cpython_wasm.stages.images import image_log_dir, rootfs_log_dir
from cpython_wasm.stages.store import read_timings
from cpython_wasm.targets import pgo
from cpython_wasm.targets.target import Runtime

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
WORK = "/bench"  # the benchmark's writable directory inside the container
# The runner and what it imports, side by side in the container (bench_runner.py puts its directory first).
RUNNER_FILES = (CONTAINER_SCRIPTS_DIR / "bench_runner.py", CONTAINER_SCRIPTS_DIR / "workloads.py", PACKAGE_DIR / "runtime.py")

NATIVE = "native"  # a limit that is native's own value, measured in the same run
WASM = "wasm"  # the default runtime's name in the runner's configuration and the results
ALL_RUNTIMES = "all"  # --runtime all: every runtime of the target
# name: (what is measured, the limit, its unit); each is met when the measured value is at most the limit.
TARGETS = {
    "slowdown": ("geometric-mean time of the workloads, wasm over native", 1.5, "x"),
    "startup": ("whole process, `-c pass`, precompiled (median), against native's whole process beside it", NATIVE, "s"),
    "distributable": ("the artifact (stripped python.wasm, compiled stdlib) compressed with xz", 4.5e6, "bytes"),
    "noop_rebuild": ("`invoke build` again with nothing changed", 5.0, "s"),
    "build_time": ("the cold build (every stage, and the images this store built) over the same without the stages "
                   "that make a profile-guided build's profile (targets/pgo.py)", 2.0, "x"),
}
# A flavour's own targets, in place of or beside those (the snapshot: recipes/flavours/snapshot.toml).
FLAVOUR_TARGETS = {
    "snapshot": {
        "startup": ("whole process, `-c pass`, precompiled (median)", 0.010, "s"),
        "startup_imports": ("whole process, `-c \"import json, re, asyncio\"`, precompiled (median), against "
                            "native's whole process beside it", NATIVE, "s"),
    },
    "minimal": {
        "distributable": ("the artifact (stripped python.wasm, compiled stdlib) compressed with xz", 2.0e6, "bytes"),
    },
}
# The modules the `imports` startup script imports: those of them an artifact ships (a flavour's stdlib may not
# hold asyncio).
STARTUP_IMPORTS = ("json", "re", "asyncio")


def startup_scripts(plan) -> dict[str, str]:
    """What a startup process runs, by the name the results give it."""
    stdlib = plan.flavour.stdlib if plan.flavour else None
    imports = [module for module in STARTUP_IMPORTS if stdlib is None or module in stdlib]
    return {"pass": "pass", "imports": f"import {', '.join(imports)}"}


def chosen_runtimes(build: Build, names: list[str]) -> list[Runtime]:
    """The target's default runtime, then those of `names` (`all`: every one); a name the target has not is refused."""
    runtimes = build.target.bench_runtimes(build.plan, WORK)
    unknown = sorted(set(names) - {*runtimes, ALL_RUNTIMES})
    if unknown:
        raise UserError(f"--runtime {unknown[0]!r}: {build.target.title} artifacts are benchmarked under these runtimes "
                        f"only: {', '.join(runtimes)} (or `{ALL_RUNTIMES}` for every one; the first is the default, "
                        f"always measured). Give one of those names, or leave --runtime out.")
    default, *others = runtimes
    wanted = set(others) if ALL_RUNTIMES in names else set(names)
    return [runtimes[default], *(runtimes[name] for name in others if name in wanted)]


def config(build: Build, runtimes: list[Runtime], rounds: int, values: int, warmups: int, startup_runs: int) -> dict:
    """What bench_runner.py runs: the interpreters' command lines inside the container; the default runtime's is
    `wasm`, the others' are their names."""
    # Native startup as an installed CPython starts: frozen modules on (a build tree's python has them off)
    # and the standard library's .pyc written once (the source is read-only here).
    native_startup = ["env", f"PYTHONPYCACHEPREFIX={WORK}/pycache", build.driver.build_python, "-X", "frozen_modules=on"]
    default, *others = runtimes
    return {"workloads": list(WORKLOADS), "processes": rounds, "values": values, "warmups": warmups,
            "startup_runs": startup_runs, "startup_scripts": startup_scripts(build.plan),
            "interpreters": {"native": [build.driver.build_python], WASM: list(default.command),
                             **{runtime.name: list(runtime.command) for runtime in others}},
            "native_startup": native_startup, **build.target.bench_config(build.plan, WORK)}


class Bench:
    """One benchmark run of one artifact; each method is one part of it."""

    def __init__(self, build: Build, recipes: Recipes, rebuild_command: list[str], rounds: int = 7, values: int = 5,
                 warmups: int = 1, startup_runs: int = 20, results_dir: Path = RESULTS_DIR, runtimes: list[str] = ()):
        self.build, self.plan, self.recipes = build, build.plan, recipes
        self.runtimes = chosen_runtimes(build, list(runtimes))  # before anything is built: a bad name costs nothing
        self.rebuild_command = rebuild_command
        self.settings = {"rounds": rounds, "values": values, "warmups": warmups, "startup_runs": startup_runs}
        self.results_dir = results_dir
        self.work = build.workspace.build_dir / "bench" / self.plan.artifact_name

    def run(self) -> dict:
        result = self.build.run()  # a no-op when it is built
        reporter = self.build.reporter
        raw, runner_config = self.measure(result)
        with reporter.phase("bench: no-op rebuild", shlex.join(self.rebuild_command[1:4])) as phase:
            noop = self.noop_rebuild()
            phase.outcome = f"{noop['seconds']:.2f} s"
        results = {
            "artifact": self.plan.artifact_name,
            "flavour": self.plan.flavour_name,
            "artifact_sha256": result.lock["outputs"][result.artifact.name]["sha256"],
            "machine": machine(),
            "settings": self.settings,
            "runtime": self.build.target.runtime_version(self.plan),
            "native": "the build python of the same release and source (CPython's default flags: -O3, no LTO, no PGO)",
            "speed": speed(raw["speed"]),
            "runtimes": runtime_table(self.runtimes, raw),
            "startup": {"scripts": runner_config["startup_scripts"], **startup(raw["startup"])},
            "size": sizes(result, self.linked().path, self.build.products().package.path),
            "build": build_times(self.build, noop),
        }
        results["targets"] = targets(results)
        self.publish(results, raw)
        return results

    def linked(self):
        """The product with the python.wasm the artifact ships, as linked: a flavour's or a custom interpreter's
        own stage, else the host stage."""
        by_key = self.build.products().by_key
        return by_key.get("snapshot") or by_key.get("interpreter") or by_key["host"]

    def measure(self, result: BuildResult) -> tuple[dict, dict]:
        """The runner, in the toolchain image: raw timings of speed and startup, and the configuration it ran."""
        if self.work.exists():
            shutil.rmtree(self.work)
        safe_extract(result.artifact, self.work / "artifact", strip_components=1)
        runner_config = config(self.build, self.runtimes, self.settings["rounds"], self.settings["values"],
                               self.settings["warmups"], self.settings["startup_runs"])
        (self.work / "config.json").write_text(json.dumps(runner_config, indent=1))
        build, products = self.build, self.build.products()
        driver = build.driver
        binds = [Bind(products.source.path, CONTAINER_SOURCE),
                 Bind(products.build_python.path, driver.path(driver.build_python_dir)),
                 Bind(self.work, WORK, writable=True),
                 *(Bind(path, f"{CONTAINER_TOOLS}/{path.name}")
                   for path in dict.fromkeys((*RUNNER_FILES, *(file for runtime in self.runtimes for file in runtime.files)))),
                 *(Bind(tool.host, tool.container) for tool in build.target.runner_inputs(build)),
                 *self.mounted_tools()]
        command = build.target.prepared_command(
            ["python3", f"{CONTAINER_TOOLS}/bench_runner.py", f"{WORK}/config.json", f"{WORK}/raw.json"], self.runtimes)
        rounds, names = self.settings["rounds"], ", ".join(runtime.name for runtime in self.runtimes)
        with build.reporter.phase("bench: speed and startup", f"{len(WORKLOADS)} workloads × {rounds} rounds, "
                                  f"native and {names} interleaved") as phase:
            build.executor.run_phase(build.stage_images()[1].id, "bench", command, binds, {"HOME": WORK},
                      build.workspace.logs_dir / "bench" / f"{self.plan.artifact_name}.log", workdir=WORK)
            raw = json.loads((self.work / "raw.json").read_text())
            phase.outcome = f"geometric mean {speed(raw['speed'])['geometric_mean']:.2f}x native"
        return raw, runner_config

    def mounted_tools(self) -> list[Bind]:
        """The pinned tools the chosen runtimes run with (Node), taken out into the store now: a bench without
        them fetches none."""
        names = sorted({name for runtime in self.runtimes for name in runtime.tools})
        return [Bind(tools.realise_tool(self.build, name, *self.recipes.tool(name)), tools.mounted(name))
                for name in names]

    def noop_rebuild(self) -> dict:
        """`invoke build` with the same options, nothing changed: every phase finds its product."""
        start = time.monotonic()
        result = subprocess.run(self.rebuild_command, capture_output=True, text=True, cwd=PROJECT_ROOT)
        seconds = time.monotonic() - start
        if result.returncode != 0:
            raise BuildError(f"The no-op rebuild ({' '.join(self.rebuild_command)}) failed with status "
                             f"{result.returncode}:\n{result.stderr[-3000:]}")
        phases = read_timings(self.build.workspace.logs_dir / "builds" / self.plan.artifact_name) or {}
        return {"seconds": round(seconds, 2), "phases": phases.get("phases", {}),
                "rebuilt": [line for line in result.stderr.splitlines() if line.startswith("✓") and "reused" not in line
                            and ": " in line and line.split(" ")[1] in ("build-python:", "host:", "package")]}

    def publish(self, results: dict, raw: dict) -> None:
        name = self.plan.artifact_name
        self.results_dir.mkdir(parents=True, exist_ok=True)
        path = write_atomically(self.results_dir / f"{name}.json",
                                (json.dumps(results, indent=1) + "\n").encode())
        pyperf_dir = self.results_dir / f"{name}.pyperf"
        pyperf_dir.mkdir(exist_ok=True)
        for interpreter, timings in raw["speed"].items():
            suite_of(timings, interpreter).dump(str(pyperf_dir / f"{interpreter}.json"), replace=True)
        chart = draw(results, self.results_dir / f"{name}.png")
        reporter = self.build.reporter
        for key, target in results["targets"].items():
            verdict = "[green]met[/]" if target["met"] else "[bold red]missed[/]"
            reporter.info(f"  {key:<14} {format_value(target['value'], target['unit']):>12}  "
                          f"(target ≤ {format_value(target['limit'], target['unit'])})  {verdict}")
        reporter.info(f"results   {display_path(path)}")
        reporter.info(f"chart     {display_path(chart)}")


# -- statistics -------------------------------------------------------------------


def speed(raw: dict, interpreter: str = WASM) -> dict:
    """Per workload: native's and the interpreter's timings (pyperf's statistics), the rounds' ratios and their
    median."""
    workloads = {}
    for workload in raw[NATIVE]:
        native, wasm = raw[NATIVE][workload], raw[interpreter][workload]
        ratios = [min(w) / min(n) for n, w in zip(native, wasm, strict=True)]
        workloads[workload] = {
            "native": describe(native, workload), "wasm": describe(wasm, workload),
            "round_ratios": [round(ratio, 4) for ratio in ratios], "ratio": round(statistics.median(ratios), 4),
        }
    ratios = [entry["ratio"] for entry in workloads.values()]
    return {"workloads": workloads, "geometric_mean": round(statistics.geometric_mean(ratios), 4)}


def benchmark_of(processes: list[list[float]], name: str) -> pyperf.Benchmark:
    return pyperf.Benchmark([pyperf.Run(values, metadata={"name": name, "unit": "second"}, collect_metadata=False)
                             for values in processes])


def suite_of(raw: dict, interpreter: str) -> pyperf.BenchmarkSuite:
    return pyperf.BenchmarkSuite([benchmark_of(processes, workload) for workload, processes in raw.items()])


def describe(processes: list[list[float]], name: str) -> dict:
    benchmark = benchmark_of(processes, name)
    return {"median": round(benchmark.median(), 5), "mean": round(benchmark.mean(), 5),
            "stdev": round(benchmark.stdev(), 5) if benchmark.get_nvalue() > 1 else 0.0,
            "min": round(min(min(values) for values in processes), 5), "values": benchmark.get_nvalue()}


def runtime_table(runtimes: list[Runtime], raw: dict) -> dict:
    """Each runtime measured, by name, the default first: what it is, its slowdown over native (the geometric mean,
    and its slowest workload) and its whole-process startup (`-c pass`, median), all from the same interleaved run."""
    table = {}
    for index, runtime in enumerate(runtimes):
        measured_as = WASM if index == 0 else runtime.name  # the runner's name for it (config)
        measured = speed(raw["speed"], measured_as)
        worst = max(measured["workloads"], key=lambda workload: measured["workloads"][workload]["ratio"])
        table[runtime.name] = {
            "description": runtime.description, "default": index == 0,
            "slowdown": measured["geometric_mean"],
            "worst": {"workload": worst, "ratio": measured["workloads"][worst]["ratio"]},
            "ratios": {workload: entry["ratio"] for workload, entry in measured["workloads"].items()},
            "startup": _spread(raw["startup"]["processes"]["pass"][measured_as]),
        }
    return table


def _seconds(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4), "runs": len(values)}


def _spread(values: list[float]) -> dict:
    """The median and the spread of whole-process timings: quartiles and extremes."""
    first, _, third = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
    return {**_seconds(values), "q1": round(first, 4), "q3": round(third, 4), "max": round(max(values), 4)}


def startup(raw: dict) -> dict:
    """Whole processes, native and wasm side by side, of each startup script (startup_scripts); for
    WASI also `-c pass` in process, compiling, cached and precompiled, and the whole process of our runner."""
    result = {"processes": {script: {name: _spread(values) for name, values in timings.items()}
                            for script, timings in raw["processes"].items()}}
    if "wasi" in raw:
        wasi = raw["wasi"]
        result.update({
            "compile_seconds": round(wasi["compile_seconds"], 3),
            "first_run": _seconds(wasi["first_run"]),
            "cached": _seconds(wasi["cached"]),
            "precompiled": _seconds(wasi["precompiled"]),
            "precompiled_process": _seconds(wasi["precompiled_process"]),
        })
    return result


def xz_size(path: Path) -> int:
    """Size of the gzipped tarball's contents recompressed with xz -9e (how it would ship as .tar.xz)."""
    compressor, size = lzma.LZMACompressor(preset=9 | lzma.PRESET_EXTREME), 0
    with gzip.open(path, "rb") as tar:
        while chunk := tar.read(1 << 20):
            size += len(compressor.compress(chunk))
    return size + len(compressor.flush())


def sizes(result: BuildResult, host: Path, package: Path) -> dict:
    """python.wasm as linked (with DWARF) and as shipped, the standard library, the artifact compressed."""
    outputs = result.lock["outputs"]
    built = host / "python.wasm"
    files = json.loads((package / "manifest.json").read_text())["files"]
    sizes_ = {
        "python_wasm_linked": built.stat().st_size,
        "python_wasm_shipped": outputs["python.wasm"]["size"],
        "python_wasm_stripped": len(strip_debug_info(built.read_bytes())[0]),
        # The standard library as shipped (WASI: compiled .pyc; Emscripten: python.data, zipped).
        "stdlib": sum(entry["size"] for name, entry in files.items() if name.startswith("lib/") or name == "python.data"),
        "artifact_gzip": outputs[result.artifact.name]["size"],
        "artifact_xz": xz_size(result.artifact),
    }
    debug = result.artifact.with_name(debug_artifact_name(result.artifact.name))
    if debug.is_file():
        sizes_["debug_artifact_gzip"] = debug.stat().st_size
    return sizes_


def build_times(build: Build, noop: dict) -> dict:
    """How long each stage took when this store built it (cold), and in the no-op rebuild (warm). Images apart: an
    engine that already had them (another store's, or imported) built none for this store, which then has no timings
    of them."""
    store, plan = build.store, build.plan
    build.products()
    images = {
        "image base": rootfs_log_dir(store, plan),
        f"image {build.native.name}": image_log_dir(store, build.native),
        f"image {build.toolchain.name}": image_log_dir(store, build.toolchain),
    }
    # Every stage, those a later build found unneeded too (a profile-guided build's, once its profile is made).
    stages = {key: store.log_dir(stage) for key, stage in build.stages().by_key().items()}
    cold = {stage: read_timings(directory) for stage, directory in stages.items()}
    return {"images": {image: read_timings(directory) for image, directory in images.items()}, "cold": cold,
            "noop_rebuild": noop, "profile_stages": [key for key in PROFILE_STAGES if key in cold]}


PROFILE_STAGES = (*pgo.MADE_FOR_THE_PROFILE, pgo.PROFILE_KEY)


def build_time_ratio(build_results: dict) -> float | None:
    """The cold build over the same without the stages that make the profile (1.0 for a build not guided); None where
    this store has not timed every stage (one built before timings were kept). The images count where this store
    built them; where the engine had them already they cost this build nothing, with the profile or without."""
    cold = build_results["cold"]
    if not cold or any(timing is None for timing in cold.values()):
        return None
    images = [timing for timing in build_results.get("images", {}).values() if timing is not None]
    total = sum(timing["seconds"] for timing in (*cold.values(), *images))
    profile = sum(cold[key]["seconds"] for key in build_results.get("profile_stages", ()))
    return round(total / (total - profile), 3) if total > profile else None


def targets(results: dict) -> dict:
    processes = results["startup"]["processes"]
    measured = {
        "slowdown": results["speed"]["geometric_mean"],
        "startup": processes["pass"]["wasm"]["median"],
        "startup_imports": processes["imports"]["wasm"]["median"],
        "distributable": results["size"]["artifact_xz"],
        "noop_rebuild": results["build"]["noop_rebuild"]["seconds"],
        "build_time": build_time_ratio(results["build"]),
    }
    natives = {"startup": processes["pass"]["native"]["median"], "startup_imports": processes["imports"]["native"]["median"]}
    chosen = {**TARGETS, **FLAVOUR_TARGETS.get(results.get("flavour"), {})}
    limits = {key: natives[key] if limit == NATIVE else limit for key, (_, limit, _) in chosen.items()}
    return {key: {"what": what, "value": measured[key], "limit": limits[key], "unit": unit,
                  "met": measured[key] is not None and measured[key] <= limits[key]}
            for key, (what, _, unit) in chosen.items()}


def format_value(value, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "bytes":
        return f"{value / 1e6:.2f} MB"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    return f"{value:.2f}{unit}"


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    memory = next((int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), None) if Path("/proc/meminfo").exists() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_bytes": memory, "system": platform.platform(),
            "python": sys.version.split()[0]}


# -- the chart -----------------------------------------------------------------------


def draw(results: dict, path: Path) -> Path:
    """Four panels: speed per workload, startup, sizes, build time per stage."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, ((speed_ax, startup_ax), (size_ax, build_ax)) = plt.subplots(2, 2, figsize=(14, 9))
    figure.suptitle(f"{results['artifact']} on {results['machine']['cpu']} ({results['machine']['cores']} cores), "
                    f"{results['runtime']}", fontsize=12)

    workloads = results["speed"]["workloads"]
    names = list(workloads)
    speed_ax.barh(names, [workloads[name]["ratio"] for name in names], color="#4c72b0")
    speed_ax.axvline(1, color="black", linewidth=0.8)
    speed_ax.axvline(TARGETS["slowdown"][1], color="#c44e52", linestyle="--", label=f"target {TARGETS['slowdown'][1]}x")
    speed_ax.axvline(results["speed"]["geometric_mean"], color="#55a868",
                     label=f"geometric mean {results['speed']['geometric_mean']:.2f}x")
    for name, runtime in results.get("runtimes", {}).items():
        if not runtime["default"]:
            speed_ax.axvline(runtime["slowdown"], color="#8c8c8c", linestyle=":",
                             label=f"{name}: geometric mean {runtime['slowdown']:.2f}x")
    speed_ax.invert_yaxis()
    speed_ax.set_xlabel("time relative to native CPython (lower is better)")
    speed_ax.set_title("Interpreter speed")
    speed_ax.legend(loc="lower right")

    start = results["startup"]
    labels, values = [], []
    for script, timings in start["processes"].items():
        for name, timing in timings.items():
            labels.append(f"{name} process, {script}")
            values.append(timing["median"])
    for key, label in (("first_run", "wasm in process, compiling"), ("cached", "wasm in process, cached"),
                       ("precompiled", "wasm in process, precompiled"),
                       ("precompiled_process", "wasm, precompiled,\nwhole Python runner")):
        if key in start:
            labels.append(label)
            values.append(start[key]["median"])
    startup_ax.barh(labels, [value * 1000 for value in values], color="#8172b2")
    startup_ax.set_xscale("log")
    limit = results["targets"]["startup"]["limit"]
    startup_ax.axvline(limit * 1000, color="#c44e52", linestyle="--", label=f"target {limit * 1000:.0f} ms")
    startup_ax.invert_yaxis()
    startup_ax.set_xlabel("milliseconds (log scale)")
    startup_ax.set_title("Startup")
    startup_ax.legend(loc="lower right")

    size = results["size"]
    size_labels = {"python_wasm_linked": "python.wasm as linked", "python_wasm_shipped": "python.wasm shipped",
                   "stdlib": "standard library shipped",
                   "artifact_gzip": "artifact .tar.gz", "artifact_xz": "artifact as .tar.xz",
                   "debug_artifact_gzip": "debug info .tar.gz"}
    keys = [key for key in size_labels if key in size]
    size_ax.barh([size_labels[key] for key in keys], [size[key] / 1e6 for key in keys], color="#dd8452")
    size_ax.axvline(TARGETS["distributable"][1] / 1e6, color="#c44e52", linestyle="--", label="target 4.5 MB")
    size_ax.invert_yaxis()
    size_ax.set_xlabel("MB")
    size_ax.set_title("Size")
    size_ax.legend(loc="lower right")

    built = {**results["build"].get("images", {}), **results["build"]["cold"]}
    cold = {stage: timing["seconds"] for stage, timing in built.items() if timing}
    warm = results["build"]["noop_rebuild"]
    stages = list(cold)
    build_ax.barh(stages, [cold[stage] for stage in stages], color="#937860", label="cold (built)")
    build_ax.invert_yaxis()
    build_ax.set_xlabel("seconds")
    build_ax.set_title(f"Build time per stage; no-op rebuild {warm['seconds']:.1f} s")
    build_ax.legend(loc="lower right")

    figure.tight_layout()
    chart = io.BytesIO()
    figure.savefig(chart, dpi=100, format="png", metadata={"Software": None})
    plt.close(figure)
    return write_atomically(path, chart.getvalue())
