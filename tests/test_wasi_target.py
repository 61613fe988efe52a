"""The WASI target runs python.wasm with the wasmtime CLI its toolchain image installs, wherever it runs it."""

import json
import shlex
import subprocess
import tomllib
from pathlib import Path
from types import SimpleNamespace

from cpython_wasm.inputs import tools
from cpython_wasm.inputs.tools import WASMTIME_CLI
from cpython_wasm.paths import CONTAINER_TOOLS
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.targets.target import NODE_SETTINGS, Target
from cpython_wasm.targets.wasi import WASMTIME_SETTINGS, Wasi, wasmtime_cli_runtime, wasmtime_invocation
from cpython_wasm.tools.smoke import image_runner

WASI = Wasi()


def test_the_cli_is_the_images_own_not_a_mounted_file():
    assert WASMTIME_CLI == "/usr/local/bin/wasmtime"  # installed by containers/wasi-sdk-common.Dockerfile.j2
    assert WASI.runner_inputs(SimpleNamespace(plan=None)) == ()
    assert wasmtime_cli_runtime("wasmtime", "/w").command[:2] == (WASMTIME_CLI, "run")


def test_each_cli_runtime_runs_the_module_it_precompiled_with_the_same_codegen_settings():
    plan = Recipes().resolve("3.13.5", "25", "debian", "wasi")
    runtimes = WASI.bench_runtimes(plan, "/w")
    assert list(runtimes)[0] == "wasmtime" and set(runtimes) == {*WASMTIME_SETTINGS, "wasmtime-py", *NODE_SETTINGS}
    for name in WASMTIME_SETTINGS:
        runtime = runtimes[name]
        compile_ = shlex.split(runtime.prepare)
        assert compile_[:2] == [WASMTIME_CLI, "compile"] and compile_[-3:] == ["/w/artifact/python.wasm", "-o",
                                                                               f"/w/{name}.cwasm"]
        codegen = list(WASMTIME_SETTINGS[name][1])
        assert compile_[2:-3] == codegen
        assert list(runtime.command[2:2 + len(codegen)]) == codegen and runtime.command[-1] == f"/w/{name}.cwasm"
        assert "--allow-precompiled" in runtime.command
    embedding = runtimes["wasmtime-py"]
    assert embedding.command[:3] == ("python3", f"{CONTAINER_TOOLS}/runtime.py", "run")
    assert shlex.split(embedding.prepare)[-1] == embedding.command[-1] == "/w/wasmtime-py.cwasm"
    assert plan.wasmtime.version in embedding.description
    assert all(runtime.tools == () for name, runtime in runtimes.items() if name not in NODE_SETTINGS)


def test_node_runs_the_module_through_its_wasi_with_the_guest_options_of_the_wasmtime_runtimes():
    runtimes = WASI.bench_runtimes(Recipes().resolve("3.13.5", "25", "debian", "wasi"), "/w")
    cli = runtimes["wasmtime"].command
    guest = cli[cli.index("--dir"):-1]  # what the guest sees: its /, its environment, its argv[0]
    for name, (_, options) in NODE_SETTINGS.items():
        runtime = runtimes[name]
        assert runtime.tools == ("node",) and runtime.command[0] == tools.mounted("node") == "/opt/tools/node"
        assert runtime.command[1:1 + len(options)] == options and runtime.prepare == ""
        assert [file.name for file in runtime.files] == ["wasi_node.mjs"] and runtime.files[0].is_file()
        script = runtime.command.index(f"{CONTAINER_TOOLS}/wasi_node.mjs")
        assert runtime.command[script + 1:] == (*guest, "/w/artifact/python.wasm")
    assert "--no-liftoff" not in runtimes["node"].command and "--no-liftoff" in runtimes["node-turbofan"].command


def test_the_regrtest_workers_are_the_default_cli_runtime_with_the_lines_stack(tmp_path):
    worker = wasmtime_cli_runtime("wasmtime", "/w", 16 << 20)
    assert worker.command[2:6] == ("--allow-precompiled", "--wasm", f"max-wasm-stack={16 << 20}", "--dir")


def test_a_prepared_command_runs_each_preparation_then_the_command_itself(tmp_path):
    steps = [SimpleNamespace(prepare=f"echo one > {tmp_path}/a"), SimpleNamespace(prepare=""),
             SimpleNamespace(prepare=f"echo two >> {tmp_path}/a")]
    command = Target.prepared_command(["sh", "-c", "cat \"$0\"/a; echo done", str(tmp_path)], steps)
    assert subprocess.run(command, capture_output=True, text=True, check=True).stdout == "one\ntwo\ndone\n"
    assert Target.prepared_command(["true"], [SimpleNamespace(prepare="")]) == ["true"]
    failing = Target.prepared_command(["echo", "never"], [SimpleNamespace(prepare="false")])
    assert subprocess.run(failing, capture_output=True, text=True).stdout == ""


def test_the_smoke_run_gives_the_guest_the_artifact_read_only_and_a_scratch_tmp(tmp_path):
    cache = tmp_path / "build" / "runtime-cache"
    command, binds, environment = wasmtime_invocation(tmp_path / "artifact", tmp_path / "tmp", cache)
    assert command[:2] == [WASMTIME_CLI, "run"] and command[-1] == "/work/artifact/python.wasm"
    pairs = [command[index + 1] for index, word in enumerate(command) if word == "--dir"]
    assert pairs == ["/work/artifact::/", "/work/tmp::/tmp"]
    assert "PYTHONHOME=/" in command and environment == {}
    assert [(bind.host, bind.container, bind.writable) for bind in binds] == [
        (tmp_path / "artifact", "/work/artifact", False), (tmp_path / "tmp", "/work/tmp", True),
        (cache, "/work/cache", True)]
    # The CLI keeps compiled modules in the cache, never in the guest's directories.
    assert command[2:4] == ["-C", "cache-config=/work/cache/config.toml"]
    assert tomllib.loads((cache / "config.toml").read_text()) == {"cache": {"directory": "/work/cache/modules"}}


def test_the_image_runner_runs_the_invocation_in_the_image_and_reads_its_log(tmp_path):
    calls = []

    def run_phase(image, phase, command, binds, environment, log, workdir=None):
        calls.append((image, phase, command, binds, workdir))
        log.write_text("a line of warnings\n" + json.dumps({"ok": True}) + "\n")

    log, unpacked = tmp_path / "smoke.log", tmp_path / "artifact"
    run = image_runner(SimpleNamespace(run_phase=run_phase), "sha256:abc", log, wasmtime_invocation, tmp_path / "cache")
    output, errors = run(unpacked, tmp_path, Path("a.tar.gz"), ["-c", "pass"])
    ((image, phase, command, binds, workdir),) = calls
    assert (image, phase, workdir) == ("sha256:abc", "smoke", "/work/artifact")
    assert command[-3:] == ["/work/artifact/python.wasm", "-c", "pass"]
    assert (tmp_path / "tmp").is_dir() and output.endswith('{"ok": true}\n') and errors == ""
