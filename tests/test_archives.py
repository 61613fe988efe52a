import gzip
import io
import lzma
import random
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpython_wasm.inputs import archives
from cpython_wasm.inputs.archives import UnsafeArchive, check_archive, max_unpacked_bytes, safe_extract

MB = 1_000_000


def make_tar(path, members, mode="w:gz"):
    """members: (name, kind, extra) with kind file|dir|symlink|hardlink|chardev|fifo; extra: a file's text or a link's target."""
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tar:
        for name, kind, extra in members:
            info = tarfile.TarInfo(name)
            data = None
            if kind == "file":
                data = extra.encode() if isinstance(extra, str) else extra
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, extra
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, extra
            elif kind == "chardev":
                info.type = tarfile.CHRTYPE
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            if "\0" in name or "\0" in info.linkname:  # a NUL ends a ustar header field; a PAX header carries it whole
                info.pax_headers = {"path": name, "linkpath": info.linkname}
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def tree(path):
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))


def assert_refused(tmp_path, archive, member, expected, strip_components=1):
    """Both safe_extract and check_archive refuse `archive`, naming it and `member`; nothing at all is written."""
    before = tree(tmp_path)
    destination = tmp_path / "jail" / "out"
    destination.parent.mkdir(exist_ok=True)
    for refuse in (lambda: safe_extract(archive, destination, strip_components),
                   lambda: check_archive(archive, strip_components)):
        with pytest.raises(UnsafeArchive, match=expected) as refused:
            refuse()
        message = str(refused.value)
        assert archive.name in message and (member is None or repr(member) in message), message
        assert "\n" not in message
    assert tree(tmp_path) == sorted({*before, "jail"})  # not even the destination: nothing new anywhere


def test_a_normal_archive_is_unpacked_without_its_top_directory(tmp_path):
    archive = make_tar(tmp_path / "ok.tar.gz", [
        ("pkg-1.0", "dir", None), ("pkg-1.0/README", "file", "hi"), ("pkg-1.0/src", "dir", None),
        ("pkg-1.0/src/a.c", "file", "int a;"), ("pkg-1.0/src/link.c", "symlink", "a.c"),
        ("pkg-1.0/src/hard.c", "hardlink", "pkg-1.0/src/a.c"), ("pkg-1.0/src/up", "symlink", ".."),
        ("pkg-1.0/top-readme", "symlink", "src/up/README"), ("pkg-1.0/src/hard2.c", "hardlink", "pkg-1.0/src/hard.c"),
    ])
    assert check_archive(archive, strip_components=1) == 8
    safe_extract(archive, tmp_path / "out", strip_components=1)
    assert (tmp_path / "out" / "README").read_text() == "hi"
    assert (tmp_path / "out" / "src" / "link.c").read_text() == "int a;"
    assert (tmp_path / "out" / "src" / "hard.c").read_text() == "int a;"
    assert (tmp_path / "out" / "src" / "hard2.c").read_text() == "int a;"
    assert (tmp_path / "out" / "top-readme").read_text() == "hi"


