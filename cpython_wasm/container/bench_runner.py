#!/usr/bin/env python3
"""The measuring half of `invoke bench`: runs inside the toolchain container, without network.

Standard library only (it runs under the image's python3; for WASI artifacts
it also imports runtime.py, mounted beside it, and the image's wasmtime).
It reads a JSON configuration and writes raw timings as JSON; statistics,
targets and the chart are made on the host (bench.py).

Speed: each workload of workloads.py runs in one process per interpreter and
round, the interpreters interleaved and their order alternating between rounds,
so that a machine that slows down or speeds up during the run affects both
sides alike. Each process prints its own in-process timings.

Startup, timed from outside the interpreter, as users start it: whole
processes of `-c pass` and of `-c "import json, re, asyncio"`, native and
each wasm runtime interleaved run by run (their order alternating). The
interpreters are native, `wasm` (the target's default runtime) and any other
runtime chosen with `invoke bench --runtime`, by its name. Natively, started as
an installed CPython starts (frozen modules, the standard library's .pyc
already written); for WASI, `wasmtime run` of the wasmtime CLI on the
precompiled module; for Emscripten, `node python.js`. For WASI also, in this
process through wasmtime's library, as an embedder runs it: the first run
compiles the module, a warm run finds it in wasmtime's cache, a precompiled
run maps a `.cwasm` and compiles nothing; and for comparison the whole
`wasmtime run` process of our Python runner (which pays for starting a host
Python first).

    python3 bench_runner.py CONFIG.json OUTPUT.json
"""

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_workload(command: list[str], source: str, workload: str, values: int, warmups: int) -> dict:
    """One process of `command` running one workload; its timings."""
    argv = [*command, "-c", source, workload, "--values", str(values), "--warmups", str(warmups)]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{workload} failed under {command[0]} (exit status {result.returncode}):\n"
                         f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def speed(config: dict) -> dict:
    """{interpreter: {workload: [[values of one process], ...]}}, interleaved."""
    source = (HERE / "workloads.py").read_text(encoding="utf-8")
    interpreters = config["interpreters"]
    names = list(interpreters)
    results = {name: {workload: [] for workload in config["workloads"]} for name in names}
    for round_ in range(config["processes"]):
        order = names if round_ % 2 == 0 else names[::-1]
        for workload in config["workloads"]:
            for name in order:
                measured = run_workload(interpreters[name], source, workload, config["values"], config["warmups"])
                results[name][workload].append(measured["values"])
        print(f"speed: round {round_ + 1} of {config['processes']} done", file=sys.stderr, flush=True)
    return results


def process_time(command: list[str], source: str) -> float:
    """Wall time of one whole `command -c source` process."""
    start = time.perf_counter()
    subprocess.run([*command, "-c", source], check=True, capture_output=True)
    return time.perf_counter() - start


def process_seconds(command: list[str], runs: int) -> list[float]:
    """Wall time of whole `command -c pass` processes (after one unmeasured run that warms caches)."""
    return [process_time(command, "pass") for _ in range(runs + 1)][1:]


def startup_processes(commands: dict[str, list[str]], scripts: dict[str, str], runs: int) -> dict:
    """{script: {interpreter: [seconds]}}: whole processes of each startup script (by name, its source), the
    interpreters interleaved run by run, their order alternating, after one unmeasured round that warms caches
    (and writes native's .pyc)."""
    names = list(commands)
    results = {script: {name: [] for name in names} for script in scripts}
    for index in range(runs + 1):
        for script, source in scripts.items():
            for name in names if index % 2 == 0 else names[::-1]:
                seconds = process_time(commands[name], source)
                if index:
                    results[script][name].append(seconds)
    return results


def wasi_startup(config: dict, work: Path) -> dict:
    """In-process startup of python.wasm: compiling, from wasmtime's cache, and precompiled."""
    sys.path.insert(0, str(HERE))
    import runtime  # noqa: PLC0415  (runtime.py beside this file; needs the image's wasmtime)

    wasi = config["wasi"]
    module, runs = wasi["module"], config["startup_runs"]
    arguments = {"dirs": [tuple(pair) for pair in wasi["dirs"]], "env": wasi["env"],
                 "stdout": str(work / "startup.out"), "stderr": str(work / "startup.err")}

    def timed(path, **options) -> float:
        start = time.perf_counter()
        status = runtime.run_wasi(path, ["-c", "pass"], **arguments, **options)
        elapsed = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"python.wasm -c pass exited {status}: {(work / 'startup.err').read_text()[-2000:]}")
        return elapsed

    precompiled = str(work / "python.wasmtime-py.cwasm")  # python.cwasm is the CLI's: each loads only its own
    start = time.perf_counter()
    runtime.compile_module(module, precompiled)
    compile_seconds = time.perf_counter() - start
    return {
        "compile_seconds": compile_seconds,
        "first_run": [timed(module, cache=False)],  # Cranelift compiles all of python.wasm, then it runs
        "cached": [timed(module, cache=True) for _ in range(runs + 1)][1:],  # the first fills the cache
        "precompiled": [timed(precompiled, allow_precompiled=True) for _ in range(runs)],
        "precompiled_process": process_seconds(
            [sys.executable, str(HERE / "runtime.py"), "run", "--allow-precompiled", *wasi["runner_options"], precompiled],
            runs),
    }


def main(argv=None) -> int:
    config_path, output_path = (argv or sys.argv[1:])[:2]
    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    work = Path(output_path).parent
    results = {"speed": speed(config), "startup": {}}
    commands = {**config["interpreters"], "native": config["native_startup"]}
    results["startup"]["processes"] = startup_processes(commands, config["startup_scripts"], config["startup_runs"])
    print("startup: whole processes done", file=sys.stderr, flush=True)
    if "wasi" in config:
        results["startup"]["wasi"] = wasi_startup(config, work)
    Path(output_path).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
