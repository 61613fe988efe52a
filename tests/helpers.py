"""Helpers shared by the tests."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INVOKE = Path(sys.executable).with_name("invoke")
# The README build's lockfile, as committed: real data for tests that need no build.
COMMITTED_LOCKFILE = PROJECT_ROOT / "lockfiles" / "python-3.13.5-wasi_sdk-25-debian.json"


def run(command, env=None, check=False, timeout=3600) -> subprocess.CompletedProcess:
    """Run a command from the checkout, capturing its output."""
    result = subprocess.run(
        [str(part) for part in command], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} exited {result.returncode}\n{result.stdout}\n{result.stderr[-6000:]}")
    return result


def invoke(*args, env=None, check=False, timeout=3600) -> subprocess.CompletedProcess:
    """Run an invoke task of this checkout the way a user does."""
    return run([INVOKE, *args], env=env, check=check, timeout=timeout)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
