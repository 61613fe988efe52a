"""Where things live, on the host and inside the build containers.

Host side: the checkout holds recipes, templates and the default output
directories; downloads go to a per-user cache shared by all checkouts.

Container side: every build runs at the same fixed paths, because CPython
records its build paths in `_sysconfigdata` and in debug info; building at one
path everywhere keeps outputs independent of where the checkout is.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from .errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RECIPES_DIR = PROJECT_ROOT / "recipes"
CONTAINERS_DIR = PROJECT_ROOT / "containers"
PACKAGE_DIR = Path(__file__).resolve().parent


def display_path(path: Path) -> str:
    """A path as a user should read it in messages: relative to the checkout when inside it."""
    path = Path(path)
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("cpython-wasm-recipes"))


@dataclass(frozen=True)
class Workspace:
    """The host directories one build reads and writes."""

    cache_dir: Path  # content-addressed downloads, shared between builds
    build_dir: Path  # store of intermediate products, and their logs
    dist_dir: Path  # published artifacts
    lock_dir: Path  # published lockfiles

    @classmethod
    def from_options(cls, cache_dir=None, build_dir=None, dist_dir=None, lock_dir=None):
        def absolute(value, default: Path, option: str | None = None) -> Path:
            return usable_directory(Path(value).expanduser().resolve(), option) if value else default

        return cls(
            cache_dir=absolute(cache_dir, default_cache_dir(), "--cache-dir"),
            # CPYTHON_WASM_BUILD_DIR: a store shared by several checkouts (CI jobs, the workflow tests).
            build_dir=absolute(build_dir or os.environ.get("CPYTHON_WASM_BUILD_DIR"), PROJECT_ROOT / "build",
                               "--build-dir" if build_dir else "CPYTHON_WASM_BUILD_DIR"),
            dist_dir=absolute(dist_dir, PROJECT_ROOT / "dist", "--dist-dir"),
            lock_dir=absolute(lock_dir, PROJECT_ROOT / "lockfiles", "--lock-dir"),
        )

    @property
    def store_dir(self) -> Path:
        return self.build_dir / "store"

    @property
    def logs_dir(self) -> Path:
        return self.build_dir / "logs"

    @property
    def locks_dir(self) -> Path:
        return self.build_dir / "locks"


def usable_directory(path: Path, option: str) -> Path:
    """`path` if it is a directory, or can be made one by this user; else a UserError naming the option."""
    existing = next(parent for parent in (path, *path.parents) if parent.exists())
    if not existing.is_dir():
        what = "is" if existing == path else f"would be inside {existing}, which is"
        raise UserError(f"{option} {path} {what} a file, not a directory. Pass a directory (it is created if missing).")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: {existing} is not writable by this user. Pass a directory you can write to, "
                        f"or run as a user who can.")
    return path


# Inside the containers.
CONTAINER_SOURCE = "/cpython"  # the unpacked CPython source, read-only (build dirs: see drivers.py)
CONTAINER_TOOLS = "/opt/cpython-wasm"  # our in-container helper (package.py), read-only
CONTAINER_OUTPUT = "/out"  # where the packaging phase writes
WASI_SDK_PATH = "/opt/wasi-sdk"  # the SDK directory inside the toolchain image
EMSDK_PATH = "/opt/emsdk"  # emsdk's prebuilt toolchain (provider release) inside the toolchain image
EMSCRIPTEN_PREFIX = "/opt/emscripten-prefix"  # C libraries compiled with emcc, inside the toolchain image
