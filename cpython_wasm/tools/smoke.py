"""The smoke run: unpack an artifact and prove its interpreter works on its runtime.

Each target says how its interpreter runs (targets/): WASI, python.wasm
under wasmtime in this process (`run_wasi`); Emscripten, python.js under the
Node of the toolchain image, in a container without network (`node_runner`;
the browser's smoke run is in browser.py).
"""

import json
import tempfile
import time
from pathlib import Path

from cpython_wasm.errors import BuildError
from cpython_wasm.inputs.archives import safe_extract
from cpython_wasm.paths import display_path
from cpython_wasm.runtime import run_wasi
from cpython_wasm.stages.executor import Bind
from cpython_wasm.stages.store import normalise_modes

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


def check_report(report: dict, expected_version: str, platform: str = "wasi") -> list[str]:
    """What is wrong with a smoke report, if anything."""
    problems = []
    if report.get("platform") != platform:
        problems.append(f"sys.platform is {report.get('platform')!r}, expected {platform!r}")
    if report.get("version") != expected_version:
        problems.append(f"the version is {report.get('version')!r}, expected {expected_version!r}")
    for check in ("zlib_roundtrip", "json_roundtrip"):
        if report.get(check) is not True:
            problems.append(f"{check} failed")
    return problems


def summary(report: dict) -> str:
    return f"{report['implementation']} {report['version']} on {report['platform']}, zlib {report['zlib']}"


def parse_report(output: str, what: str, errors: str = "") -> dict:
    """The report: the last line the smoke code printed (`errors`: its error output, if kept apart)."""
    try:
        return json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BuildError(f"Smoke run of {what} printed no report; its output: {output[-2000:]!r}"
                         + (f"; errors: {errors[-2000:]!r}" if errors else "")) from None


def wasi_runner(unpacked: Path, temp: Path, artifact: Path) -> tuple[str, str]:
    """python.wasm under wasmtime; its output and error output."""
    stdout, stderr = temp / "stdout", temp / "stderr"
    status = run_wasi(str(unpacked / "python.wasm"), ["-c", SMOKE_CODE], dirs=[(unpacked, "/")],
                      env={"PYTHONHOME": "/"}, stdout=stdout, stderr=stderr)
    errors = stderr.read_text(errors="replace")
    if status != 0:
        raise BuildError(
            f"Smoke run of {display_path(artifact)} failed: python.wasm exited with status {status}. "
            f"Its error output:\n{errors.strip()[-2000:]}"
        )
    return stdout.read_text(errors="replace"), errors


def node_runner(executor, image: str, log: Path):
    """python.js under Node in `image`, the artifact mounted read-only; the executor raises if it fails.

    The container's log holds both outputs."""

    def run(unpacked: Path, temp: Path, artifact: Path) -> tuple[str, str]:
        executor.run_phase(image, "smoke", ["node", "/artifact/python.js", "-c", SMOKE_CODE],
                           [Bind(unpacked, "/artifact")], {}, log, workdir="/artifact")
        return log.read_text(errors="replace"), ""

    return run


def smoke(artifact: Path, expected_version: str, platform: str, run) -> dict:
    """Run the smoke check on an artifact tarball; return the interpreter's report, or raise BuildError.

    run(unpacked directory, a temporary directory, artifact): the interpreter's output and error output;
    `platform` is the sys.platform it must report."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cpython-wasm-smoke-") as temp:
        temp = Path(temp)
        unpacked = temp / "artifact"
        safe_extract(artifact, unpacked, strip_components=1)
        normalise_modes(unpacked)  # the container's user reads it, whatever the umask
        output, errors = run(unpacked, temp, artifact)
    report = parse_report(output, display_path(artifact), errors)
    problems = check_report(report, expected_version, platform)
    if problems:
        raise BuildError(f"Smoke run of {display_path(artifact)} found problems: {'; '.join(problems)}. Report: {report}")
    report["seconds"] = round(time.monotonic() - start, 2)
    return report
