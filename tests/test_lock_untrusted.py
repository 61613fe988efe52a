"""A lockfile is untrusted input: read_lock bounds what it reads and refuses, naming the key, what no build writes
(a mis-shaped section, a number out of range, an output that is no plain file name, a repeated key, NaN)."""

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpython_wasm.errors import UserError
from cpython_wasm.recipes.grammar import MAX_EPOCH
from cpython_wasm.records.lock import MAX_LOCK_BYTES, read_lock
from tests.helpers import COMMITTED_LOCKFILE, setting

ARTIFACT = COMMITTED_LOCKFILE.stem
EXAMPLES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def refusal(path) -> str:
    with pytest.raises(UserError) as error:
        read_lock(path)
    message = str(error.value)
    assert "\n" not in message and len(message) < 4000, message
    return message


def written(tmp_path, lock: dict) -> os.PathLike:
    path = tmp_path / "lock.json"
    path.write_text(json.dumps(lock))
    return path


def test_an_endless_device_or_a_fifo_is_refused_unread(tmp_path):
    assert "/dev/zero is not a regular file" in refusal("/dev/zero")
    fifo = tmp_path / "lock.json"
    os.mkfifo(fifo)  # nobody writes to it: opening it for reading would wait for ever
    assert "is not a regular file" in refusal(fifo)


def test_a_huge_file_is_refused_unread(tmp_path):
    path = tmp_path / "lock.json"
    with open(path, "wb") as file:
        file.truncate(2**40)  # sparse: a terabyte that takes no space
    assert f"is larger than {16 << 20} bytes" in refusal(path)


def test_a_file_just_under_the_bound_is_read(tmp_path, lock):
    text = json.dumps(lock)
    path = tmp_path / "lock.json"
    path.write_text(text + " " * (MAX_LOCK_BYTES - len(text.encode())))
    assert read_lock(path) == lock


@pytest.mark.parametrize("text, expected", [
    ('{"lockfile_version": 1, "lockfile_version": 1}', "key 'lockfile_version' appears more than once"),
    ('{"lockfile_version": 1, "artifact": "a", "outputs": {"a.tar.gz": {"sha256": "' + "0" * 64 + '", "size": NaN}}}',
     "key `outputs.a.tar.gz.size`: input should be a valid integer, got nan"),
    (COMMITTED_LOCKFILE.read_text().replace(
        f'"passed": {json.loads(COMMITTED_LOCKFILE.read_text())["tests"]["fast"]["modules"]["passed"]},',
        '"passed": Infinity,', 1), "key `tests`: `tests.fast.modules.passed` holds inf, which is no JSON number"),
    (COMMITTED_LOCKFILE.read_text().replace('"tests": {', '"tests": {"deep": {"x": ' + "[" * 900 + "NaN" + "]" * 900
                                            + '},', 1), "key `tests`: `tests.deep.x.0.0.0"),  # the key, shortened
    ('{"lockfile_version": 1, "x": ' + "9" * 5000 + "}", "cannot be read as JSON"),
    ("[" * 100_000 + "]" * 100_000, "cannot be read as JSON: maximum recursion depth"),
])
def test_json_that_readers_may_read_differently_is_refused(tmp_path, text, expected):
    path = tmp_path / "lock.json"
    path.write_text(text)
    assert expected in refusal(path)


def test_a_repeated_key_deep_inside_is_refused(tmp_path):
    text = COMMITTED_LOCKFILE.read_text().replace('"configure_host_args": [',
                                                  '"configure_host_args": ["--without-pymalloc"],\n'
                                                  '    "configure_host_args": [', 1)
    path = tmp_path / "lock.json"
    path.write_text(text)
    assert "key 'configure_host_args' appears more than once in one object" in refusal(path)


_set = setting

TARBALL = f"{ARTIFACT}.tar.gz"


