"""Normalising an image's file system and reading image archives (stages/image_content.py): pure logic on tar
streams made here; the real images are normalised, rebuilt and compared end to end (tests/e2e/test_images.py)."""

import gzip
import hashlib
import io
import json
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpython_wasm.stages import image_content
from cpython_wasm.stages.image_content import BadImageArchive, ImageContent

EPOCH = 1735689600
MAGIC = (3571).to_bytes(2, "little") + b"\r\n"  # CPython 3.13's .pyc magic number


def pyc(source_mtime: int, flags: int = 0) -> bytes:
    return MAGIC + flags.to_bytes(4, "little") + source_mtime.to_bytes(4, "little") + (10).to_bytes(4, "little") + b"code"


def export(members, mtime: int, owner: str = "root") -> io.BytesIO:
    """A `docker export`-like stream of (name, kind, data) in walk order, every time `mtime`."""
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.mtime, info.uname, info.gname = mtime, owner, owner
            info.pax_headers = {"atime": str(mtime), "SCHILY.xattr.user.x": "1"}
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, data
                tar.addfile(info)
            else:
                content = data(mtime) if callable(data) else data
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    stream.seek(0)
    return stream


TREE = [
    (".dockerenv", "file", b""),
    ("dev", "dir", None),
    ("dev/console", "file", b""),
    ("etc", "dir", None),
    ("etc/hosts", "file", b""),
    ("usr", "dir", None),
    ("usr/bin", "dir", None),
    ("usr/bin/git", "file", b"\x7fELF"),
    ("usr/bin/git-upload-pack", "link", "usr/bin/git"),
    ("usr/lib", "dir", None),
    ("usr/lib/x", "dir", None),
    ("usr/lib/x/__pycache__", "dir", None),
    ("usr/lib/x/__pycache__/m.cpython-313.pyc", "file", pyc),  # compiled at install: records the install time
    ("usr/lib/x/m.py", "file", b"pass\n"),
    ("var", "dir", None),
    ("var/log", "dir", None),
    ("var/log/dpkg.log", "file", b"2026-12-04 install"),
]


def normalised(stream) -> tuple[bytes, dict]:
    output = io.BytesIO()
    dropped = image_content.normalise_layer(stream, output, EPOCH)
    return output.getvalue(), dropped


@settings(max_examples=30, deadline=None)
@given(st.integers(EPOCH + 1, 2**32 - 1), st.integers(EPOCH + 1, 2**32 - 1), st.sampled_from(["root", "staff", ""]))
def test_two_builds_differing_in_times_and_owner_names_give_the_same_layer(first, second, owner):
    assert normalised(export(TREE, first, owner))[0] == normalised(export(TREE, second))[0]


def test_the_rules_drop_the_engines_and_the_builds_files_and_keep_the_rest_valid():
    layer, dropped = normalised(export(TREE, EPOCH + 1000))
    assert dropped == {".dockerenv": 1, "dev/": 1, "var/log/dpkg.log": 1}
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = {member.name: member for member in tar}
        assert set(members) == {name for name, _, _ in TREE} - {".dockerenv", "dev/console", "var/log/dpkg.log"}
        assert {member.mtime for member in members.values()} == {EPOCH}
        assert {(member.uname, member.gname) for member in members.values()} == {("", "")}
        assert all(set(member.pax_headers) <= {"SCHILY.xattr.user.x", "path", "linkpath"} for member in members.values())
        compiled = tar.extractfile(members["usr/lib/x/__pycache__/m.cpython-313.pyc"]).read()
        # Its recorded source mtime is the source's, clamped alike: Python still takes the .pyc as valid.
        assert int.from_bytes(compiled[8:12], "little") == members["usr/lib/x/m.py"].mtime
        assert members["usr/bin/git-upload-pack"].islnk()


def test_a_pyc_older_than_the_epoch_or_checked_by_hash_is_left_as_it_is():
    assert image_content.clamp_pyc(pyc(EPOCH - 5), EPOCH) == pyc(EPOCH - 5)
    assert image_content.clamp_pyc(pyc(EPOCH + 5, flags=1), EPOCH) == pyc(EPOCH + 5, flags=1)
    assert image_content.clamp_pyc(b"not a pyc at all", EPOCH) == b"not a pyc at all"


def test_an_export_out_of_walk_order_or_a_link_before_its_target_is_refused():
    with pytest.raises(ValueError, match="walk order"):
        normalised(export([("b", "file", b""), ("a", "file", b"")], EPOCH))
    with pytest.raises(ValueError, match="precedes its target"):
        normalised(export([("a", "link", "b"), ("b", "file", b"")], EPOCH))


def test_the_config_keeps_what_a_run_sees_and_nothing_of_the_build():
    built = {"Architecture": "amd64", "Os": "linux", "Created": "2026-12-04T03:00:00Z", "Parent": "sha256:" + "1" * 64,
             "Config": {"Env": ["PATH=/usr/bin", "HOME=/tmp"], "Cmd": ["/bin/bash"], "WorkingDir": "",
                        "Labels": {"a": "b"}, "Hostname": "4f2a9c", "Image": "sha256:" + "2" * 64}}
    config = json.loads(image_content.image_config(built, "sha256:" + "3" * 64, EPOCH, {"c": "d"}))
    assert config["config"] == {"Env": ["PATH=/usr/bin", "HOME=/tmp"], "Cmd": ["/bin/bash"], "Labels": {"a": "b", "c": "d"}}
    assert config["created"] == "2025-01-01T00:00:00Z" and config["rootfs"]["diff_ids"] == ["sha256:" + "3" * 64]
    assert "2026" not in json.dumps(config) and "4f2a9c" not in json.dumps(config)


