"""Verifying: proving what an artifact is, from its lockfile.

The checks themselves live in scripts/verify_artifact.py, standard library
only, so that a distributor can copy that one file and run it with any Python
3.9 or newer; `invoke verify` runs the very same code (loaded from there), so
the two cannot drift. This module adds what a checkout knows: where the
lockfile of an artifact is, and SHA256SUMS files for dist/.
"""

import hashlib
import importlib.util
import os
import stat
from pathlib import Path

from cpython_wasm.errors import UserError
from cpython_wasm.files import write_atomically
from cpython_wasm.paths import PROJECT_ROOT, describe_entry, exclusive_lock

SCRIPT = PROJECT_ROOT / "scripts" / "verify_artifact.py"
_spec = importlib.util.spec_from_file_location("verify_artifact", SCRIPT)
verifier = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verifier)

SHA256SUMS = "SHA256SUMS"


def _refuse(target: Path, what: str):
    raise UserError(f"{target} is {what}, so it is neither read nor replaced: it may only be a regular file "
                    f"that lists the files beside it. Remove it (the next build writes it again, listing the "
                    f"artifacts it publishes) and run again.")


def check_checksums_file(directory: Path) -> None:
    """Refuse a directory/SHA256SUMS that is a link or not a regular file: called before anything is published
    there, so that a refused SHA256SUMS leaves dist/ as it was."""
    target = Path(directory) / SHA256SUMS
    if os.path.lexists(target) and not stat.S_ISREG(os.lstat(target).st_mode):
        _refuse(target, describe_entry(target))


def record_checksums(directory: Path, paths) -> Path:
    """Add or update the `sha256sum -c` lines of `paths` (files directly in `directory`) in directory/SHA256SUMS,
    atomically, under a lock. Of the lines already there, only those naming a plain file directly in `directory`
    are kept, each with its hash computed again: a name leading elsewhere (`../x`, `/etc/x`, `sub/x`, a
    symbolic link), a file that is gone, and the hash an old line claims are never carried over. A SHA256SUMS
    that is a link, or anything but a regular file, is refused, never read or written through."""
    directory = Path(directory)
    target = directory / SHA256SUMS
    limit = 1 << 20  # far more than the lines of any dist/ directory; a bigger file is not read into memory

    def opened(path: Path):
        """`path` open for reading if it is a regular file, never through a link (O_NOFOLLOW, and O_NONBLOCK
        so that a FIFO swapped in cannot hang the open); None if it is anything else, or gone."""
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                return None
            file = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC), "rb")
        except OSError:
            return None
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            file.close()
            return None
        return file

    def plain_sha256(name: str) -> str | None:
        """The sha256 of the regular file `name` right in `directory`, for a name `sha256sum -c` reads back as
        it is; None for any other name or file (our own hidden temp and lock files included)."""
        if not name.isprintable() or "/" in name or "\\" in name or name.startswith(".") or name == SHA256SUMS:
            return None
        file = opened(directory / name)
        if file is None:
            return None
        with file:
            return hashlib.file_digest(file, "sha256").hexdigest()

    with exclusive_lock(directory / f".{SHA256SUMS}.lock"):
        names = set()
        if os.path.lexists(target):
            file = opened(target)
            if file is None:
                _refuse(target, describe_entry(target))
            with file:
                text = file.read(limit + 1)
            if len(text) > limit:
                _refuse(target, f"larger than {limit} bytes, far more than the lines of any artifact directory")
            names = {line.partition("  ")[2] for line in text.decode("utf-8", "surrogateescape").split("\n")}
        for path in map(Path, paths):
            if os.path.realpath(path.parent) != os.path.realpath(directory) or plain_sha256(path.name) is None:
                raise ValueError(f"{path} is not a plain file directly in {directory}")  # a caller's mistake
            names.add(path.name)
        entries = {name: digest for name in sorted(names) if (digest := plain_sha256(name)) is not None}
        return write_atomically(target, "".join(f"{digest}  {name}\n" for name, digest in entries.items()).encode())
