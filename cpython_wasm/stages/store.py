"""The product store: what each stage made, named by the stage's identity.

As in Nix, a product's identity is computed *before* it is built, from the
whole stage that makes it (stage.py). Its directory is
`<build>/store/<identity>-<name>`, and beside it `<identity>-<name>.json`
holds the stage's value, which names the identities of the products it
mounted: from any product the store can follow everything it was made
from (what `invoke gc` keeps, see gc.py). If the directory exists, the
product is found, not rebuilt. A product is built in a temporary directory
and renamed into place only when its builder succeeds, so a store path is
always complete.

Two locks per identity, under `<build>/locks/`:
- `<identity>.lock`, exclusive while the product is being built, so two
  concurrent builds do not race;
- `<identity>.use`, shared by every build that uses the product, from
  before it looks for it until the build ends (the process exits or
  `release` is called): `invoke gc` removes a product only when it can take
  that lock exclusively, so never one a running build holds.

A product is readable by everyone, whatever the umask of the user who built
it: containers read products as another user (see executor.py), and modes are
part of what a build reproduces.
"""

import fcntl
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from cpython_wasm.files import write_atomically
from cpython_wasm.paths import open_lock_file
from cpython_wasm.stages.stage import canonical_json

TIMINGS = "timings.json"  # in a product's log directory: how long building it took
INFO_SUFFIX = ".json"  # beside a product: the value of the stage that made it
BUILDING_PREFIX = ".building-"  # a product being built (or left by a build that was killed)
REPLACED_PREFIX = ".replaced-"  # a product being replaced by a fresh build of it


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
        self._held: dict[str, int] = {}  # key -> descriptor of its .use lock, held shared
        for directory in (store_dir, locks_dir, logs_dir):
            directory.mkdir(parents=True, exist_ok=True)

    @classmethod
    def of(cls, workspace) -> "Store":
        """The store of a workspace (paths.Workspace): its products, their locks and their logs."""
        return cls(workspace.store_dir, workspace.locks_dir, workspace.logs_dir)

    def path(self, stage) -> Path:
        return self.store_dir / f"{stage.identity}-{stage.name}"

    def log_dir(self, stage) -> Path:
        """Where the logs of building this product go (kept after the build, failed or not)."""
        return self.logs_dir / f"{stage.identity}-{stage.name}"

    def hold(self, key: str) -> None:
        """Hold `key` (a product's identity, or an image's: see gc.py) in use until this store is released."""
        if key not in self._held:
            descriptor = open_lock_file(self.locks_dir / f"{key}.use")
            fcntl.flock(descriptor, fcntl.LOCK_SH)
            self._held[key] = descriptor

    def release(self) -> None:
        for descriptor in self._held.values():
            os.close(descriptor)
        self._held.clear()

    def realise(self, stage, builder, fresh: bool = False, abandoned=None) -> Product:
        """Return the product of `stage`, running `builder(temp_dir, log_dir)` only if it is not in the store
        (or, if `fresh`, in any case: the new product then replaces the old).

        The builder may return how long each of its phases took ({phase: seconds}); that and its
        total time are kept in the log directory (TIMINGS), for `invoke bench`. A temporary
        directory left by a build that was killed is passed to `abandoned(temp_dir)` (to stop
        whatever may still write into it) before it is removed."""
        final, log_dir = self.path(stage), self.log_dir(stage)
        self.hold(stage.identity)  # first: gc may be removing it; then it is gone, and built again below
        with FileLock(self.locks_dir / f"{stage.identity}.lock"):
            replaced = final.with_name(REPLACED_PREFIX + final.name)
            if replaced.exists():
                shutil.rmtree(replaced)  # left by a build killed while it replaced this product (fresh)
            if final.is_dir() and not fresh:
                return Product(stage.name, stage.identity, final, reused=True)
            temp = final.with_name(BUILDING_PREFIX + final.name)
            if temp.exists():  # left by a build that was killed: no live build holds this lock
                if abandoned is not None:
                    abandoned(temp)
                shutil.rmtree(temp)
            temp.mkdir()
            temp.chmod(0o755)
            try:
                start = time.monotonic()
                phases = builder(temp, log_dir)
                record_timings(log_dir, phases if isinstance(phases, dict) else {}, time.monotonic() - start)
                normalise_modes(temp)
                # What made the product, next to it (not inside: the product's content is exactly what the
                # builder made).
                write_atomically(final.with_name(final.name + INFO_SUFFIX), canonical_json(
                    {"name": stage.name, "identity": stage.identity, "stage": stage.value()}) + b"\n")
                if final.is_dir():  # fresh: the old product goes only once the new one is complete
                    final.rename(replaced)
                    temp.rename(final)
                    shutil.rmtree(replaced)
                else:
                    temp.rename(final)
            except BaseException:
                shutil.rmtree(temp, ignore_errors=True)
                raise
        return Product(stage.name, stage.identity, final, reused=False)


def image_key(tag: str) -> str:
    """The key an image is held under (Store.hold): a file name, from its tag."""
    return "image-" + hashlib.sha256(tag.encode()).hexdigest()[:32]


def record_timings(log_dir: Path, phases: dict[str, float], seconds: float) -> None:
    text = json.dumps({"phases": {name: round(value, 2) for name, value in phases.items()},
                       "seconds": round(seconds, 2)}, indent=1) + "\n"
    write_atomically(log_dir / TIMINGS, text.encode())


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
