"""End to end: the README's build is profile-guided (targets/pgo.py), for real: the profile runtime built from
the pinned LLVM source, the instrumented python.wasm, CPython's training task run on it under the wasmtime CLI,
and python.wasm built again with the merged profile, which is published. The rebuild from its lockfile, which
uses that profile instead of training again, is test_reproducibility.py's."""

import json
import re

import pytest

from cpython_wasm.records.lock import profile_path
from tests.e2e.conftest import ARTIFACT
from tests.helpers import sha256

pytestmark = pytest.mark.e2e

# An indexed profile, as llvm-profdata merge writes it (llvm/ProfileData/InstrProf.h: IndexedInstrProf::Magic).
INDEXED_PROFILE_MAGIC = bytes.fromhex("ff6c70726f666981")


def product(workspace, lock: dict, key: str):
    """A stage's product in the session's store, by the lockfile's key."""
    return next(path for path in (workspace["build"] / "store").glob(f"{lock['products'][key]}-*") if path.is_dir())


def log(workspace, lock: dict, key: str, phase: str) -> str:
    return next((workspace["build"] / "logs").glob(f"{lock['products'][key]}-*/{phase}.log")).read_text(errors="replace")


def test_the_profile_is_published_beside_the_artifact_and_the_lockfile(built):
    pgo = built["lock"]["build"]["pgo"]
    assert re.fullmatch(rf"{re.escape(ARTIFACT)}-[0-9a-f]{{16}}\.profdata", pgo["file"])
    assert pgo["file"].removeprefix(f"{ARTIFACT}-").removesuffix(".profdata") == pgo["sha256"][:16]
    published = built["artifact"].parent / pgo["file"]
    kept = profile_path(built["lockfile"], pgo["file"])
    for path in (published, kept):
        assert sha256(path) == pgo["sha256"] and path.stat().st_size == pgo["size"]
    assert published.read_bytes()[:8] == INDEXED_PROFILE_MAGIC
    sums = (built["artifact"].parent / "SHA256SUMS").read_text()
    assert f"{pgo['sha256']}  {pgo['file']}" in sums


def test_the_runtime_is_built_from_the_pinned_llvm_source(built, workspace):
    lock = built["lock"]
    assert "llvm-toolchain-19_19.1.7.orig.tar.xz" in {entry["name"] for entry in lock["inputs"]}
    runtime = product(workspace, lock, "profile-runtime") / "lib" / "libclang_rt.profile-wasm32.a"
    members = runtime.read_bytes()
    assert members.startswith(b"!<arch>\n")
    for name in (b"InstrProfilingFile.o", b"InstrProfilingPlatformOther.o", b"InstrProfilingRuntime.o"):
        assert name in members


def test_the_training_run_is_cpythons_task_on_the_instrumented_interpreter(built, workspace):
    lock = built["lock"]
    training = log(workspace, lock, "profile", "profile")
    # The Makefile's PROFILE_TASK (its TESTTIMEOUT is empty: no timeout), under the Makefile's HOSTRUNNER.
    assert re.search(r"training: \S*wasmtime run .*python\.wasm -m test --pgo --timeout= --tempdir=/tmp", training)
    run = re.search(r"Total tests: run=([\d,]+)", training)
    assert run and int(run.group(1).replace(",", "")) > 5000, training[-3000:]
    instrumented = (product(workspace, lock, "host-instrumented") / "python.wasm").read_bytes()
    optimised = (product(workspace, lock, "host") / "python.wasm").read_bytes()
    # The instrumented module carries the runtime and its counters' section names; the optimised one neither.
    assert b"__llvm_profile_write_file" in instrumented and b"__llvm_prf_cnts" in instrumented
    assert b"__llvm_profile_write_file" not in optimised and b"__llvm_prf_cnts" not in optimised


def test_the_host_build_is_guided_by_that_profile(built, workspace):
    lock = built["lock"]
    host = product(workspace, lock, "host")
    assert "CFLAGS_NODIST=-fprofile-instr-use=/profile/python.profdata" in (host / "config.log").read_text()
    info = json.loads((workspace["build"] / "store" / f"{host.name}.json").read_text())
    mounted = {entry["container"]: entry["stage"] for entry in info["stage"]["inputs"] if "stage" in entry}
    assert mounted["/profile"]["identity"] == lock["products"]["profile"]
    profile = product(workspace, lock, "profile") / "python.profdata"
    assert sha256(profile) == lock["build"]["pgo"]["sha256"]
