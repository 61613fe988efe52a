import json

import pytest

from cpython_wasm.errors import UserError
from cpython_wasm.lock import LOCKFILE_VERSION, encode, read_lock, write_lock


def test_round_trip_is_sorted_and_byte_stable(tmp_path):
    lock = {"outputs": {"b": {"sha256": "1" * 64}, "a": {"sha256": "2" * 64}}, "artifact": "x"}
    path = write_lock(tmp_path / "x.json", lock)
    text = path.read_text()
    assert read_lock(path) == {"lockfile_version": LOCKFILE_VERSION, **lock}
    assert text.index('"a"') < text.index('"b"')  # sorted keys: diff-friendly
    write_lock(tmp_path / "y.json", dict(reversed(list(lock.items()))))
    assert (tmp_path / "y.json").read_bytes() == path.read_bytes()
    assert not list(tmp_path.glob(".*"))  # no temp file left behind


def test_encode_has_no_timestamps_or_floats_added():
    assert json.loads(encode({"a": 1})) == {"a": 1}


@pytest.mark.parametrize("content, expected", [
    (None, "does not exist"),
    ("{not json", "cannot be read as JSON"),
    ('{"lockfile_version": 99}', "lockfile_version 99"),
    ('[1, 2]', "lockfile_version None"),
])
def test_unreadable_lockfiles_are_explained(tmp_path, content, expected):
    path = tmp_path / "lock.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=expected):
        read_lock(path)
