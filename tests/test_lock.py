import json

import pytest

from cpython_wasm.errors import UserError
from cpython_wasm.records.lock import (
    LOCKFILE_VERSION,
    Lockfile,
    OutputsLockfile,
    encode,
    read_build_lock,
    read_lock,
    with_test_results,
    write_lock,
)
from tests.helpers import COMMITTED_LOCKFILE, PROJECT_ROOT

COMMITTED_LOCKFILES = sorted((PROJECT_ROOT / "lockfiles").glob("*.json"))
ARTIFACT = "python-3.13.5-wasi_sdk-25-debian"


def test_round_trip_is_sorted_and_byte_stable(tmp_path):
    lock = {"outputs": {"x.tar.gz": {"sha256": "3" * 64, "size": 3}, "b": {"sha256": "1" * 64, "size": 1},
                        "a": {"sha256": "2" * 64, "size": 2}}, "artifact": "x", "lockfile_version": LOCKFILE_VERSION}
    path = write_lock(tmp_path / "x.json", OutputsLockfile.model_validate(lock))
    text = path.read_text()
    assert read_lock(path) == lock
    assert text.index('"a"') < text.index('"b"')  # sorted keys: diff-friendly
    write_lock(tmp_path / "y.json", OutputsLockfile.model_validate(dict(reversed(list(lock.items())))))
    assert (tmp_path / "y.json").read_bytes() == path.read_bytes()
    assert not list(tmp_path.glob(".*"))  # no temp file left behind


@pytest.mark.parametrize("lockfile", COMMITTED_LOCKFILES, ids=lambda path: path.name)
def test_the_model_writes_every_committed_lockfile_byte_for_byte(lockfile):
    """The lockfile is written from its model: read into it and written out, a committed lockfile is the same."""
    assert encode(Lockfile.model_validate(read_build_lock(lockfile))) == lockfile.read_bytes()


@pytest.mark.parametrize("content, expected", [
    (None, "does not exist"),
    ("{not json", "cannot be read as JSON"),
    ("[" * 100_000, "cannot be read as JSON: maximum recursion depth"),
    ('{"lockfile_version": 99}', "lockfile_version 99"),
    ('{"lockfile_version": true}', "lockfile_version True"),
    ('{"lockfile_version": 1.0}', "lockfile_version 1.0"),
    ('[1, 2]', "lockfile_version None"),
])
def test_unreadable_lockfiles_are_explained(tmp_path, content, expected):
    path = tmp_path / "lock.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=expected):
        read_lock(path)


@pytest.mark.parametrize("path", COMMITTED_LOCKFILES, ids=lambda path: path.name)
def test_every_committed_lockfile_is_well_formed(path):
    assert read_lock(path) == json.loads(path.read_text())  # the plain dict: a check, not a conversion


def test_test_results_and_a_debug_artifact_are_accepted(tmp_path, lock):
    lock["outputs"][f"{ARTIFACT}.debug.tar.gz"] = {"sha256": "4" * 64, "size": 4}
    lock["tests"] = {"fast": {"tests_recipe_sha256": "5" * 64, "tests": {"run": 3, "failed": 0}, "passed": True,
                              "modules": {"run": 1, "failed": [], "skipped": []}, "known_failures": [],
                              "unexpected_failures": []}}
    path = tmp_path / "lock.json"
    path.write_text(json.dumps(lock))
    assert read_lock(path) == lock


def test_a_lockfile_of_outputs_only_is_accepted(tmp_path, lock):
    """What verification needs: the artifact's hashes, without how it was built."""
    path = tmp_path / "lock.json"
    path.write_text(json.dumps({key: lock[key] for key in ("lockfile_version", "artifact", "outputs")}))
    assert read_lock(path)["outputs"] == lock["outputs"]


def _set(value):
    return lambda parent, key: parent.__setitem__(key, value)


def _delete(parent, key):
    del parent[key]


TARBALL = f"{ARTIFACT}.tar.gz"