# -- archives -------------------------------------------------------------------------------

def archive_of(tmp_path, layer_bytes=b"layer bytes", compressed=True):
    layer = tmp_path / "layer.tar"
    layer.write_bytes(layer_bytes)
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = image_content.image_config({"Architecture": "amd64", "Os": "linux"}, diff_id, EPOCH, {})
    path = tmp_path / ("image.tar.gz" if compressed else "image.tar")
    if compressed:
        image_content.write_compressed_archive(path, config, layer, "cpython-wasm/x:1", EPOCH)
    else:
        with open(path, "wb") as output:
            image_content.write_archive(output, config, layer, "cpython-wasm/x:1", EPOCH)
    content = ImageContent(image_content.digest(config), diff_id, len(layer_bytes))
    return path, config, content


@pytest.mark.parametrize("compressed", [True, False])
def test_an_archive_of_a_locked_image_is_read_back(tmp_path, compressed):
    path, config, content = archive_of(tmp_path, compressed=compressed)
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    assert image_content.read_archive(path, unpacked, {content.id: content}) == (config, content)
    assert (unpacked / "layer.tar").read_bytes() == b"layer bytes"


def test_the_archive_is_the_same_bytes_every_time(tmp_path_factory):
    first, _, _ = archive_of(tmp_path_factory.mktemp("first"))
    second, _, _ = archive_of(tmp_path_factory.mktemp("second"))
    assert first.read_bytes() == second.read_bytes()


def test_an_image_no_lockfile_names_is_refused_before_its_layer_is_read(tmp_path):
    path, _, content = archive_of(tmp_path)
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    with pytest.raises(BadImageArchive, match="is in no lockfile") as refused:
        image_content.read_archive(path, unpacked, {})
    assert refused.value.exit_code == 3 and "\n" not in str(refused.value)
    other = ImageContent(content.id, content.diff_id, content.size + 1)
    with pytest.raises(BadImageArchive, match="bytes, the lockfile's"):
        image_content.read_archive(path, unpacked, {content.id: other})
    assert not any(unpacked.iterdir())


def rewritten(path, change) -> bytes:
    """The archive's uncompressed tar with `change(members)` applied to its [(TarInfo, data)] list."""
    with tarfile.open(path) as tar:
        members = [(member, tar.extractfile(member).read() if member.isfile() else None) for member in tar]
    members = change(members)
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return output.getvalue()


def replaced(name, data):
    def change(members):
        result = []
        for member, old in members:
            if member.name == name:
                member = member.replace(deep=False)
                member.size = len(data)
                old = data
            result.append((member, old))
        return result
    return change


def symlink_for(name):
    def change(members):
        result = []
        for member, data in members:
            if member.name == name:
                member = member.replace(deep=False)
                member.type, member.linkname, member.size, data = tarfile.SYMTYPE, "/etc/passwd", 0, None
            result.append((member, data))
        return result
    return change


HOSTILE = {
    "a layer with other bytes": lambda config: replaced("layer.tar", b"LAYER BYTES"),
    "a manifest naming another layer": lambda config: replaced("manifest.json", json.dumps(
        [{"Config": image_content.digest(config)[7:] + ".json", "Layers": ["../../etc/passwd"]}]).encode()),
    "a manifest nested deeply": lambda config: replaced("manifest.json", b"[" * 100_000 + b"]" * 100_000),
    "a manifest that is not JSON": lambda config: replaced("manifest.json", b"\xff\xfe"),
    "the layer as a symlink": lambda config: symlink_for("layer.tar"),
    "an extra member": lambda config: lambda members: [*members, (tarfile.TarInfo("extra"), b"")],
    "the layer twice": lambda config: lambda members: [*members, *[m for m in members if m[0].name == "layer.tar"]],
    "no manifest": lambda config: lambda members: [m for m in members if m[0].name != "manifest.json"],
    "members reordered": lambda config: lambda members: list(reversed(members)),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_tampered_archive_is_refused_in_one_paragraph(tmp_path, case):
    path, config, content = archive_of(tmp_path)
    bad = tmp_path / "bad.tar"
    bad.write_bytes(rewritten(path, HOSTILE[case](config)))
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    with pytest.raises(BadImageArchive) as refused:
        image_content.read_archive(bad, unpacked, {content.id: content})
    assert "\n" not in str(refused.value) and "image-export" in str(refused.value)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_damaged_byte_is_refused_or_changes_nothing(tmp_path_factory, data):
    tmp_path = tmp_path_factory.mktemp("damaged")
    path, config, content = archive_of(tmp_path, compressed=False)
    raw = bytearray(path.read_bytes())
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] = data.draw(st.integers(0, 255).filter(lambda value: value != raw[position]))
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(bytes(raw))
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    try:
        result = image_content.read_archive(damaged, unpacked, {content.id: content})
    except BadImageArchive:
        return
    assert result == (config, content)  # a byte tar ignores (padding, a header's unused field)


def test_a_gzip_bomb_stops_at_the_locked_layer_size(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("bomb")
    path, config, content = archive_of(tmp_path, compressed=False)
    small = ImageContent(content.id, content.diff_id, 4)
    bomb = tmp_path / "bomb.tar.gz"
    with gzip.open(bomb, "wb") as output:
        output.write(path.read_bytes())
    with pytest.raises(BadImageArchive, match="the lockfile's 4"):
        image_content.read_archive(bomb, tmp_path_factory.mktemp("unpacked"), {content.id: small})
