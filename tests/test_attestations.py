"""Provenance, SBOM and SHA256SUMS, made from a committed lockfile (no build needed)."""

import copy
import hashlib
import json
import subprocess

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.records import provenance, sbom
from cpython_wasm.records.lock import read_lock
from cpython_wasm.records.verify import record_checksums
from cpython_wasm.targets import target_of
from tests.helpers import PROJECT_ROOT, sha256


@pytest.fixture
def plan(lock):
    return Recipes().resolve("3.13.5", 25, "debian", arch=lock["build"]["host_arch"])


def test_provenance_is_a_slsa_v1_statement_about_the_artifact(lock):
    document = json.loads(provenance.encode(provenance.statement(lock)))
    assert document["_type"] == "https://in-toto.io/Statement/v1"
    assert document["predicateType"] == "https://slsa.dev/provenance/v1"
    names = [f"python-3.13.5-wasi_sdk-25-debian{suffix}.tar.gz" for suffix in ("", ".debug", ".devkit")]
    assert document["subject"] == [{"name": name, "digest": {"sha256": lock["outputs"][name]["sha256"]}} for name in names]
    definition = document["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["python"] == "3.13.5"
    assert definition["externalParameters"]["recipes"] == lock["recipes"]
    assert definition["internalParameters"]["source_date_epoch"] == 1749600000
    assert document["predicate"]["runDetails"]["builder"]["id"] == provenance.BUILDER_ID


def test_provenance_resolves_every_input_of_the_lockfile(lock):
    dependencies = provenance.statement(lock)["predicate"]["buildDefinition"]["resolvedDependencies"]
    digests = {d["digest"]["sha256"] for d in dependencies}
    assert all(d["uri"] and len(d["digest"]["sha256"]) == 64 for d in dependencies)
    assert {pin["sha256"] for pin in lock["inputs"]} <= digests
    assert lock["base"]["rootfs_sha256"] in digests
    debs = {p["sha256"] for image in lock["images"].values() for p in image["packages"]}
    assert debs <= digests
    contexts = {sha for image in lock["images"].values() for sha in image["context"].values()}
    assert contexts <= digests
    # The images the stages ran in, by content (what `invoke image-import` checks an archive against).
    assert {image["id"].removeprefix("sha256:") for image in lock["images"].values()} <= digests
    source = next(d for d in dependencies if d["name"] == "Python-3.13.5.tar.xz")
    assert source["uri"] == "https://www.python.org/ftp/python/3.13.5/Python-3.13.5.tar.xz"


def test_provenance_of_a_registry_base_names_its_digest(lock):
    registry = copy.deepcopy(lock)
    digest = "ab" * 32
    registry["base"].update(rootfs_sha256=None, image=f"localhost:5000/debian@sha256:{digest}")
    dependencies = provenance.statement(registry)["predicate"]["buildDefinition"]["resolvedDependencies"]
    base = next(d for d in dependencies if d["uri"].startswith("docker://"))
    assert base["digest"] == {"sha256": digest}


def test_the_sbom_is_valid_cyclonedx_listing_what_is_compiled_in(plan, lock):
    text = sbom.encode(sbom.bom(plan, lock, target_of(plan))).decode()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    document = json.loads(text)
    assert document["specVersion"] == "1.6"
    artifact = document["metadata"]["component"]
    assert artifact["hashes"][0]["content"] == lock["outputs"]["python-3.13.5-wasi_sdk-25-debian.tar.gz"]["sha256"]
    components = {c["name"]: c for c in document["components"]}
    assert components["zlib"]["version"] == "1.3.1"
    assert components["zlib"]["hashes"][0]["content"] == plan.libraries[0].source.sha256
    assert components["cpython"]["hashes"][0]["content"] == plan.release.source.sha256
    assert components["python.wasm"]["hashes"][0]["content"] == lock["outputs"]["python.wasm"]["sha256"]
    assert components["wasi-libc"]["version"] == plan.toolchain.packages["wasi-libc"]
    tools = {t["name"]: t["version"] for t in document["metadata"]["tools"]["components"]}
    assert {name: tools[name] for name in plan.toolchain.packages} == plan.toolchain.packages
    assert tools["wasmtime"] == plan.wasmtime.version
    devkit_name = "python-3.13.5-wasi_sdk-25-debian.devkit.tar.gz"
    assert components[devkit_name]["hashes"][0]["content"] == lock["outputs"][devkit_name]["sha256"]
    wasm = next(d for d in document["dependencies"] if d["ref"] == "python.wasm")
    assert set(wasm["dependsOn"]) == {c["bom-ref"] for c in document["components"]} - {"python.wasm", devkit_name}
    devkit = next(d for d in document["dependencies"] if d["ref"] == devkit_name)
    assert set(devkit["dependsOn"]) == set(wasm["dependsOn"])  # the same code, as archives


def test_the_sbom_of_the_release_provider_names_the_sdk_tarball(lock):
    plan = Recipes().resolve("3.13.5", 24, "release", arch="x86_64")
    release_lock = copy.deepcopy(lock)
    release_lock["artifact"] = plan.artifact_name
    release_lock["outputs"][f"{plan.artifact_name}.tar.gz"] = release_lock["outputs"].pop(
        "python-3.13.5-wasi_sdk-25-debian.tar.gz")
    document = json.loads(sbom.encode(sbom.bom(plan, release_lock, target_of(plan))))
    tools = {t["name"]: t for t in document["metadata"]["tools"]["components"]}
    assert tools["wasi-sdk"]["hashes"][0]["content"] == plan.sdk_tarball.sha256
    components = {c["name"]: c for c in document["components"]}
    assert components["wasi-libc"]["version"] == plan.sdk_recipe.wasi_libc


def test_provenance_and_sbom_are_the_same_bytes_every_time(plan, lock):
    assert provenance.encode(provenance.statement(lock)) == provenance.encode(provenance.statement(copy.deepcopy(lock)))
    first, second = sbom.encode(sbom.bom(plan, lock, target_of(plan))), sbom.encode(sbom.bom(plan, copy.deepcopy(lock), target_of(plan)))
    assert first == second
    assert b"1749600000" not in first and b"2025-06-11T00:00:00" in first  # SOURCE_DATE_EPOCH, not the clock


def test_sha256sums_is_what_sha256sum_checks_and_keeps_other_artifacts(tmp_path):
    (tmp_path / "a.tar.gz").write_bytes(b"a")
    (tmp_path / "b.tar.gz").write_bytes(b"b")
    record_checksums(tmp_path, [tmp_path / "a.tar.gz"])
    record_checksums(tmp_path, [tmp_path / "b.tar.gz"])
    lines = (tmp_path / "SHA256SUMS").read_text().splitlines()
    assert lines == [f"{sha256(tmp_path / 'a.tar.gz')}  a.tar.gz", f"{sha256(tmp_path / 'b.tar.gz')}  b.tar.gz"]
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True).returncode == 0
    (tmp_path / "a.tar.gz").write_bytes(b"changed")
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True).returncode == 1
    (tmp_path / "b.tar.gz").unlink()  # a removed artifact leaves the list
    record_checksums(tmp_path, [tmp_path / "a.tar.gz"])
    assert (tmp_path / "SHA256SUMS").read_text() == f"{sha256(tmp_path / 'a.tar.gz')}  a.tar.gz\n"


