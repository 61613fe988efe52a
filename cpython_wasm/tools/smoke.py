"""The smoke run: unpack an artifact and prove its interpreter works on its runtime.

Each target says how its interpreter runs (targets/), in its toolchain image,
in a container without network (`image_runner`): WASI, python.wasm under the
wasmtime CLI; Emscripten, python.js under Node (`node_invocation`; the
browser's smoke run is in browser.py).
"""

import json
import tempfile
import time
from pathlib import Path

from cpython_wasm.errors import BuildError
from cpython_wasm.inputs.archives import safe_extract
from cpython_wasm.paths import display_path
from cpython_wasm.stages.executor import Bind
from cpython_wasm.stages.store import normalise_modes

# Runs inside python.wasm (or python.js), with what to check as its one argument (JSON, smoke_arguments):
# for each standard library module, one real operation (a round trip, a query on a file in the guest's
# writable /tmp, a call back through libffi); for each extension of a custom interpreter, that its modules
# are built in and its recipe's check, which fails unless the C code is what runs; each program a flavour's
# recipe names, run as __main__. What it prints is checked by `check_report`.
SMOKE_CODE = """\
import importlib, json, sys
try:
    import zlib
except ImportError:  # a flavour built without it (the minimal one): its plan does not ask for it
    zlib = None
data = b"cpython-wasm-recipes " * 4096

def check_zlib():
    return zlib.decompress(zlib.compress(data)) == data

def check_bz2():
    import bz2
    return bz2.decompress(bz2.compress(data)) == data

def check_lzma():
    import lzma
    return lzma.decompress(lzma.compress(data)) == data

def check_sqlite3():
    import os, sqlite3
    path = "/tmp/smoke.sqlite3"
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path)
    with db:
        db.execute("create table numbers (n integer, name text)")
        db.executemany("insert into numbers values (?, ?)", [(n, str(n)) for n in range(100)])
    db.close()
    db = sqlite3.connect(path)
    row = db.execute("select sum(n), count(*) from numbers where name like '%7%'").fetchone()
    db.close()
    return list(row) == [sum(n for n in range(100) if "7" in str(n)), 19]

def check_ctypes():
    # A Python callback called through libffi, and a C function the interpreter exports (dlopen(NULL)).
    import ctypes
    double = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda n: n * 2)
    return double(21) == 42 and ctypes.pythonapi.Py_IsInitialized() == 1

def check_decimal():
    # The C implementation (_decimal, with the libmpdec it was linked with), not _pydecimal.
    import _decimal, decimal
    decimal.getcontext().prec = 40
    return decimal.Decimal is _decimal.Decimal and str(decimal.Decimal(1) / 3) == "0." + "3" * 40

def check_extension(names, code):
    for name in names:
        module = importlib.import_module(name)
        if name not in sys.builtin_module_names or module.__spec__.origin != "built-in":
            return f"{name} is not a built-in module (from {module.__spec__.origin})"
    exec(code, {})
    return True

def check_program(code):
    exec(code, {"__name__": "__main__"})
    return True

request = json.loads(sys.argv[1])
checks = {name: (globals()["check_" + name], ()) for name in request["modules"]}
checks.update({name: (check_extension, extension) for name, extension in request["extensions"].items()})
checks.update({"program:" + name: (check_program, (code,)) for name, code in request["programs"].items()})
modules = {}
for name, (check, arguments) in checks.items():
    try:
        modules[name] = check(*arguments)
    except Exception as error:
        modules[name] = f"{type(error).__name__}: {error}"
print(json.dumps({
    "platform": sys.platform,
    "version": sys.version.split()[0],
    "implementation": sys.implementation.name,
    "zlib": zlib.ZLIB_RUNTIME_VERSION if zlib else None,
    "zlib_roundtrip": check_zlib() if zlib else None,
    "json_roundtrip": json.loads(json.dumps({"a": [1, 2.5, None]})) == {"a": [1, 2.5, None]},
    "modules": modules,
    "prefix": sys.prefix,
}))
"""
# The modules SMOKE_CODE knows how to check.
SMOKE_MODULES = ("zlib", "bz2", "lzma", "sqlite3", "ctypes", "decimal")


def smoke_arguments(modules, extensions=(), programs=None) -> list[str]:
    """The interpreter's arguments: the smoke code, then what it checks (the standard library modules, each
    extension recipe's modules and check, and `programs`: a flavour's, by name)."""
    unknown = sorted(set(modules) - set(SMOKE_MODULES))
    if unknown:
        raise ValueError(f"the smoke code has no check for {', '.join(unknown)}")
    request = {"modules": list(modules),
               "extensions": {extension.name: [[module.name for module in extension.modules], extension.smoke]
                              for extension in extensions},
               "programs": dict(programs or {})}
    return ["-c", SMOKE_CODE, json.dumps(request)]


