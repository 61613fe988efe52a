"""End to end: the README's build is reproducible, verifiable and attested.

The rebuild is the one place where the suite builds the same thing twice on
purpose: from the lockfile of the custom interpreter (the README's build with
two extensions linked in: every stage of the README's build, and more), in
another directory, later, under another umask and time zone, with a fresh
store, images rebuilt without the layer cache and new containers.
"""

import json
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from cpython_wasm.records.lock import Lockfile, encode
from cpython_wasm.tools.rebuild import compare_artifacts
from tests.e2e.conftest import rebuild_command
from tests.helpers import PROJECT_ROOT, invoke, run, sha256

pytestmark = pytest.mark.e2e

SCRIPT = PROJECT_ROOT / "scripts" / "verify_artifact.py"


@pytest.fixture(scope="session")
def rebuilt(custom, background, tmp_path_factory):
    """`invoke rebuild --check` of the custom interpreter's lockfile (every stage of the default build, and the
    extensions and the relink besides), under umask 077 and another time zone: started beside the tests that
    ran since it was built (see `custom`), or now."""
    elapsed = time.time() - custom["lockfile"].stat().st_mtime
    if elapsed < 2:  # __TIME__ has one-second resolution: make sure the clock has moved on
        time.sleep(2 - elapsed)
    command, env = rebuild_command(custom, tmp_path_factory.getbasetemp())
    result = background.join("rebuild") or run(command, env=env)
    output = Path(command[command.index("--output") + 1])
    return {"result": result, "output": output, "lock": output / "lockfiles" / custom["lockfile"].name,
            "artifact": output / "dist" / custom["artifact"].name,
            "report": json.loads((output / "report.json").read_text()) if (output / "report.json").exists() else None}


def test_a_rebuild_from_the_lockfile_is_bit_for_bit_identical(custom, rebuilt):
    result = rebuilt["result"]
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr[-6000:]}"
    assert rebuilt["report"]["identical"] is True
    assert rebuilt["report"]["lock_differences"] == []
    # The whole lockfile, byte for byte: every input, .deb, rootfs, product identity and output hash (without
    # the test results `invoke test` may have added to the original: a rebuild does not run the tests).
    original = json.loads(custom["lockfile"].read_text())
    original.pop("tests", None)
    assert rebuilt["lock"].read_bytes() == encode(Lockfile.model_validate(original))
    assert sha256(rebuilt["artifact"]) == sha256(custom["artifact"])
    assert compare_artifacts(custom["artifact"], rebuilt["artifact"]) == []  # python.wasm and every stdlib file
    name = custom["artifact"].name.removesuffix(".tar.gz")
    for document in (f"{name}.provenance.json", f"{name}.cdx.json", f"{name}.devkit.tar.gz", f"{name}.debug.tar.gz"):
        assert (rebuilt["output"] / "dist" / document).read_bytes() == (custom["artifact"].parent / document).read_bytes()


def test_the_rebuild_started_from_nothing(custom, rebuilt):
    done = [line for line in rebuilt["result"].stderr.splitlines() if line.startswith("✓ ")]
    images = [line for line in done if line.startswith("✓ image ")]
    assert len(images) == 3 and not [line for line in images if "reused" in line], images
    assert not [line for line in done if re.match(r"✓ [\w-]+: reused", line)], done
    for stage in ("build-python: make-build-python", "host: make-host", "devkit", "extension: build-markupsafe",
                  "extension: build-simplejson", "interpreter: link", "package"):
        assert any(line.startswith(f"✓ {stage}") for line in done), stage
    store = rebuilt["output"] / "build" / "store"
    assert any(store.glob("*-rootfs-debian-trixie")), "the root filesystem was bootstrapped again"
    # Profile-guided: the published profile is put in the new store instead of training again (pgo.py), so
    # nothing that only training needs is built.
    profile = custom["lock"]["build"]["pgo"]
    assert any(line.startswith("✓ profile substituted from") and f"sha256 {profile['sha256'][:16]}…, the lockfile's"
               in line for line in done), done
    assert not any(store.glob("*-host-instrumented-*")) and not any(store.glob("*-profile-runtime-*"))
    # Built under umask 077, the products are still readable by everyone (as the containers need).
    source = next(store.glob("*-cpython-3.13.5-source"))
    assert stat.S_IMODE((source / "configure").stat().st_mode) == 0o755
    assert stat.S_IMODE((source / "Modules" / "Setup.local").stat().st_mode) == 0o644


def test_the_build_publishes_provenance_sbom_and_checksums(built):
    dist = built["artifact"].parent
    name = built["lock"]["artifact"]
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=dist, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert set(check.stdout.split()) >= {f"{name}.tar.gz:", f"{name}.provenance.json:", f"{name}.cdx.json:", "OK"}
    outputs = built["lock"]["outputs"]
    for document in (f"{name}.provenance.json", f"{name}.cdx.json"):
        assert outputs[document]["sha256"] == sha256(dist / document)
    statement = json.loads((dist / f"{name}.provenance.json").read_text())
    assert statement["subject"][0]["digest"]["sha256"] == sha256(built["artifact"])
    digests = {d["digest"]["sha256"] for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert {pin["sha256"] for pin in built["lock"]["inputs"]} | {built["lock"]["base"]["rootfs_sha256"]} <= digests
    sbom = (dist / f"{name}.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(sbom) is None
    assert {"cpython", "zlib", "wasi-libc", "python.wasm"} <= {c["name"] for c in json.loads(sbom)["components"]}


def bare_pythons() -> list[str]:
    """Interpreters outside this project's virtualenv: Debian's, and Python 3.9 if pyenv has one."""
    found = [str(path) for path in (Path("/usr/bin/python3"), Path.home() / ".pyenv/versions/3.9.18/bin/python3.9")
             if path.exists()]
    return found or [shutil.which("python3")]


@pytest.mark.parametrize("python", bare_pythons())
def test_the_standalone_script_verifies_the_real_artifact_in_a_bare_python(built, python, tmp_path):
    copied = shutil.copy(SCRIPT, tmp_path / "verify_artifact.py")  # as a distributor would: one file, elsewhere
    result = subprocess.run([python, "-I", "-S", copied, built["artifact"], "--lock", built["lockfile"]],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("verified:")
    assert list(tmp_path.iterdir()) == [tmp_path / "verify_artifact.py"], "nothing was unpacked"


def test_invoke_verify_checks_the_real_artifact_against_its_lockfile(built):
    result = invoke("verify", built["artifact"], "--lock", built["lockfile"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified:" in result.stdout