@pytest.mark.parametrize("change, expected", [
    # strings where objects are expected, and the reverse
    (_set("build", "x"), "key `build`: input should be a valid dictionary"),
    (_set("base", []), "key `base`: input should be a valid dictionary"),
    (_set("outputs", "python.wasm", "sha"), "key `outputs.python.wasm`: input should be a valid dictionary"),
    (_set("build", "configure_host_args", "--with-pymalloc"), "key `build.configure_host_args`: input should be a "
                                                              "valid list"),
    (_set("build", "host_environment", "SOURCE_DATE_EPOCH", {"a": "b"}), "key `build.host_environment.SOURCE_DATE_EPOCH`"),
    # deep nesting where a value is expected
    (_set("build", "python", json.loads("[" * 500 + "]" * 500)), "key `build.python`: input should be a valid string"),
    # numbers bounded
    (_set("build", "source_date_epoch", -1), "key `build.source_date_epoch`: input should be greater than or equal to 0"),
    (_set("build", "source_date_epoch", MAX_EPOCH + 1), "key `build.source_date_epoch`: input should be less than or "
                                                       "equal to 4294967295"),
    (_set("base", "source_date_epoch", 10**30), "key `base.source_date_epoch`"),
    (_set("build", "source_date_epoch", True), "key `build.source_date_epoch`: input should be a valid integer"),
    (_set("build", "wasi_sdk", 10**6), "key `build.wasi_sdk`: input should be less than or equal to 999"),
    (_set("build", "wasi_sdk", 0), "key `build.wasi_sdk`: input should be greater than or equal to 1"),
    (_set("outputs", "python.wasm", "size", 0), "key `outputs.python.wasm.size`: input should be greater than 0"),
    (_set("outputs", "python.wasm", "size", 2**63), "key `outputs.python.wasm.size`: input should be less than or equal"),
    (_set("inputs", 0, "size", -5), "key `inputs.0.size`: input should be greater than 0"),
    # outputs and the artifact: plain file names
    (_set("outputs", "../evil", {"sha256": "0" * 64, "size": 1}), "key `outputs.../evil.[key]`: expected a plain file name"),
    (_set("outputs", "..", {"sha256": "0" * 64, "size": 1}), "expected a plain file name"),
    (_set("outputs", "-rf", {"sha256": "0" * 64, "size": 1}), "expected a plain file name"),
    (_set("outputs", ".hidden", {"sha256": "0" * 64, "size": 1}), "expected a plain file name"),
    (_set("outputs", "a\x1b[31mb", {"sha256": "0" * 64, "size": 1}), "expected a plain file name"),
    (_set("outputs", "a/b", {"sha256": "0" * 64, "size": 1}), "expected a plain file name"),
    (_set("artifact", "-python"), "key `artifact`: expected a plain file name"),
    (_set("artifact", ".."), "key `artifact`: expected a plain file name"),
    # values that reach a message or a build: of their grammar
    (_set("build", "python", "3.13.5\x1b[2J"), "key `build.python`: expected a CPython release"),
    (_set("build", "host_arch", "x86_64\n"), "key `build.host_arch`: expected a host architecture"),
    (_set("base", "mirror", "http://deb.debian.org/debian\ndeb [trusted=yes] http://evil/ x main"),
     "key `base.mirror`: expected an http:// or https:// URL"),
    (_set("build", "configure_host_args", 0, "--with-x=$(id)"), "key `build.configure_host_args.0`: expected a "
                                                                 "configure argument"),
    (_set("build", "host_environment", "CC;id", "x"), "key `build.host_environment.CC;id.[key]`"),
])
def test_a_mis_shaped_lockfile_is_refused_naming_the_key(tmp_path, lock, change, expected):
    change(lock)
    message = refusal(written(tmp_path, lock))
    assert message.startswith(f"Lockfile {tmp_path / 'lock.json'} is malformed: ") and expected in message, message


@EXAMPLES
@given(name=st.text(min_size=1, max_size=20))
def test_only_a_plain_file_name_names_the_profile(tmp_path, lock, name):
    """build.pgo.file becomes a path under profiles/ and dist/ (a rebuild reads it there): it cannot escape them."""
    lock = json.loads(json.dumps(lock))
    lock["build"]["pgo"] = {"file": name, "sha256": "0" * 64, "size": 1}
    path = written(tmp_path, lock)
    plain = (name[0].isascii() and name[0].isalnum() and all(c.isascii() and (c.isalnum() or c in "._+~-") for c in name))
    if plain:
        assert read_lock(path)["build"]["pgo"]["file"] == name
    else:
        assert "key `build.pgo.file`: expected a plain file name" in refusal(path)


@EXAMPLES
@given(name=st.text(min_size=1, max_size=20))
def test_only_plain_file_names_name_outputs(tmp_path, lock, name):
    lock = json.loads(json.dumps(lock))
    lock["outputs"][name] = {"sha256": "0" * 64, "size": 1}
    path = written(tmp_path, lock)
    plain = (name[0].isascii() and name[0].isalnum() and all(c.isascii() and (c.isalnum() or c in "._+~-") for c in name))
    if plain:
        assert name in read_lock(path)["outputs"]
    else:
        assert "expected a plain file name" in refusal(path)


@EXAMPLES
@given(epoch=st.integers(-(2**70), 2**70))
def test_source_date_epochs_are_bounded(tmp_path, lock, epoch):
    lock = json.loads(json.dumps(lock))
    lock["build"]["source_date_epoch"] = epoch
    path = written(tmp_path, lock)
    if 0 <= epoch <= MAX_EPOCH:
        assert read_lock(path)["build"]["source_date_epoch"] == epoch
    else:
        assert "key `build.source_date_epoch`" in refusal(path)


@pytest.mark.parametrize("value", ["3" * 1_000_000, ["3.13.5"] * 200_000, {str(n): n for n in range(100_000)}])
def test_a_value_quoted_in_a_message_is_shortened(tmp_path, lock, value):
    lock["build"]["python"] = value
    message = refusal(written(tmp_path, lock))
    assert "key `build.python`" in message and len(message) < 1500