def test_the_emscripten_sbom_and_provenance_name_emscripten():
    lock = read_lock(PROJECT_ROOT / "lockfiles" / "python-3.13.5-emscripten-3.1.69-debian.json")
    plan = Recipes().resolve("3.13.5", "3.1.69", "debian", "emscripten", arch=lock["build"]["host_arch"])
    text = sbom.encode(sbom.bom(plan, lock, target_of(plan))).decode()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    document = json.loads(text)
    components = {c["name"]: c for c in document["components"]}
    assert set(components) == {"python.wasm", "cpython", "zlib", "bzip2", "sqlite", "xz", "libffi", "emscripten",
                               "xterm"}
    # The page's JavaScript, shipped in the artifact: an npm component the artifact depends on.
    assert components["xterm"]["purl"] == "pkg:npm/xterm@4.18.0"
    assert components["xterm"]["bom-ref"] in {d["ref"]: d for d in document["dependencies"]}[lock["artifact"]]["dependsOn"]
    assert components["emscripten"]["version"] == plan.toolchain.packages["emscripten"]
    tools = {t["name"]: t["version"] for t in document["metadata"]["tools"]["components"]}
    assert tools == plan.toolchain.packages  # Node included; no wasmtime
    parameters = provenance.statement(lock)["predicate"]["buildDefinition"]["externalParameters"]
    assert (parameters["emsdk"], parameters["target"]) == ("3.1.69", "wasm32-unknown-emscripten")
    assert "wasi_sdk" not in parameters


@pytest.mark.parametrize("flavour", [None, "snapshot"])
def test_the_sbom_of_a_wasi_build_names_the_wasmtime_cli_of_its_image(flavour):
    plan = Recipes().resolve("3.13.5", 25, "debian", arch="x86_64", flavour=flavour)
    lock = read_lock(PROJECT_ROOT / "lockfiles" / f"{plan.artifact_name}.json")
    document = sbom.encode(sbom.bom(plan, lock, target_of(plan)))
    tools = {t["name"]: t for t in json.loads(document)["metadata"]["tools"]["components"]}
    archive = plan.wasmtime_cli.providers[plan.wasmtime_cli.provider]["x86_64"]
    assert tools["wasmtime-cli"]["hashes"][0]["content"] == archive.sha256
    assert tools["wasmtime-cli"]["purl"] == f"pkg:github/bytecodealliance/wasmtime@v{plan.wasmtime_cli.version}"
    assert ("wizer" in tools["wasmtime-cli"]["description"]) == (flavour == "snapshot")
    # The lockfile records the hash of exactly this SBOM.
    assert hashlib.sha256(document).hexdigest() == lock["outputs"][sbom.sbom_name(plan.artifact_name)]["sha256"]
