"""Real wasm runs: small WASI modules written in WAT, run by our wasmtime runner."""

import subprocess
import sys

import pytest
import wasmtime

from cpython_wasm.runtime import run_wasi

HELLO = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from wasm\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const 3))))
"""

# Writes its whole argv to stdout, each argument followed by a NUL.
ECHO_ARGV = """
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (drop (call $args (i32.const 64) (i32.const 1024)))
    (i32.store (i32.const 16) (i32.const 1024))
    (i32.store (i32.const 20) (i32.load (i32.const 4)))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))))
"""

TRAP = '(module (memory (export "memory") 1) (func (export "_start") unreachable))'


@pytest.fixture
def module(tmp_path):
    def write(text, name="module.wasm"):
        path = tmp_path / name
        path.write_bytes(wasmtime.wat2wasm(text))
        return path
    return write


def wasmtime_cli(*args):
    """Our runner's command line, as CPython's helpers call `wasmtime` in the images."""
    return subprocess.run([sys.executable, "-m", "cpython_wasm.runtime", *map(str, args)], capture_output=True, text=True)


def test_exit_status_and_output_of_a_wasi_program(tmp_path, module):
    stdout = tmp_path / "stdout"
    assert run_wasi(str(module(HELLO)), [], stdout=stdout) == 3
    assert stdout.read_text() == "hello from wasm\n"


@pytest.mark.parametrize("spelling", [
    # 3.13's default runner
    ["run", "--wasm", "max-wasm-stack=8388608", "--wasi", "preview2", "--dir", "{tmp}::/", "--env", "A=B"],
    # 3.11's (old --mapdir GUEST::HOST syntax, then `--`)
    ["run", "--env", "PYTHONPATH=/x:/Lib", "--mapdir", "/::{tmp}", "--"],
    # 3.15's (a TOML configuration)
    ["run", "--dir", "{tmp}::/", "--config", "{config}"],
    # `run` may be left out
    ["--dir", "{tmp}"],
])
def test_the_command_lines_of_cpythons_runners_work(tmp_path, module, spelling):
    config = tmp_path / "wasmtime.toml"
    config.write_text("[wasm]\nmax-wasm-stack = 33_554_432\n")
    args = [part.format(tmp=tmp_path, config=config) for part in spelling]
    result = wasmtime_cli(*args, module(ECHO_ARGV), "-c", "print(1)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\0")[1:3] == ["-c", "print(1)"]


def test_argv0_is_what_the_runner_is_told(module):
    result = wasmtime_cli("run", "--argv0", "/cross-build/wasm32-wasip1/python.wasm", module(ECHO_ARGV), "x")
    assert result.stdout.split("\0")[:2] == ["/cross-build/wasm32-wasip1/python.wasm", "x"]


def test_exit_status_passes_through_the_cli(module):
    result = wasmtime_cli("run", module(HELLO), "arg")
    assert result.returncode == 3
    assert result.stdout == "hello from wasm\n"


def test_a_trap_is_reported_like_an_abort(module):
    result = wasmtime_cli(module(TRAP))
    assert result.returncode == 134
    assert "wasm trap" in result.stderr
