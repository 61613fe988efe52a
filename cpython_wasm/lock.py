"""Lockfiles: every input and every output of one build, by sha256.

One lockfile per artifact (python × target × SDK × provider), named like the
artifact: `lockfiles/<artifact>.json`. JSON with sorted keys, one value per
line, no timestamps and no host paths, so two builds of the same inputs write
the same bytes and a changed hash shows as a one-line diff. Committing it is
how a build is published; rebuilding from it is how a build is checked.

    build       what was asked for (python, target, SDK, provider, arch, options)
    recipes     sha256 of each recipe file the build read
    base        the base root filesystem: suite, mirror, and the rootfs tarball's sha256
    images      per image: tag (the hash of its Dockerfile and context), the
                Dockerfile's sha256, its context files, and every Debian package
                installed in it (name, version, architecture, .deb sha256)
    inputs      every fetched file: name, sha256, size, URLs
    products    the store identity of each intermediate product
    outputs     sha256 and size of the artifact, of python.wasm and of the manifest
    tests       written by `invoke test`, not by the build: per suite, the counts of
                CPython's regression tests run on this artifact and its known failures
"""

import hashlib
import json
from pathlib import Path

from .errors import UserError
from .package import sha256_path, write_atomically
from .paths import display_path
from .recipes import TOOLCHAINS

LOCKFILE_VERSION = 1


def lockfile_path(lock_dir: Path, artifact_name: str) -> Path:
    return lock_dir / f"{artifact_name}.json"


def describe_pin(pin) -> dict:
    return {"name": pin.file, "sha256": pin.sha256, "size": pin.size, "urls": list(pin.urls)}


def describe_recipes(plan) -> dict[str, str]:
    """sha256 of each recipe file a plan was resolved from, by its path as users read it."""
    return {display_path(path): sha256_path(path) for path in plan.recipe_paths.values()}


def locked_toolchain(build: dict) -> tuple[str, int | str]:
    """The target and toolchain release a lockfile's `build` names (its wasi_sdk or emsdk key)."""
    return next((target, build[kind.lock_key]) for target, kind in TOOLCHAINS.items() if kind.lock_key in build)


def describe_image(spec, packages: list[dict]) -> dict:
    return {
        "tag": spec.tag,
        "dockerfile_sha256": hashlib.sha256(spec.dockerfile.encode()).hexdigest(),
        "context": {name: sha256 for name, sha256, _ in spec.files},
        "packages": packages,
    }


def with_test_results(lock: dict, previous_path: Path) -> dict:
    """The lock with the test results of the lockfile it replaces, if they are of the very same artifact."""
    try:
        previous = json.loads(Path(previous_path).read_text(encoding="utf-8"))
        name = f"{lock['artifact']}.tar.gz"
        if previous["tests"] and previous["outputs"][name]["sha256"] == lock["outputs"][name]["sha256"]:
            return {**lock, "tests": previous["tests"]}
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no previous lockfile, or no results of this artifact in it
    return lock


def encode(lock: dict) -> bytes:
    return (json.dumps(lock, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def write_lock(path: Path, lock: dict) -> Path:
    return write_atomically(path, encode({"lockfile_version": LOCKFILE_VERSION, **lock}))


def read_lock(path: Path) -> dict:
    try:
        lock = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"Lockfile {display_path(path)} does not exist. Pass the path of a lockfile written by `invoke build`.") from None
    except (OSError, ValueError) as error:
        raise UserError(f"Lockfile {display_path(path)} cannot be read as JSON: {error}.") from None
    if not isinstance(lock, dict) or lock.get("lockfile_version") != LOCKFILE_VERSION:
        raise UserError(
            f"Lockfile {display_path(path)} has lockfile_version {lock.get('lockfile_version') if isinstance(lock, dict) else None!r}; "
            f"this version of cpython-wasm-recipes reads version {LOCKFILE_VERSION}."
        )
    return lock