@pytest.mark.parametrize("members, member, expected", [
    ([("/etc/evil", "file", "x")], "/etc/evil", "absolute path"),
    ([("pkg/../../evil", "file", "x")], "pkg/../../evil", "escapes the destination"),
    ([("../evil", "file", "x")], "../evil", "escapes the destination"),
    ([("pkg/link", "symlink", "/etc/passwd")], "pkg/link", "points outside"),
    ([("pkg/link", "symlink", "../../etc/passwd")], "pkg/link", "points outside"),
    ([("pkg/link", "symlink", "../pkg/ok")], "pkg/link", "points outside"),  # into the top directory, which is stripped
    ([("pkg/hard", "hardlink", "/etc/passwd")], "pkg/hard", "hard link to '/etc/passwd', which has an absolute path"),
    ([("pkg/hard", "hardlink", "pkg/../../x")], "pkg/hard", "which escapes the destination"),
    ([("pkg/hard", "hardlink", "pkg/not-there")], "pkg/hard", "not an earlier member"),
    ([("pkg/hard", "hardlink", "pkg/hard")], "pkg/hard", "not an earlier member"),
    ([("pkg/tty", "chardev", None)], "pkg/tty", "device or FIFO"),
    ([("pkg/fifo", "fifo", None)], "pkg/fifo", "device or FIFO"),
    ([("pkg/a", "file", "1"), ("pkg/a", "file", "2")], "pkg/a", "appears twice"),
    ([("pkg/a", "file", "1"), ("pkg/./a", "file", "2")], "pkg/./a", "appears twice"),
    ([("pkg/a", "file", "1"), ("stray", "file", "2")], "stray", "outside the archive's top directory"),
    # Symlink chains: each link lexically inside, the chain climbing out once the kernel follows it.
    ([("pkg/d/up", "symlink", ".."), ("pkg/esc", "symlink", "d/up/../..")], "pkg/esc", "points outside"),
    ([("pkg/esc", "symlink", "d/up/../.."), ("pkg/d/up", "symlink", "..")], "pkg/esc", "points outside"),  # defined later
    ([("pkg/l1", "symlink", "l2/x"), ("pkg/l2", "symlink", "l3"), ("pkg/l3", "symlink", "d/up/.."),
      ("pkg/d/up", "symlink", "..")], "pkg/l1", "points outside"),
    ([("pkg/loop1", "symlink", "loop2"), ("pkg/loop2", "symlink", "loop1/x")], "pkg/loop1", "or loops"),
    # Written through a symlink (or through a file), in either order.
    ([("pkg/sub", "dir", None), ("pkg/a", "symlink", "sub"), ("pkg/a/passwd", "file", "root::0:0")],
     "pkg/a/passwd", "lies under 'pkg/a', which is a symlink"),
    ([("pkg/a/passwd", "file", "root::0:0"), ("pkg/a", "symlink", "sub")], "pkg/a/passwd", "which is a symlink"),
    ([("pkg/f", "file", "x"), ("pkg/f/g", "file", "y")], "pkg/f/g", "lies under 'pkg/f', which is not a directory"),
    # Hard links to anything but a regular file.
    ([("pkg/s", "symlink", "ok"), ("pkg/h", "hardlink", "pkg/s")], "pkg/h", "not a regular file"),
    ([("pkg/d", "dir", None), ("pkg/h", "hardlink", "pkg/d")], "pkg/h", "not a regular file"),
    # NUL characters: tarfile keeps them from PAX headers, no file system takes them.
    ([("pkg/nul\0name", "file", "x")], "pkg/nul\0name", "NUL character"),
    ([("pkg/link", "symlink", "ok\0/../../../etc")], "pkg/link", "NUL character"),
], ids=lambda value: value if isinstance(value, str) and " " in value else None)
def test_hostile_members_are_refused_before_anything_is_written(tmp_path, members, member, expected):
    archive = make_tar(tmp_path / "bad.tar.gz", [("pkg", "dir", None), ("pkg/ok", "file", "fine"), *members])
    assert_refused(tmp_path, archive, member, expected)


@pytest.mark.parametrize("link", ["/etc", ".."])
def test_a_file_written_through_a_symlink_to_outside_is_refused(tmp_path, link):
    archive = make_tar(tmp_path / "bad.tar.gz", [("a", "symlink", link), ("a/passwd", "file", "root::0:0")])
    assert_refused(tmp_path, archive, "a", "points outside", strip_components=0)


