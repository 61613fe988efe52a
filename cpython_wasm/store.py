"""The product store: every intermediate result named by the hash of its inputs.

As in Nix, a product's identity is computed *before* it is built, from
everything that determines it (source hash, image, arguments...). Its
directory is `<build>/store/<identity>-<name>`; if that directory exists, the
product is found, not rebuilt. A product is built in a temporary directory and
renamed into place only when its builder succeeds, so a store path is always
complete. One lock per identity keeps two concurrent builds from racing.

A product is readable by everyone, whatever the umask of the user who built
it: containers read products as another user (see executor.py), and modes are
part of what a build reproduces.
"""

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

IDENTITY_LENGTH = 32  # hex digits (128 bits) shown in store paths and image tags


def canonical_json(data) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def identity(kind: str, inputs: dict) -> str:
    """The identity of a product: a hash of its kind and its inputs."""
    return hashlib.sha256(canonical_json({"kind": kind, "inputs": inputs})).hexdigest()[:IDENTITY_LENGTH]


@dataclass(frozen=True)
class Product:
    name: str
    identity: str
    path: Path
    reused: bool  # found in the store rather than built now


class Store:
    def __init__(self, store_dir: Path, locks_dir: Path, logs_dir: Path):
        self.store_dir = store_dir
        self.locks_dir = locks_dir
        self.logs_dir = logs_dir
        for directory in (store_dir, locks_dir, logs_dir):
            directory.mkdir(parents=True, exist_ok=True)

    def log_dir(self, name: str, inputs: dict) -> Path:
        """Where the logs of building this product go (kept after the build, failed or not)."""
        return self.logs_dir / f"{identity(name, inputs)}-{name}"

    def realise(self, name: str, inputs: dict, builder, fresh: bool = False, abandoned=None) -> Product:
        """Return the product for these inputs, running `builder(temp_dir, log_dir)` only if it is not in the store
        (or, if `fresh`, in any case: the new product then replaces the old).

        The builder may return how long each of its phases took ({phase: seconds}); that and its
        total time are kept in the log directory (TIMINGS), for `invoke bench`. A temporary
        directory left by a build that was killed is passed to `abandoned(temp_dir)` (to stop
        whatever may still write into it) before it is removed."""
        ident = identity(name, inputs)
        final = self.store_dir / f"{ident}-{name}"
        with FileLock(self.locks_dir / f"{ident}.lock"):
            replaced = final.with_name(f".replaced-{final.name}")
            if replaced.exists():
                shutil.rmtree(replaced)  # left by a build killed while it replaced this product (fresh)
            if final.is_dir() and not fresh:
                return Product(name, ident, final, reused=True)
            temp = self.store_dir / f".building-{ident}-{name}"
            if temp.exists():  # left by a build that was killed: no live build holds this lock
                if abandoned is not None:
                    abandoned(temp)
                shutil.rmtree(temp)
            temp.mkdir()
            temp.chmod(0o755)
            try:
                start = time.monotonic()
                phases = builder(temp, self.log_dir(name, inputs))
                record_timings(self.log_dir(name, inputs), phases if isinstance(phases, dict) else {}, time.monotonic() - start)
                normalise_modes(temp)
                # What went into the product, next to it (not inside: the product's
                # content is exactly what the builder made).
                info = final.with_name(final.name + ".json")
                info.write_bytes(canonical_json({"name": name, "identity": ident, "inputs": inputs}) + b"\n")
                if final.is_dir():  # fresh: the old product goes only once the new one is complete
                    final.rename(replaced)
                    temp.rename(final)
                    shutil.rmtree(replaced)
                else:
                    temp.rename(final)
            except BaseException:
                shutil.rmtree(temp, ignore_errors=True)
                raise
        return Product(name, ident, final, reused=False)


TIMINGS = "timings.json"  # in a product's log directory: how long building it took


def record_timings(log_dir: Path, phases: dict[str, float], seconds: float) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / TIMINGS
    text = json.dumps({"phases": {name: round(value, 2) for name, value in phases.items()},
                       "seconds": round(seconds, 2)}, indent=1) + "\n"
    temp = path.with_name(f".{TIMINGS}.{os.getpid()}")
    temp.write_text(text, encoding="utf-8")
    temp.replace(path)


def read_timings(log_dir: Path) -> dict | None:
    """What record_timings kept for a product built in this store, or None (never built here)."""
    try:
        return json.loads((log_dir / TIMINGS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def normalise_modes(root: Path) -> None:
    """Directories 0755, files 0644 or 0755 (if executable by their owner): the umask leaves no trace."""
    for directory, _subdirectories, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.stat(path).st_mode & 0o100 else 0o644)
