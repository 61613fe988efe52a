"""Unpacking archives without trusting them.

Even a hash-verified archive is checked member by member before anything is
written: absolute paths, `..`, links that point outside the destination,
devices and FIFOs, duplicate names and implausible total sizes are refused,
and the whole archive is rejected before the first byte lands on disk.
"""

import posixpath
import tarfile
from pathlib import Path

from .errors import FetchError

MAX_TOTAL_BYTES = 4 << 30  # a CPython source tree is ~0.1 GiB; anything near this is a decompression bomb


class UnsafeArchive(FetchError):
    pass


def _clean_name(name: str, archive: Path) -> str:
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"{archive.name}: member {name!r} has an absolute path; nothing was extracted.")
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../") or "/../" in f"/{normal}/":
        raise UnsafeArchive(f"{archive.name}: member {name!r} escapes the destination with '..'; nothing was extracted.")
    return normal


def _strip(name: str, components: int) -> str | None:
    parts = name.split("/")
    return "/".join(parts[components:]) if len(parts) > components else None


def checked_members(tar: tarfile.TarFile, archive: Path, strip_components: int = 0) -> list[tarfile.TarInfo]:
    """Validate every member; return them renamed with `strip_components` leading parts removed."""
    members, seen, total = [], set(), 0
    for member in tar.getmembers():
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise UnsafeArchive(f"{archive.name}: member {member.name!r} is a device or FIFO; nothing was extracted.")
        name = _strip(_clean_name(member.name, archive), strip_components)
        if name is None:
            if member.isdir():
                continue  # the top directory being stripped
            raise UnsafeArchive(f"{archive.name}: member {member.name!r} lies outside the archive's top directory.")
        if name in seen:
            raise UnsafeArchive(f"{archive.name}: member {name!r} appears twice; nothing was extracted.")
        seen.add(name)
        if member.issym():
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            if member.linkname.startswith("/") or resolved == ".." or resolved.startswith("../"):
                raise UnsafeArchive(
                    f"{archive.name}: symlink {member.name!r} points outside the destination "
                    f"({member.linkname!r}); nothing was extracted."
                )
        elif member.islnk():
            target = _strip(_clean_name(member.linkname, archive), strip_components)
            if target not in seen:
                raise UnsafeArchive(
                    f"{archive.name}: hard link {member.name!r} points to {member.linkname!r}, which is not "
                    f"an earlier member of the archive; nothing was extracted."
                )
            member = member.replace(linkname=target, deep=False)
        total += member.size
        if total > MAX_TOTAL_BYTES:
            raise UnsafeArchive(f"{archive.name}: unpacks to more than {MAX_TOTAL_BYTES >> 30} GiB; refused as a decompression bomb.")
        members.append(member.replace(name=name, deep=False))
    return members


def check_archive(archive: Path, strip_components: int = 0) -> int:
    """Check every member of a tarball without unpacking it; return how many there are.

    For archives unpacked elsewhere (inside an image build) by a tool that
    applies the same `strip_components`."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            return len(checked_members(tar, archive, strip_components))
    except (tarfile.TarError, EOFError, OSError) as error:
        raise UnsafeArchive(f"{archive.name} could not be read as a tarball: {error}.") from None


def safe_extract(archive: Path, destination: Path, strip_components: int = 0) -> None:
    """Unpack a tarball (any compression) into `destination` after checking every member."""
    destination.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = checked_members(tar, archive, strip_components)
            # The "data" filter (Python >= 3.11.4) re-checks the same rules and drops
            # ownership and special permission bits.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(destination, members=members, **extra)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise UnsafeArchive(f"{archive.name} could not be unpacked: {error}.") from None
