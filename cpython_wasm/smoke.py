"""The smoke run: unpack an artifact and prove its python.wasm works under wasmtime."""

import json
import tempfile
import time
from pathlib import Path

from .archives import safe_extract
from .errors import BuildError
from .paths import display_path
from .runtime import run_wasi

# Runs inside python.wasm: what it prints is checked by `check_report`.
SMOKE_CODE = """\
import json, sys, zlib
data = b"cpython-wasm-recipes " * 4096
print(json.dumps({
    "platform": sys.platform,
    "version": sys.version.split()[0],
    "implementation": sys.implementation.name,
    "zlib": zlib.ZLIB_RUNTIME_VERSION,
    "zlib_roundtrip": zlib.decompress(zlib.compress(data)) == data,
    "json_roundtrip": json.loads(json.dumps({"a": [1, 2.5, None]})) == {"a": [1, 2.5, None]},
    "prefix": sys.prefix,
}))
"""


def check_report(report: dict, expected_version: str) -> list[str]:
    """What is wrong with a smoke report, if anything."""
    problems = []
    if report.get("platform") != "wasi":
        problems.append(f"sys.platform is {report.get('platform')!r}, expected 'wasi'")
    if report.get("version") != expected_version:
        problems.append(f"the version is {report.get('version')!r}, expected {expected_version!r}")
    for check in ("zlib_roundtrip", "json_roundtrip"):
        if report.get(check) is not True:
            problems.append(f"{check} failed")
    return problems


def summary(report: dict) -> str:
    return f"{report['implementation']} {report['version']} on {report['platform']}, zlib {report['zlib']}"


def smoke(artifact: Path, expected_version: str) -> dict:
    """Run the smoke check on an artifact tarball; return python.wasm's report, or raise BuildError."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cpython-wasm-smoke-") as temp:
        temp = Path(temp)
        unpacked = temp / "artifact"
        safe_extract(artifact, unpacked, strip_components=1)
        stdout, stderr = temp / "stdout", temp / "stderr"
        status = run_wasi(str(unpacked / "python.wasm"), ["-c", SMOKE_CODE], dirs=[(unpacked, "/")],
                          env={"PYTHONHOME": "/"}, stdout=stdout, stderr=stderr)
        output, errors = stdout.read_text(errors="replace"), stderr.read_text(errors="replace")
    if status != 0:
        raise BuildError(
            f"Smoke run of {display_path(artifact)} failed: python.wasm exited with status {status}. "
            f"Its error output:\n{errors.strip()[-2000:]}"
        )
    try:
        report = json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BuildError(f"Smoke run of {display_path(artifact)} printed no report; output: {output!r}; errors: {errors!r}") from None
    problems = check_report(report, expected_version)
    if problems:
        raise BuildError(f"Smoke run of {display_path(artifact)} found problems: {'; '.join(problems)}. Report: {report}")
    report["seconds"] = round(time.monotonic() - start, 2)
    return report
