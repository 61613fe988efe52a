"""Files on the host: their sha256, and writing them atomically.

One helper writes every file the project publishes or keeps (dist/, lockfiles/,
the store's records, bench results): a reader, or a build killed half-way,
sees the old file or the whole new one, never a part.
"""

import errno
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path


def sha256_path(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


# What a write fails with when the disk is full, or the user's quota of it.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def write_atomically(target: Path, source) -> Path:
    """Write `source` (bytes, or a file to copy) to `target` via a temp file and a rename:
    readers, and a build killed half-way, see the old file or the whole new one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    try:
        _write_and_rename(target, source)
    except OSError as error:
        if error.errno not in DISK_FULL_ERRNOS:
            raise
        # Imported here: in the toolchain container this file runs alone, as a script, without its package.
        from cpython_wasm.errors import DiskFull

        needed = len(source) if isinstance(source, bytes) else os.stat(source).st_size
        previous = "is unchanged" if target.exists() else "was not created"
        raise DiskFull(
            f"No space left on the disk of {target.parent} to write {target.name}: it needs {needed} bytes free "
            f"there (the new file is written beside the old one, then replaces it). {target} {previous}, and "
            f"nothing half-written was left. Free at least that much on that disk and run the command again."
        ) from error
    return target


def _write_and_rename(target: Path, source) -> None:
    descriptor, temp = _locked_temp(target)
    try:
        with open(descriptor, "wb", closefd=False) as output:
            if isinstance(source, bytes):
                output.write(source)
            else:
                with open(source, "rb") as data:
                    shutil.copyfileobj(data, output, 1 << 20)
            output.flush()
            os.fsync(output.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
        os.close(descriptor)  # releases the lock, once the temp file is renamed or removed


def _temp_prefix(target: Path) -> str:
    return f".{target.name}."


def _locked_temp(target: Path) -> tuple[int, str]:
    """A new temp file beside `target`, open, under an exclusive lock held while it is written (see
    remove_stale_temps)."""
    while True:
        descriptor, temp = tempfile.mkstemp(prefix=_temp_prefix(target), dir=target.parent)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        # Until flock returned, the file was unlocked: if remove_stale_temps took it for a dead writer's in
        # that instant, its name no longer leads to it. Then make another.
        try:
            if os.path.samestat(os.fstat(descriptor), os.stat(temp)):
                return descriptor, temp
        except FileNotFoundError:
            pass
        os.close(descriptor)


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove the temp files of `target` left by a write_atomically that was killed before its rename, and
    return them. A writer holds an exclusive lock on its temp file until the rename, and the kernel drops
    that lock when the process dies: a temp file whose lock can be taken has no live writer."""
    # tempfile.mkstemp's names: the prefix and 8 random characters from this set.
    temp_name = re.compile(re.escape(_temp_prefix(target)) + r"[a-z0-9_]{8}")
    removed = []
    for path in target.parent.iterdir() if target.parent.is_dir() else ():
        if not temp_name.fullmatch(path.name) or path.is_symlink() or not path.is_file():
            continue
        try:
            with open(path, "rb") as temp:
                fcntl.flock(temp, fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink()
        except OSError:
            continue  # being written (its lock is held), or gone already, or not ours to remove
        removed.append(path)
    return removed