def check_report(report: dict, expected_version: str, platform: str = "wasi", modules=()) -> list[str]:
    """What is wrong with a smoke report, if anything; `modules` must each have passed their check."""
    problems = []
    if report.get("platform") != platform:
        problems.append(f"sys.platform is {report.get('platform')!r}, expected {platform!r}")
    if report.get("version") != expected_version:
        problems.append(f"the version is {report.get('version')!r}, expected {expected_version!r}")
    if report.get("json_roundtrip") is not True:
        problems.append("json_roundtrip failed")
    if report.get("zlib_roundtrip") is False:  # None: no zlib, which `modules` names where the plan has it
        problems.append("zlib_roundtrip failed")
    checked = report.get("modules") if isinstance(report.get("modules"), dict) else {}
    for module in modules:
        if checked.get(module) is not True:
            problems.append(f"{module}: {checked.get(module, 'not checked')}")
    return problems


def summary(report: dict) -> str:
    checked = [name for name, outcome in (report.get("modules") or {}).items() if outcome is True]
    used = f"; used {', '.join(checked)}" if checked else ""
    zlib = f", zlib {report['zlib']}" if report.get("zlib") else ""
    return f"{report['implementation']} {report['version']} on {report['platform']}{zlib}{used}"


def parse_report(output: str, what: str, errors: str = "") -> dict:
    """The report: the last line the smoke code printed (`errors`: its error output, if kept apart)."""
    try:
        return json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BuildError(f"Smoke run of {what} printed no report; its output: {output[-2000:]!r}"
                         + (f"; errors: {errors[-2000:]!r}" if errors else "")) from None


def node_command(mounted_at: str, stdlib: str | None) -> tuple[list[str], dict[str, str]]:
    """How Node runs an unpacked Emscripten artifact mounted at `mounted_at`: the command before Python's own
    arguments, and its environment. `stdlib`: the name of its standard library zip beside python.mjs (3.14+,
    Platforms/emscripten), or None for python.js (3.11-3.13, the standard library preloaded from python.data).

    3.14+ runs CPython's node_entry.mjs, which mounts the host's directories into Emscripten's file system, so
    the standard library is the zip on PYTHONPATH (the page's worker puts it at /lib instead), and PYTHONHOME
    the artifact, where getpath finds no other prefix."""
    if stdlib is None:
        return ["node", f"{mounted_at}/python.js"], {}
    return (["node", f"{mounted_at}/node_entry.mjs", f"--this-program={mounted_at}/python"],
            {"PYTHONHOME": mounted_at, "PYTHONPATH": f"{mounted_at}/{stdlib}"})


def stdlib_zip(unpacked: Path) -> Path:
    """The standard library zip of an unpacked artifact of Platforms/emscripten (3.14+), python3.X.zip."""
    found = sorted(unpacked.glob("python3.*.zip"))
    if len(found) != 1:
        raise BuildError(f"{display_path(unpacked)} has python.mjs but not one python3.X.zip beside it "
                         f"({[path.name for path in found]}): not an artifact of Platforms/emscripten.")
    return found[0]


def image_runner(executor, image: str, log: Path, invocation, cache: Path):
    """The artifact run in `image` by the executor, which raises if it fails; the container's log holds both
    outputs. `invocation(unpacked, scratch, cache)`: the command before Python's own arguments, the mounts (the
    artifact read-only; `scratch`, an empty directory, where the guest writes; `cache`, where the runtime may keep
    what it compiled between runs) and the environment."""

    def run(unpacked: Path, temp: Path, artifact: Path, arguments: list[str]) -> tuple[str, str]:
        scratch = temp / "tmp"
        scratch.mkdir()
        command, binds, environment = invocation(unpacked, scratch, cache)
        executor.run_phase(image, "smoke", [*command, *arguments], binds, environment, log, workdir=binds[0].container)
        return log.read_text(errors="replace"), ""

    return run


def node_invocation(unpacked: Path, scratch: Path, cache: Path) -> tuple[list[str], list[Bind], dict[str, str]]:
    """python.js (or python.mjs) under the image's Node (node_command), the artifact mounted at /artifact. Node
    keeps no compiled WebAssembly between processes: `cache` is not used."""
    stdlib = stdlib_zip(unpacked).name if (unpacked / "python.mjs").is_file() else None
    command, environment = node_command("/artifact", stdlib)
    return command, [Bind(unpacked, "/artifact")], environment


def smoke(artifact: Path, expected_version: str, platform: str, run, modules=(), extensions=(),
          programs=None) -> dict:
    """Run the smoke check on an artifact tarball; return the interpreter's report, or raise BuildError.

    run(unpacked directory, a temporary directory, artifact, arguments): the interpreter's output and error
    output; `platform` is the sys.platform it must report; `modules` those it must import and use;
    `extensions` the extension recipes whose modules it must have built in; `programs` what it must run (a
    flavour's representative programs, by name)."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cpython-wasm-smoke-") as temp:
        temp = Path(temp)
        unpacked = temp / "artifact"
        safe_extract(artifact, unpacked, strip_components=1)
        normalise_modes(unpacked)  # the container's user reads it, whatever the umask
        output, errors = run(unpacked, temp, artifact, smoke_arguments(modules, extensions, programs))
    report = parse_report(output, display_path(artifact), errors)
    problems = check_report(report, expected_version, platform, [*modules, *(e.name for e in extensions),
                                                                 *(f"program:{name}" for name in programs or {})])
    if problems:
        raise BuildError(f"Smoke run of {display_path(artifact)} found problems: {'; '.join(problems)}. Report: {report}")
    report["seconds"] = round(time.monotonic() - start, 2)
    return report
