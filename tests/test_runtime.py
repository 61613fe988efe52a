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

TRAP = '(module (memory (export "memory") 1) (func (export "_start") unreachable))'


@pytest.fixture
def module(tmp_path):
    def write(text):
        path = tmp_path / "module.wasm"
        path.write_bytes(wasmtime.wat2wasm(text))
        return path
    return write


def test_exit_status_and_output_of_a_wasi_program(tmp_path, module):
    stdout = tmp_path / "stdout"
    assert run_wasi(str(module(HELLO)), [], stdout=stdout) == 3
    assert stdout.read_text() == "hello from wasm\n"


def test_the_runner_has_the_command_line_of_wasmtime_run(module, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cpython_wasm.runtime", "--dir", f"{tmp_path}::/", "--env", "A=B",
         str(module(HELLO)), "arg"], capture_output=True, text=True)
    assert result.returncode == 3
    assert result.stdout == "hello from wasm\n"


def test_a_trap_is_reported_like_an_abort(module):
    result = subprocess.run([sys.executable, "-m", "cpython_wasm.runtime", str(module(TRAP))],
                            capture_output=True, text=True)
    assert result.returncode == 134
    assert "wasm trap" in result.stderr
