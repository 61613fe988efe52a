import hashlib
import os
import tarfile

import pytest

from cpython_wasm.package import manifest_of, tree_entries, write_atomically, write_tar_gz


def make_tree(root, mode, mtime):
    (root / "lib" / "python3.13").mkdir(parents=True)
    files = {"python.wasm": b"\0asm", "lib/python3.13/os.py": b"import sys\n"}
    for name, data in files.items():
        (root / name).write_bytes(data)
        os.chmod(root / name, mode)
        os.utime(root / name, (mtime, mtime))
    os.chmod(root / "python.wasm", mode | 0o100)
    return root


def test_the_tarball_depends_only_on_content(tmp_path):
    one = make_tree(tmp_path / "one" / "artifact", 0o600, 1_000_000)
    two = make_tree(tmp_path / "two" / "artifact", 0o664, 2_000_000)
    write_tar_gz(tmp_path / "one.tar.gz", tree_entries(one, "artifact"), mtime=1749600000)
    write_tar_gz(tmp_path / "two.tar.gz", tree_entries(two, "artifact"), mtime=1749600000)
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()
    with tarfile.open(tmp_path / "one.tar.gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == sorted(members)
    assert {m.mtime for m in members.values()} == {1749600000}
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {(0, 0, "", "")}
    assert members["artifact/python.wasm"].mode == 0o755
    assert members["artifact/lib/python3.13/os.py"].mode == 0o644
    assert members["artifact/lib"].mode == 0o755


def test_the_manifest_lists_every_file_with_its_hash(tmp_path):
    root = make_tree(tmp_path / "artifact", 0o644, 0)
    (root / "manifest.json").write_text("{}")
    manifest = manifest_of(root)
    assert sorted(manifest) == ["lib/python3.13/os.py", "python.wasm"]
    assert manifest["python.wasm"] == {"sha256": hashlib.sha256(b"\0asm").hexdigest(), "size": 4}


def test_symlinks_are_not_packaged(tmp_path):
    root = make_tree(tmp_path / "artifact", 0o644, 0)
    (root / "link").symlink_to("python.wasm")
    with pytest.raises(ValueError, match="symbolic links"):
        list(tree_entries(root, "artifact"))


def test_atomic_writes_replace_whole_files_and_leave_no_temp(tmp_path):
    target = tmp_path / "dist" / "a.tar.gz"
    write_atomically(target, b"old")
    source = tmp_path / "new"
    source.write_bytes(b"new" * 1000)
    write_atomically(target, source)
    assert target.read_bytes() == b"new" * 1000
    assert [p.name for p in target.parent.iterdir()] == ["a.tar.gz"]
