"""End to end: the README's build, for real, in Docker (see conftest.py)."""

import bz2
import contextlib
import hashlib
import json
import lzma
import sqlite3
import tarfile
import zlib

import pytest

from cpython_wasm.container.wasm import strip_debug_info
from cpython_wasm.errors import BuildError
from cpython_wasm.inputs.archives import safe_extract
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.runtime import run_wasi
from cpython_wasm.stages.engine import connect
from cpython_wasm.stages.executor import Bind, run_phase
from cpython_wasm.targets import target_of, toolchain_spec
from tests.e2e.conftest import ARTIFACT, SELECTION, build_args
from tests.helpers import PROJECT_ROOT, invoke, sha256

pytestmark = pytest.mark.e2e


def test_the_build_writes_the_artifact_and_its_lockfile(built):
    lock = built["lock"]
    outputs = lock["outputs"]
    assert outputs[built["artifact"].name]["sha256"] == sha256(built["artifact"])
    assert outputs[built["artifact"].name]["size"] == built["artifact"].stat().st_size
    assert lock["artifact"] == ARTIFACT
    plan = Recipes().resolve(*SELECTION, arch=lock["build"]["host_arch"])
    assert lock["build"] == {
        "python": "3.13.5", "target": "wasm32-wasip1", "wasi_sdk": 25, "provider": "debian",
        "official_pairing": False, "host_arch": lock["build"]["host_arch"], "source_date_epoch": 1749600000,
        "configure_host_args": ["--with-pymalloc"],
        "host_environment": {"SOURCE_DATE_EPOCH": "1749600000",
                             **{name: value for library in plan.libraries
                                for name, value in target_of(plan).configure_variables(plan, library).items()}},
        "pgo": lock["build"]["pgo"],  # the profile it was built with (test_pgo.py)
    }
    assert ("smoke python.wasm under wasmtime: cpython 3.13.5 on wasi, zlib 1.3.1; used zlib, bz2, sqlite3, lzma"
            in built["result"].stderr)
    assert {key for key in lock["products"] if key.startswith("library:")} == {
        "library:zlib", "library:bzip2", "library:sqlite", "library:xz"}


def test_the_lockfile_records_every_input_and_image(built):
    lock = built["lock"]
    plan = Recipes().resolve(*SELECTION, arch=lock["build"]["host_arch"])
    assert [(i["name"], i["sha256"], i["size"]) for i in lock["inputs"]] == [
        (pin.file, pin.sha256, pin.size) for pin in plan.inputs]
    assert len(lock["base"]["rootfs_sha256"]) == 64
    assert lock["images"]["toolchain"]["tag"] == toolchain_spec(plan, lambda pin: None).tag
    for image, pinned in (("native", plan.base.packages), ("toolchain", plan.toolchain.packages)):
        packages = {p["name"]: p for p in lock["images"][image]["packages"]}
        for name, version in pinned.items():
            assert packages[name]["version"] == version
        assert all(len(p["sha256"]) == 64 for p in packages.values()), "every .deb has its sha256"
    # The toolchain image is built on the native one: it has all of its packages.
    native = {(p["name"], p["version"]) for p in lock["images"]["native"]["packages"]}
    assert native <= {(p["name"], p["version"]) for p in lock["images"]["toolchain"]["packages"]}