def test_a_backslash_is_an_ordinary_character_and_stays_inside(tmp_path):
    """Extraction happens on Linux only (here, and GNU tar in the images), where `\\` separates nothing."""
    archive = make_tar(tmp_path / "odd.tar.gz", [("pkg", "dir", None), ("pkg/..\\..\\evil", "file", "x")])
    safe_extract(archive, tmp_path / "jail" / "out", strip_components=1)
    assert tree(tmp_path / "jail") == ["out", "out/..\\..\\evil"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jail", "odd.tar.gz"]


def test_legitimate_toolchain_and_source_sizes_are_not_bombs():
    assert max_unpacked_bytes(23 * MB) > 100 * MB * 2  # CPython's source .tar.xz, with room to spare
    assert max_unpacked_bytes(100 * MB) > 500 * MB * 2  # the WASI SDK's .tar.gz
    assert max_unpacked_bytes(2 * MB) >= 256 << 20  # small archives: the floor


@pytest.fixture
def small_floor(monkeypatch):
    """Bombs the size of a test: the floor lowered to 1 MiB (the ratio is the real one)."""
    monkeypatch.setattr(archives, "MIN_UNPACKED", 1 << 20)


def test_a_highly_compressed_member_is_a_bomb(tmp_path, small_floor):
    archive = make_tar(tmp_path / "bomb.tar.gz", [("pkg", "dir", None), ("pkg/zeros", "file", bytes(4 << 20))])
    assert archive.stat().st_size < 20_000
    assert_refused(tmp_path, archive, "pkg/zeros", "decompression bomb")


def test_many_empty_files_are_a_bomb_though_they_declare_no_size(tmp_path, small_floor):
    archive = make_tar(tmp_path / "inodes.tar.gz", [("pkg", "dir", None),
                                                    *((f"pkg/{i:05}", "file", b"") for i in range(10_000))])
    assert_refused(tmp_path, archive, None, r"member 'pkg/\d+' brings what the archive unpacks to past \d+ bytes .* decompression bomb")


def test_zeros_after_the_last_member_are_a_bomb(tmp_path, small_floor):
    plain = make_tar(tmp_path / "ok.tar", [("pkg", "dir", None), ("pkg/ok", "file", "fine")], mode="w")
    archive = tmp_path / "padded.tar.gz"
    archive.write_bytes(gzip.compress(plain.read_bytes() + bytes(4 << 20)))
    plain.unlink()
    assert_refused(tmp_path, archive, None, "padding after the last member; refused as a decompression bomb")


def test_an_incompressible_archive_over_the_floor_passes(tmp_path, small_floor):
    archive = make_tar(tmp_path / "random.tar.gz", [("pkg", "dir", None), ("pkg/random", "file", random.Random(0).randbytes(3 << 20))])
    assert 3 << 20 > archives.MIN_UNPACKED  # the floor alone would refuse it: the ratio lets it pass
    safe_extract(archive, tmp_path / "out", strip_components=1)
    assert (tmp_path / "out" / "random").stat().st_size == 3 << 20


def test_a_member_declaring_a_huge_size_is_refused_before_its_data_is_read(tmp_path):
    """The real limits: the header alone says 1 GiB, ~4000 times the archive's size."""
    header = tarfile.TarInfo("pkg/huge")
    header.size = 1 << 30
    archive = tmp_path / "huge.tar.gz"
    archive.write_bytes(gzip.compress(header.tobuf(tarfile.PAX_FORMAT) + bytes(1 << 20)))  # the data stops short
    assert_refused(tmp_path, archive, "pkg/huge", "decompression bomb", strip_components=0)


def test_data_hidden_after_a_damaged_header_is_refused(tmp_path):
    """tarfile stops at a bad header; GNU tar (the SDK is unpacked by it, in the image) skips it and goes on."""
    plain = make_tar(tmp_path / "ok.tar", [("pkg", "dir", None), ("pkg/ok", "file", "fine")], mode="w").read_bytes()
    plain = plain.rstrip(b"\0")
    plain += bytes(-len(plain) % 512) + b"not a tar header" * 32
    hidden = make_tar(tmp_path / "hidden.tar", [("pkg/link", "symlink", "../../../etc/passwd")], mode="w")
    archive = tmp_path / "hidden.tar.gz"
    archive.write_bytes(gzip.compress(plain + hidden.read_bytes()))
    (tmp_path / "ok.tar").unlink()
    hidden.unlink()
    assert_refused(tmp_path, archive, None, "data after the last readable member")


@pytest.mark.parametrize("name, content", [
    ("broken.tar.gz", b"\x1f\x8b\x08\x00not really gzip"),
    ("broken.tar.xz", lzma.compress(b"x" * 4096)[:40] + b"\xff" * 64),
    ("empty.tar.gz", b""),
])
def test_a_corrupt_archive_is_a_clear_error(tmp_path, name, content):
    archive = tmp_path / name
    archive.write_bytes(content)
    with pytest.raises(UnsafeArchive, match=f"{name} could not be unpacked"):
        safe_extract(archive, tmp_path / "out")
    with pytest.raises(UnsafeArchive, match=f"{name} could not be read as a tarball"):
        check_archive(archive)


SAMPLE = [("pkg", "dir", None), *((f"pkg/f{i}", "file", f"{i} " * 300) for i in range(8)), ("pkg/l", "symlink", "f1")]


@settings(max_examples=60, deadline=None)
@given(compression=st.sampled_from(["gz", "xz", "bz2"]), data=st.data())
def test_damaged_bytes_are_refused_or_unpacked_inside(tmp_path_factory, compression, data):
    """Any damage to a compressed tarball ends as UnsafeArchive, or as files inside the destination."""
    tmp = tmp_path_factory.mktemp("damaged")
    content = bytearray(make_tar(tmp / f"a.tar.{compression}", SAMPLE, mode=f"w:{compression}").read_bytes())
    for _ in range(data.draw(st.integers(1, 4), label="changed bytes")):
        content[data.draw(st.integers(0, len(content) - 1), label="at")] = data.draw(st.integers(0, 255), label="to")
    content = content[:data.draw(st.integers(1, len(content)), label="kept")]
    archive = tmp / f"damaged.tar.{compression}"
    archive.write_bytes(bytes(content))
    (tmp / f"a.tar.{compression}").unlink()
    destination = tmp / "jail" / "out"
    for unpack in (lambda: check_archive(archive, 1), lambda: safe_extract(archive, destination, 1)):
        try:
            unpack()
        except UnsafeArchive as error:
            assert archive.name in str(error)
    assert all(path == tmp / "jail" or destination in path.parents or path in (destination, archive)
               for path in tmp.rglob("*"))
