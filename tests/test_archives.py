import io
import tarfile

import pytest

from cpython_wasm.archives import UnsafeArchive, check_archive, safe_extract


def make_tar(path, members):
    """members: (name, kind, extra) with kind file|dir|symlink|hardlink|chardev."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, extra in members:
            info = tarfile.TarInfo(name)
            data = None
            if kind == "file":
                data = extra.encode()
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, extra
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, extra
            elif kind == "chardev":
                info.type = tarfile.CHRTYPE
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def test_a_normal_archive_is_unpacked_without_its_top_directory(tmp_path):
    archive = make_tar(tmp_path / "ok.tar.gz", [
        ("pkg-1.0", "dir", None), ("pkg-1.0/README", "file", "hi"), ("pkg-1.0/src", "dir", None),
        ("pkg-1.0/src/a.c", "file", "int a;"), ("pkg-1.0/src/link.c", "symlink", "a.c"),
        ("pkg-1.0/src/hard.c", "hardlink", "pkg-1.0/src/a.c"),
    ])
    safe_extract(archive, tmp_path / "out", strip_components=1)
    assert (tmp_path / "out" / "README").read_text() == "hi"
    assert (tmp_path / "out" / "src" / "link.c").read_text() == "int a;"
    assert (tmp_path / "out" / "src" / "hard.c").read_text() == "int a;"


@pytest.mark.parametrize("members, expected", [
    ([("/etc/evil", "file", "x")], "absolute path"),
    ([("pkg/../../evil", "file", "x")], "escapes the destination"),
    ([("../evil", "file", "x")], "escapes the destination"),
    ([("pkg/link", "symlink", "/etc/passwd")], "points outside"),
    ([("pkg/link", "symlink", "../../etc/passwd")], "points outside"),
    ([("pkg/hard", "hardlink", "/etc/passwd")], "absolute path"),
    ([("pkg/hard", "hardlink", "pkg/not-there")], "not an earlier member"),
    ([("pkg/tty", "chardev", None)], "device or FIFO"),
    ([("pkg/a", "file", "1"), ("pkg/a", "file", "2")], "appears twice"),
    ([("pkg/a", "file", "1"), ("stray", "file", "2")], "outside the archive's top directory"),
])
def test_hostile_members_are_refused_before_anything_is_written(tmp_path, members, expected):
    archive = make_tar(tmp_path / "bad.tar.gz", [("pkg", "dir", None), ("pkg/ok", "file", "fine"), *members])
    destination = tmp_path / "jail" / "out"
    with pytest.raises(UnsafeArchive, match=expected):
        safe_extract(archive, destination, strip_components=1)
    assert list(destination.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz", "jail"]


def test_a_corrupt_archive_is_a_clear_error(tmp_path):
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    with pytest.raises(UnsafeArchive, match="could not be unpacked"):
        safe_extract(archive, tmp_path / "out")


def test_check_archive_refuses_without_writing_anything(tmp_path):
    good = make_tar(tmp_path / "sdk.tar.gz", [("wasi-sdk-25.0", "dir", None), ("wasi-sdk-25.0/bin", "dir", None),
                                              ("wasi-sdk-25.0/bin/clang-19", "file", "elf"),
                                              ("wasi-sdk-25.0/bin/clang", "symlink", "clang-19")])
    assert check_archive(good, strip_components=1) == 3
    bad = make_tar(tmp_path / "bad.tar.gz", [("wasi-sdk-25.0", "dir", None),
                                             ("wasi-sdk-25.0/bin/clang", "symlink", "../../../usr/bin/evil")])
    with pytest.raises(UnsafeArchive, match="points outside"):
        check_archive(bad, strip_components=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz", "sdk.tar.gz"]