def test_the_manifest_describes_the_unpacked_artifact_exactly(built, unpacked):
    manifest = json.loads((unpacked / "manifest.json").read_text())
    on_disk = {p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    for name, entry in manifest["files"].items():
        assert sha256(unpacked / name) == entry["sha256"], name
    assert manifest["files"]["python.wasm"] == built["lock"]["outputs"]["python.wasm"]
    assert built["lock"]["outputs"]["manifest.json"]["sha256"] == sha256(unpacked / "manifest.json")
    # The standard library is there, compiled and without its sources; the test suite is not.
    assert "lib/python3.13/json/__init__.pyc" in manifest["files"]
    assert "lib/python3.13/_sysconfigdata__wasi_wasm32-wasi.pyc" in manifest["files"]
    assert not [name for name in manifest["files"] if name.endswith(".py") or "__pycache__" in name]
    assert not any(name.startswith("lib/python3.13/test/") for name in manifest["files"])


def test_dwarf_and_sources_are_in_the_debug_artifact(built, unpacked, tmp_path):
    debug = built["artifact"].with_name(f"{ARTIFACT}.debug.tar.gz")
    assert built["lock"]["outputs"][debug.name]["sha256"] == sha256(debug)
    safe_extract(debug, tmp_path)
    tree = tmp_path / ARTIFACT
    shipped, linked = (unpacked / "python.wasm").read_bytes(), (tree / "python.debug.wasm").read_bytes()
    assert strip_debug_info(shipped)[1] == 0 and strip_debug_info(linked)[1] > 10_000_000  # the DWARF moved
    assert strip_debug_info(linked)[0] == shipped[:len(strip_debug_info(linked)[0])]  # same code, byte for byte
    assert (tree / "lib/python3.13/json/__init__.py").is_file()
    manifest = json.loads((unpacked / "manifest.json").read_text())
    assert {name.removesuffix("c") for name in manifest["files"] if name.endswith(".pyc")} <= {
        p.relative_to(tree).as_posix() for p in tree.rglob("*.py")}
    result = invoke("verify", debug, "--lock", built["lockfile"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_tarball_is_normalised(built):
    with tarfile.open(built["artifact"]) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {m.mtime for m in members} == {1749600000}
    assert {(m.uid, m.gid) for m in members} == {(0, 0)}


def test_the_smoke_task_runs_the_artifact(built):
    # In the toolchain image its lockfile names (the wasmtime CLI is there).
    result = invoke("smoke", "--artifact", str(built["artifact"]), "--lock-dir", str(built["lockfile"].parent), check=True)
    # The modules the recipes of the build its name names link in, each used once.
    assert "cpython 3.13.5 on wasi, zlib 1.3.1; used zlib, bz2, sqlite3, lzma" in result.stderr


def test_python_wasm_runs_real_programs(unpacked, tmp_path):
    program = (
        "import hashlib, json, re, sys, zlib, os\n"
        "print(json.dumps({'sha256': hashlib.sha256(b'abc').hexdigest(),\n"
        "  'crc32': zlib.crc32(b'cpython'), 're': re.findall(r'\\d+', 'a1b22c333'),\n"
        "  'stdlib': os.path.isfile('/lib/python3.13/os.pyc'), 'platform': sys.platform}))\n"
    )
    stdout, stderr = tmp_path / "out", tmp_path / "err"
    status = run_wasi(str(unpacked / "python.wasm"), ["-c", program], dirs=[(unpacked, "/")],
                      env={"PYTHONHOME": "/"}, stdout=stdout, stderr=stderr)
    assert status == 0, stderr.read_text()
    assert json.loads(stdout.read_text()) == {
        "sha256": hashlib.sha256(b"abc").hexdigest(), "crc32": zlib.crc32(b"cpython"),
        "re": ["1", "22", "333"], "stdlib": True, "platform": "wasi"}
    status = run_wasi(str(unpacked / "python.wasm"), ["-c", "raise SystemExit(7)"], dirs=[(unpacked, "/")],
                      env={"PYTHONHOME": "/"}, stdout=stdout, stderr=stderr)
    assert status == 7


def test_sqlite3_lzma_and_bz2_write_what_the_host_reads(unpacked, tmp_path):
    """python.wasm writes a SQLite database and compressed files into a preopened directory; this host's
    own sqlite3, lzma and bz2 read them back. ctypes is left out on WASI (no libffi port): not importable."""
    shared = tmp_path / "shared"
    shared.mkdir()
    program = (
        "import bz2, lzma, sqlite3\n"
        "db = sqlite3.connect('/shared/cities.db')\n"
        "with db:\n"
        "    db.execute('create table cities (name text primary key, people integer)')\n"
        "    db.executemany('insert into cities values (?, ?)', [('Lyon', 522250), ('Turin', 841600)])\n"
        "print(db.execute('select sqlite_version(), sum(people) from cities').fetchone())\n"
        "db.close()\n"
        "open('/shared/text.xz', 'wb').write(lzma.compress(b'wasm ' * 1000))\n"
        "open('/shared/text.bz2', 'wb').write(bz2.compress(b'wasm ' * 1000))\n"
        "try:\n"
        "    import ctypes\n"
        "except ModuleNotFoundError:\n"
        "    print('no ctypes')\n"
    )
    stdout, stderr = tmp_path / "out", tmp_path / "err"
    status = run_wasi(str(unpacked / "python.wasm"), ["-c", program], dirs=[(unpacked, "/"), (shared, "/shared")],
                      env={"PYTHONHOME": "/"}, stdout=stdout, stderr=stderr)
    assert status == 0, stderr.read_text()
    assert stdout.read_text().splitlines() == ["('3.46.1', 1363850)", "no ctypes"]
    with contextlib.closing(sqlite3.connect(shared / "cities.db")) as db:
        assert db.execute("select name from cities order by people").fetchall() == [("Lyon",), ("Turin",)]
    assert lzma.decompress((shared / "text.xz").read_bytes()) == b"wasm " * 1000
    assert bz2.decompress((shared / "text.bz2").read_bytes()) == b"wasm " * 1000


def test_every_phase_keeps_its_log(built, workspace):
    logs = {p.name for p in (workspace["build"] / "logs").rglob("*.log")}
    assert {"configure-build-python.log", "make-build-python.log", "build-zlib.log", "build-bzip2.log",
            "build-sqlite.log", "build-xz.log", "configure-host.log", "make-host.log", "package.log",
            "profile-runtime.log", "profile.log"} <= logs


def compiled_modules(workspace) -> dict[str, int]:
    """The wasmtime CLI's cache entries (compiled modules) under the build directory, with their mtimes; not
    its usage statistics (.stats), which a cache hit updates."""
    cache = workspace["build"] / "runtime-cache" / "modules"
    return {str(path): path.stat().st_mtime_ns for path in cache.rglob("*") if path.is_file()
            and path.suffix != ".stats"}


def test_an_unchanged_build_is_found_not_rebuilt(built, workspace):
    before = built["artifact"].read_bytes(), built["lockfile"].read_bytes()
    compiled = compiled_modules(workspace)
    result = invoke(*build_args(workspace, *SELECTION), check=True)
    # The smoke run loaded the module the earlier one compiled (the cache under the build directory): no entry was
    # written again (another build beside may add its own).
    assert compiled and compiled.items() <= compiled_modules(workspace).items()
    for stage in ("build-python", "profile", "host", "package"):
        assert f"✓ {stage}: reused" in result.stderr
    # What only the profile needs is not even looked up once the profile is there.
    assert "profile-runtime" not in result.stderr and "host-instrumented" not in result.stderr
    assert result.stderr.count("✓ library: reused") == 4
    assert (built["artifact"].read_bytes(), built["lockfile"].read_bytes()) == before


def test_a_failed_compile_names_phase_and_log_and_keeps_earlier_outputs(built, workspace):
    before = built["artifact"].read_bytes(), built["lockfile"].read_bytes()
    # An option configure refuses (an assignment such as CC=... is refused before the build starts).
    result = invoke(*build_args(workspace, *SELECTION, "--configure-arg=--with-build-python=/nonexistent/python3"))
    assert result.returncode == 1
    assert "Phase configure-host failed" in result.stderr
    log = PROJECT_ROOT / result.stderr.split("Its full log is ", 1)[1].split(";", 1)[0]  # relative if inside
    assert log.is_file() and log.is_relative_to(workspace["build"] / "logs"), log
    assert "invalid or missing build python binary" in log.read_text()
    assert "Traceback" not in result.stderr
    assert (built["artifact"].read_bytes(), built["lockfile"].read_bytes()) == before
    store = workspace["build"] / "store"  # (the Emscripten build may be running beside: its stages are its own)
    assert not [p for p in store.iterdir() if p.name.startswith(".building-") and p.name.endswith(f"-host-{ARTIFACT}")]


def test_compile_containers_have_no_network_no_root_and_no_capabilities(built, workspace, tmp_path):
    client = connect()
    probe = ("import os; print('uid', os.getuid()); print('interfaces', sorted(os.listdir('/sys/class/net'))); "
             "print([l for l in open('/proc/self/status') if l.startswith(('CapEff', 'NoNewPrivs'))])")
    log = tmp_path / "probe.log"
    run_phase(client, built["lock"]["images"]["native"]["tag"], "probe", ["python3", "-c", probe], [], {}, log)
    text = log.read_text()
    assert "uid 0" not in text and "uid " in text
    assert "interfaces ['lo']" in text
    assert "CapEff:\\t0000000000000000" in text and "NoNewPrivs:\\t1" in text
    with pytest.raises(BuildError, match="Phase probe failed"):
        run_phase(client, built["lock"]["images"]["native"]["tag"], "probe",
                  ["python3", "-c", "import socket; socket.create_connection(('deb.debian.org', 80), timeout=5)"],
                  [], {}, log)
    # The source and earlier stages are mounted read-only: a phase cannot change its inputs.
    source = next((workspace["build"] / "store").glob("*-cpython-3.13.5-source"))
    run_phase(client, built["lock"]["images"]["native"]["tag"], "probe", ["grep", " /cpython ", "/proc/self/mountinfo"],
              [Bind(source, "/cpython")], {}, log)
    options = log.read_text().splitlines()[-1].split(" /cpython ")[1].split()[0]
    assert "ro" in options.split(","), options
