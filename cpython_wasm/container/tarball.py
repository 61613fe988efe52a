"""Deterministic tarballs and their manifests (standard library only: it runs in the containers too).

Entries sorted, one fixed mtime (SOURCE_DATE_EPOCH), owner 0:0 without
names, modes normalised to 0644/0755, PAX format, gzip header without name
or time, level 9: the same tree gives the same bytes on any machine.
"""

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def normalised_mode(path: Path) -> int:
    if path.is_dir() or os.stat(path).st_mode & 0o100:
        return 0o755
    return 0o644


def write_tar(output, entries, mtime: int) -> None:
    """Write an uncompressed tar of `entries` to the binary file `output`.

    entries: (archive name, source) pairs, where source is a Path (file or
    directory) or bytes; they are written sorted by name.
    """
    with tarfile.open(fileobj=output, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, source in sorted(entries, key=lambda entry: entry[0]):
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if isinstance(source, bytes):
                info.size, info.mode = len(source), 0o644
                tar.addfile(info, io.BytesIO(source))
            elif source.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = source.stat().st_size, normalised_mode(source)
                with open(source, "rb") as file:
                    tar.addfile(info, file)


def tree_entries(root: Path, prefix: str):
    """(archive name, path) for a directory tree, the root itself included."""
    yield prefix, root
    for path in root.rglob("*"):
        if path.is_symlink():
            raise ValueError(f"{path}: symbolic links are not packaged")
        yield f"{prefix}/{path.relative_to(root).as_posix()}", path


def write_tar_gz(path: Path, entries, mtime: int) -> None:
    with open(path, "wb") as raw:
        # No file name and mtime 0 in the gzip header; level 9 fixed.
        with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as compressed:
            write_tar(compressed, entries, mtime)


def manifest_of(root: Path, manifest: str = MANIFEST) -> dict:
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.relative_to(root).as_posix() != manifest:
            files[path.relative_to(root).as_posix()] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return files
