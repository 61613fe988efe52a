"""dist/SHA256SUMS: whatever it held before, it lists only plain files directly in dist/, each with its hash
computed again; a SHA256SUMS (or its lock file) that is a link, or not a regular file, is refused."""

import hashlib
import os
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpython_wasm.errors import UserError
from cpython_wasm.records.verify import check_checksums_file, record_checksums


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lines(directory):
    return (directory / "SHA256SUMS").read_text().splitlines()


@pytest.fixture
def dist(tmp_path):
    """A dist/ holding plain files, and around them everything a line of SHA256SUMS may name but must not list."""
    dist = tmp_path / "dist"
    (dist / "sub").mkdir(parents=True)
    for name in ("a.tar.gz", "b.provenance.json", "new.tar.gz", "with space.json", "é.json"):
        (dist / name).write_bytes(f"the bytes of {name}".encode())
    (dist / "sub" / "inner.tar.gz").write_bytes(b"one level down")
    (dist / ".hidden").write_bytes(b"a temp or lock file")
    (tmp_path / "outside.tar.gz").write_bytes(b"next to dist, not in it")
    (dist / "link-out.tar.gz").symlink_to(tmp_path / "outside.tar.gz")
    (dist / "link-in.tar.gz").symlink_to(dist / "a.tar.gz")
    (dist / "dangling.tar.gz").symlink_to(tmp_path / "nowhere")
    (dist / "a-directory").mkdir()
    os.mkfifo(dist / "fifo.tar.gz")  # hashing it would wait for a writer forever
    return dist


PLAIN = ["a.tar.gz", "b.provenance.json", "with space.json", "é.json"]
NOT_LISTED = ["../outside.tar.gz", "sub/inner.tar.gz", "./a.tar.gz", ".hidden", "link-out.tar.gz", "link-in.tar.gz",
              "dangling.tar.gz", "a-directory", "fifo.tar.gz", "missing.tar.gz", "SHA256SUMS", "", ".", "..",
              "a.tar.gz\r", "a.tar.gz ", "\\a.tar.gz", "a\\.tar.gz"]

NAMES = st.one_of(st.sampled_from(PLAIN + NOT_LISTED), st.text(max_size=20),
                  st.builds(lambda name: "/" + name, st.sampled_from(PLAIN)))  # absolute: /a.tar.gz is not dist's
DIGESTS = st.one_of(st.sampled_from([sha256(b"stale"), "0" * 64, "", "not a digest"]), st.text(max_size=70))
LINE = st.tuples(DIGESTS, st.sampled_from(["  ", " *", " ", "\t", "  "]), NAMES).map("".join)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(old_lines=st.lists(LINE, max_size=12), ending=st.sampled_from(["\n", "\r\n", ""]),
       garbage=st.binary(max_size=30))
def test_only_plain_files_directly_in_dist_are_listed_with_hashes_computed_again(dist, old_lines, ending, garbage):
    written = ending.join(old_lines).encode("utf-8", "surrogatepass") + garbage + b"\n"
    (dist / "SHA256SUMS").write_bytes(written)
    record_checksums(dist, [dist / "new.tar.gz"])
    listed = {}
    for line in lines(dist):
        digest, separator, name = line.partition("  ")
        assert separator and name not in listed
        listed[name] = digest
    for name, digest in listed.items():
        path = dist / name
        assert path.parent == dist and path.is_file() and not path.is_symlink() and not name.startswith(".")
        assert digest == sha256(path.read_bytes())  # computed again, never the old line's
    old_names = {line.partition("  ")[2] for line in written.decode("utf-8", "surrogateescape").split("\n")}
    assert set(listed) == {"new.tar.gz"} | (old_names & set(PLAIN))
    assert subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=dist, capture_output=True).returncode == 0


def test_a_stale_hash_in_an_old_line_is_replaced_by_the_file_s(dist):
    (dist / "SHA256SUMS").write_text(f"{sha256(b'stale')}  a.tar.gz\n{sha256(b'x')}  ../outside.tar.gz\n")
    record_checksums(dist, [dist / "new.tar.gz"])
    assert lines(dist) == [f"{sha256(b'the bytes of a.tar.gz')}  a.tar.gz",
                           f"{sha256(b'the bytes of new.tar.gz')}  new.tar.gz"]


@pytest.mark.parametrize("kind", ["link to a file", "link into dist", "dangling link", "directory", "fifo"])
@pytest.mark.parametrize("check", ["before publishing", "when recording"])
def test_a_sha256sums_that_is_not_a_regular_file_is_refused_and_not_read(dist, tmp_path, kind, check):
    secret = tmp_path / "secret"
    secret.write_text(f"{sha256(b'x')}  a.tar.gz\nroot:$6$hash:19000:0:99999:7:::\n")
    target = dist / "SHA256SUMS"
    {"link to a file": lambda: target.symlink_to(secret), "link into dist": lambda: target.symlink_to(dist / "a.tar.gz"),
     "dangling link": lambda: target.symlink_to(tmp_path / "nowhere"), "directory": target.mkdir,
     "fifo": lambda: os.mkfifo(target)}[kind]()
    before = os.lstat(target)
    with pytest.raises(UserError) as error:
        if check == "before publishing":  # what Build.run checks before it replaces any file in dist/
            check_checksums_file(dist)
        else:
            record_checksums(dist, [dist / "new.tar.gz"])
    assert f"{target} is a" in str(error.value) and "Remove it" in str(error.value)
    assert os.lstat(target).st_ino == before.st_ino  # neither replaced nor followed
    assert secret.read_text().startswith(sha256(b"x"))
    assert (dist / "a.tar.gz").read_bytes() == b"the bytes of a.tar.gz"
    assert not (tmp_path / "nowhere").exists()


def test_a_regular_or_missing_sha256sums_passes_the_check_before_publishing(dist):
    check_checksums_file(dist)
    record_checksums(dist, [dist / "new.tar.gz"])
    check_checksums_file(dist)


def test_a_huge_sha256sums_is_not_read_into_memory(dist):
    (dist / "SHA256SUMS").write_bytes(b"x" * (2 << 20))
    with pytest.raises(UserError, match="larger than 1048576 bytes"):
        record_checksums(dist, [dist / "new.tar.gz"])


def test_the_lock_file_is_never_followed(dist, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("a lock opened through a link would truncate this")
    (dist / ".SHA256SUMS.lock").symlink_to(victim)
    with pytest.raises(UserError, match="The lock file .*SHA256SUMS.lock is a symbolic link"):
        record_checksums(dist, [dist / "new.tar.gz"])
    assert victim.read_text() == "a lock opened through a link would truncate this"
    assert not (dist / "SHA256SUMS").exists()


@pytest.mark.parametrize("given", ["../outside.tar.gz", "link-out.tar.gz", "sub/inner.tar.gz", "fifo.tar.gz"])
def test_a_path_to_record_must_be_a_plain_file_in_the_directory(dist, given):
    with pytest.raises(ValueError, match="is not a plain file directly in"):
        record_checksums(dist, [dist / given])
    assert not (dist / "SHA256SUMS").exists()
