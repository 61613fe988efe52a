"""Verifying: proving what an artifact is, from its lockfile.

The checks themselves live in scripts/verify_artifact.py, standard library
only, so that a distributor can copy that one file and run it with any Python
3.9 or newer; `invoke verify` runs the very same code (loaded from there), so
the two cannot drift. This module adds what a checkout knows: where the
lockfile of an artifact is, and SHA256SUMS files for dist/.
"""

import importlib.util
from pathlib import Path

from filelock import FileLock

from .package import sha256_path, write_atomically
from .paths import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "verify_artifact.py"
_spec = importlib.util.spec_from_file_location("verify_artifact", SCRIPT)
verifier = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verifier)

SHA256SUMS = "SHA256SUMS"


def record_checksums(directory: Path, paths) -> Path:
    """Add or update the `sha256sum -c` lines of `paths` in directory/SHA256SUMS, atomically."""
    target = directory / SHA256SUMS
    with FileLock(directory / f".{SHA256SUMS}.lock"):
        entries = {}
        if target.exists():
            for line in target.read_text(encoding="utf-8").splitlines():
                digest, _, name = line.partition("  ")
                if name and (directory / name).exists():
                    entries[name] = digest
        for path in paths:
            entries[Path(path).name] = sha256_path(path)
        text = "".join(f"{digest}  {name}\n" for name, digest in sorted(entries.items()))
        return write_atomically(target, text.encode())
