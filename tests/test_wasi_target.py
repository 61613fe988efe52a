"""The WASI target runs python.wasm with the wasmtime CLI its toolchain image installs, wherever it runs it."""

import json
from pathlib import Path
from types import SimpleNamespace

from cpython_wasm.inputs.tools import WASMTIME_CLI
from cpython_wasm.targets.wasi import Wasi, precompile_first, wasmtime_invocation, wasmtime_run
from cpython_wasm.tools.smoke import image_runner

WASI = Wasi()


def test_the_cli_is_the_images_own_not_a_mounted_file():
    assert WASMTIME_CLI == "/usr/local/bin/wasmtime"  # installed by containers/wasi-sdk-common.Dockerfile.j2
    assert WASI.runner_inputs(SimpleNamespace(plan=None)) == ()
    assert wasmtime_run("/w")[:2] == [WASMTIME_CLI, "run"]
    assert precompile_first("true", "/w")[2].startswith(f"{WASMTIME_CLI} compile /w/artifact/python.wasm ")


def test_the_smoke_run_gives_the_guest_the_artifact_read_only_and_a_scratch_tmp(tmp_path):
    command, binds, environment = wasmtime_invocation(tmp_path / "artifact", tmp_path / "tmp")
    assert command[:2] == [WASMTIME_CLI, "run"] and command[-1] == "/work/artifact/python.wasm"
    pairs = [command[index + 1] for index, word in enumerate(command) if word == "--dir"]
    assert pairs == ["/work/artifact::/", "/work/tmp::/tmp"]
    assert "PYTHONHOME=/" in command and environment == {}
    assert [(bind.host, bind.container, bind.writable) for bind in binds] == [
        (tmp_path / "artifact", "/work/artifact", False), (tmp_path / "tmp", "/work/tmp", True)]


def test_the_image_runner_runs_the_invocation_in_the_image_and_reads_its_log(tmp_path):
    calls = []

    def run_phase(image, phase, command, binds, environment, log, workdir=None):
        calls.append((image, phase, command, binds, workdir))
        log.write_text("a line of warnings\n" + json.dumps({"ok": True}) + "\n")

    log, unpacked = tmp_path / "smoke.log", tmp_path / "artifact"
    run = image_runner(SimpleNamespace(run_phase=run_phase), "sha256:abc", log, wasmtime_invocation)
    output, errors = run(unpacked, tmp_path, Path("a.tar.gz"), ["-c", "pass"])
    ((image, phase, command, binds, workdir),) = calls
    assert (image, phase, workdir) == ("sha256:abc", "smoke", "/work/artifact")
    assert command[-3:] == ["/work/artifact/python.wasm", "-c", "pass"]
    assert (tmp_path / "tmp").is_dir() and output.endswith('{"ok": true}\n') and errors == ""
