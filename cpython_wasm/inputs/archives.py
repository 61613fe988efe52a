"""Unpacking archives without trusting them.

Even a hash-verified archive is checked member by member before anything is
written: absolute paths, `..`, NUL characters, symlinks that lead outside the
destination (followed through the archive's own symlinks, as the kernel will
follow them once they are unpacked), members written through a symlink or a
file, hard links to anything but a regular file, devices and FIFOs, duplicate
names, data hidden after a damaged header and decompression bombs are refused,
and the whole archive is rejected before the first byte lands on disk.
"""

import lzma
import posixpath
import tarfile
import zlib
from pathlib import Path

from cpython_wasm.errors import FetchError

# Decompression bombs. Real inputs unpack to a few times their size: CPython's
# source .tar.xz ~23 MB -> ~100 MB (4.5x), the WASI SDK .tar.gz ~100 MB ->
# ~500 MB (5x), emsdk's .tar.xz ~6x; xz of plain text stays near 10x. A bomb
# is repetitive data: gzip reaches 1000x, bzip2 and xz far more. So an archive
# may unpack to MAX_RATIO times its own size, and any archive to MIN_UNPACKED
# (small ones legitimately compress better, and that much harm is bounded).
# "Unpack" counts the whole tar stream, headers included: a million empty
# files are a bomb too, though they declare no size at all.
MAX_RATIO = 25
MIN_UNPACKED = 256 << 20
MAX_LINK_HOPS = 40  # Linux's own limit (ELOOP): a longer chain never resolves
CHUNK = 1 << 20
# What a damaged tarball raises while it is read: tarfile's errors, or its decompressor's.
READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)


class UnsafeArchive(FetchError):
    pass


def max_unpacked_bytes(compressed_size: int) -> int:
    """How much an archive of `compressed_size` bytes may unpack to before it is taken for a decompression bomb."""
    return max(MIN_UNPACKED, MAX_RATIO * compressed_size)


def _unsafe(archive: Path, name: str, problem: str) -> UnsafeArchive:
    return UnsafeArchive(f"{archive.name}: member {name!r} {problem}; nothing was extracted.")


def _outside(name: str) -> str | None:
    """How a member's name, or a hard link's target, leads outside the destination; None if it does not."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../"):
        return "escapes the destination with '..'"
    return None


def _strip(name: str, components: int) -> str | None:
    parts = name.split("/")
    return "/".join(parts[components:]) if len(parts) > components else None


def _link_stays_inside(name: str, target: str, links: dict[str, str]) -> bool:
    """Whether symlink `name` -> `target` resolves under the destination, every symlink of the archive on
    the way followed as the kernel follows them after unpacking (so `a/up -> ..` then `b -> a/up/../..`,
    which normpath alone calls harmless, is seen to climb out); a loop counts as leaving."""
    if target.startswith("/"):
        return False
    directory = [part for part in posixpath.dirname(name).split("/") if part]  # real directories only
    pending, hops = target.split("/"), 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not directory:
                return False
            directory.pop()
            continue
        path = "/".join([*directory, part])
        if path in links:
            hops += 1
            if hops > MAX_LINK_HOPS or links[path].startswith("/"):
                return False
            pending[:0] = links[path].split("/")  # resolved from the directory that holds the link
        else:
            directory.append(part)
    return True


def _check_rest(tar: tarfile.TarFile, archive: Path, limit: int) -> None:
    """Only tar's zero padding may follow the last member. tarfile stops quietly at a damaged header,
    where GNU tar (which unpacks the SDK inside its image) skips it and extracts what follows; reading
    to the end also checks the compressed stream's own checksum."""
    # From just after the block tarfile stopped at (the end marker, or a damaged header: alone, it hides
    # nothing): seeking back would decompress the whole stream again.
    position = tar.fileobj.tell()
    while chunk := tar.fileobj.read(CHUNK):
        position += len(chunk)
        if chunk.strip(b"\0"):
            raise UnsafeArchive(f"{archive.name}: data after the last readable member (offset {tar.offset}): a damaged "
                                f"header, or a member hidden behind one that other tar readers extract; nothing was extracted.")
        if position > limit:
            raise UnsafeArchive(f"{archive.name}: more than {limit} bytes of padding after the last member; refused "
                                f"as a decompression bomb; nothing was extracted.")