@pytest.mark.parametrize("path, change, expected", [
    (("outputs", "python.wasm", "sha256"), _delete, "missing key `outputs.python.wasm.sha256`"),
    (("outputs", "python.wasm", "sha256"), _set("0" * 63), "key `outputs.python.wasm.sha256`: expected a sha256"),
    (("outputs", "python.wasm", "sha256"), _set("g" * 64), "key `outputs.python.wasm.sha256`: expected a sha256"),
    (("outputs", "python.wasm", "size"), _set("12"), "key `outputs.python.wasm.size`: input should be a valid integer, got '12'"),
    (("outputs", TARBALL), _delete, f"key `outputs`: expected the artifact's own entry `outputs.{TARBALL}`"),
    (("build", "wasi_sdk"), _set("25"), "key `build.wasi_sdk`: input should be a valid integer"),
    (("build", "wasi_sdk"), _delete, "key `build`: expected one toolchain, `build.wasi_sdk` or `build.emsdk`, got none"),
    (("build", "emsdk"), _set("3.1.69"), "got wasi_sdk and emsdk"),
    (("build", "provider"), _set("mine"), "key `build.provider`: input should be 'release' or 'debian'"),
    (("build", "official_pairing"), _set(0), "key `build.official_pairing`: input should be a valid boolean"),
    (("build", "sdk"), _set(25), "unknown key `build.sdk`"),
    (("images",), _delete, "missing key `images`"),
    (("images", "toolchain", "tag"), _delete, "missing key `images.toolchain.tag`"),
    (("images", "native", "packages"), _set({}), "key `images.native.packages`: input should be a valid list"),
    (("base", "rootfs_sha256"), _set("c199ca44"), "key `base.rootfs_sha256`: expected a sha256"),
    (("inputs", 0, "urls", 0), _set("file:///etc/passwd"), "key `inputs.0.urls.0`: expected an http:// or https:// URL"),
    (("recipes", "recipes/cpython/3.13.toml"), _set(None), "key `recipes.recipes/cpython/3.13.toml`: input should be a valid string"),
    (("artifact",), _set("../../elsewhere"), "key `artifact`: expected a plain file name"),
    (("tests",), _set([]), "key `tests`: input should be a valid dictionary"),
])
def test_a_malformed_lockfile_names_the_file_and_the_key(tmp_path, lock, path, change, expected):
    parent = lock
    for key in path[:-1]:
        parent = parent[key]
    change(parent, path[-1])
    lockfile = tmp_path / "lock.json"
    lockfile.write_text(json.dumps(lock))
    with pytest.raises(UserError) as error:
        read_lock(lockfile)
    message = str(error.value)
    assert message.startswith(f"Lockfile {lockfile} is malformed: ") and expected in message, message
    assert "\n" not in message


def test_many_problems_make_one_paragraph_of_reasonable_length(tmp_path, lock):
    for package in lock["images"]["native"]["packages"]:
        package["sha256"] = 1
    lockfile = tmp_path / "lock.json"
    lockfile.write_text(json.dumps(lock))
    with pytest.raises(UserError, match=r"; and \d+ more\. ") as error:
        read_lock(lockfile)
    assert len(str(error.value)) < 2000


def test_a_lockfile_without_test_results_records_how_it_was_built(tmp_path, lock):
    """`tests` is written by `invoke test`, later: a lockfile straight from `invoke build` has none."""
    from cpython_wasm.records.lock import read_build_lock

    lock.pop("tests", None)
    path = tmp_path / "lock.json"
    path.write_text(json.dumps(lock))
    assert read_build_lock(path)["artifact"] == lock["artifact"]


def test_a_rebuilt_lockfile_keeps_the_test_results_of_the_same_artifact_even_from_an_older_lockfile(tmp_path):
    current = Lockfile.model_validate(json.loads(COMMITTED_LOCKFILE.read_text()))
    older = json.loads(COMMITTED_LOCKFILE.read_text())
    del older["images"]["native"]["id"]  # written before a key this version records: refused whole by read_lock
    older["tests"] = {"fast": {"passed": True, "tests": {"run": 5}}}
    previous = tmp_path / "previous.json"
    previous.write_text(json.dumps(older))
    assert with_test_results(current.model_copy(update={"tests": {}}), previous).tests == older["tests"]
    # Of another artifact, or not numbers JSON has: dropped.
    other = json.loads(json.dumps(older))
    other["outputs"][f"{current.artifact}.tar.gz"]["sha256"] = "0" * 64
    previous.write_text(json.dumps(other))
    assert with_test_results(current.model_copy(update={"tests": {}}), previous).tests == {}
    previous.write_text(json.dumps(older).replace('"run": 5', '"run": NaN'))
    assert with_test_results(current.model_copy(update={"tests": {}}), previous).tests == {}