def checked_members(tar: tarfile.TarFile, archive: Path, strip_components: int = 0) -> list[tarfile.TarInfo]:
    """Validate every member; return them renamed with `strip_components` leading parts removed."""
    compressed = archive.stat().st_size
    limit = max_unpacked_bytes(compressed)
    members: dict[str, tarfile.TarInfo] = {}  # by name once stripped, in order
    original: dict[str, str] = {}  # each stripped name's name in the archive, for messages
    for member in tar:  # read lazily: a bomb is refused before the rest of it is decompressed
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise _unsafe(archive, member.name, "is a device or FIFO")
        if "\0" in member.name or "\0" in member.linkname:  # no file system can hold one (tarfile keeps them from PAX headers)
            raise _unsafe(archive, member.name, f"has a NUL character in its name or link target ({member.linkname!r})")
        if problem := _outside(member.name):
            raise _unsafe(archive, member.name, problem)
        name = _strip(posixpath.normpath(member.name), strip_components)
        if name is None:
            if member.isdir():
                continue  # the top directory being stripped
            raise UnsafeArchive(f"{archive.name}: member {member.name!r} lies outside the archive's top directory.")
        if name in members:
            raise _unsafe(archive, member.name, "appears twice")
        if name == "." and not member.isdir():
            raise _unsafe(archive, member.name, "would replace the destination directory itself")
        # Where this member's data ends in the decompressed tar stream: every header and byte before it counted.
        if member.offset_data + member.size > limit:
            raise _unsafe(archive, member.name, f"brings what the archive unpacks to past {limit} bytes ({MAX_RATIO} "
                                                f"times its {compressed} bytes, and no less than {MIN_UNPACKED >> 20} MiB): "
                                                f"refused as a decompression bomb")
        if member.islnk():
            if problem := _outside(member.linkname):
                raise _unsafe(archive, member.name, f"is a hard link to {member.linkname!r}, which {problem}")
            target = _strip(posixpath.normpath(member.linkname), strip_components)
            if target not in members:
                raise _unsafe(archive, member.name, f"is a hard link to {member.linkname!r}, which is not an earlier "
                                                    f"member of the archive")
            if not (members[target].isfile() or members[target].islnk()):
                # os.link follows a symlink: a hard link to one would be a second copy of whatever it points at.
                raise _unsafe(archive, member.name, f"is a hard link to {member.linkname!r}, which is not a regular file")
            member = member.replace(linkname=target, deep=False)
        members[name] = member.replace(name=name, deep=False)
        original[name] = member.name
    _check_rest(tar, archive, limit)
    _check_tree(members, original, archive)
    return list(members.values())


def _check_tree(members: dict[str, tarfile.TarInfo], original: dict[str, str], archive: Path) -> None:
    """What only the whole tree shows (a symlink may come after the members written through it): no member
    lies under a symlink or a file, and every symlink, followed through the others, stays inside."""
    links = {name: member.linkname for name, member in members.items() if member.issym()}
    # Each directory is walked up once (the first member under it finds it clean or raises): deep trees of
    # long names cost time in proportion to their size, not to its square.
    clean = {""}
    for name, member in members.items():
        parent = posixpath.dirname(name)
        while parent not in clean:
            if parent in members and not members[parent].isdir():
                kind = "a symlink" if parent in links else "not a directory"
                raise _unsafe(archive, original[name], f"lies under {original[parent]!r}, which is {kind}: it would "
                                                       f"be written through it")
            clean.add(parent)
            parent = posixpath.dirname(parent)
        if member.issym() and not _link_stays_inside(name, member.linkname, links):
            raise _unsafe(archive, original[name], f"is a symlink that points outside the destination "
                                                   f"({member.linkname!r}, the archive's own symlinks followed) or loops")


def check_archive(archive: Path, strip_components: int = 0) -> int:
    """Check every member of a tarball without unpacking it; return how many there are.

    For archives unpacked elsewhere (inside an image build) by a tool that
    applies the same `strip_components`."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            return len(checked_members(tar, archive, strip_components))
    except READ_ERRORS as error:
        raise UnsafeArchive(f"{archive.name} could not be read as a tarball: {error}.") from None


def safe_extract(archive: Path, destination: Path, strip_components: int = 0) -> None:
    """Unpack a tarball (any compression) into `destination` after checking every member."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = checked_members(tar, archive, strip_components)
            destination.mkdir(parents=True, exist_ok=True)  # only now: a refused archive leaves no trace
            # The "data" filter (Python >= 3.11.4) re-checks the same rules and drops
            # ownership and special permission bits.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(destination, members=members, **extra)
    except READ_ERRORS as error:
        raise UnsafeArchive(f"{archive.name} could not be unpacked: {error}.") from None
