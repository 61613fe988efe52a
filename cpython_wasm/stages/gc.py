"""Garbage collection: remove the store products and images that no lockfile reaches, as nix-collect-garbage
does from its roots.

The roots are the lockfiles in lockfiles/ (and any given with --keep): each names the products of its build
(`products`) and its images (`base.image`, `images.*.tag`). From a product the store follows what it was
made from (the stage value kept beside it names the identities of the products it mounted), so the source
and the build python a host product was built from are kept with it; the root filesystem an image was
imported from shares that image's identity. Everything else in the store, with its logs, is removed,
and so is every image this store made (its logs name it: images.image_log_dir, a root filesystem product)
that no root names.

Never removed: a product or image a running build holds (store.py's `.use` locks; the engine refuses too
while a container uses an image), and a product being built. Images another store made, or not in our
repository, are never touched: stores may share the engine, and one's roots are not the other's.
"""

import fcntl
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import docker.errors
from filelock import FileLock, Timeout

from cpython_wasm.errors import UserError
from cpython_wasm.paths import display_path, open_lock_file
from cpython_wasm.records.lock import read_build_lock
from cpython_wasm.stages.images import IMAGE_LOG_PREFIX, REPOSITORY, ROOTFS_PREFIX, raw_tag
from cpython_wasm.stages.stage import IDENTITY_LENGTH
from cpython_wasm.stages.store import BUILDING_PREFIX, INFO_SUFFIX, REPLACED_PREFIX, Store, image_key

# A product's directory: its identity (hex), a dash, its name.
IDENTITY_PREFIX = IDENTITY_LENGTH + 1


@dataclass
class Roots:
    products: set[str] = field(default_factory=set)  # identities
    images: set[str] = field(default_factory=set)  # tags

    @classmethod
    def of(cls, lockfiles: list[Path]) -> "Roots":
        roots = cls()
        for lockfile in lockfiles:
            lock = read_build_lock(lockfile)  # a malformed root is an error: collecting without it would remove its products
            roots.products.update(lock["products"].values())
            roots.images.update([lock["base"]["image"], *(image["tag"] for image in lock["images"].values())])
        # An imported base image and its root filesystem product share the identity.
        roots.products.update(tag.rsplit(":", 1)[1] for tag in roots.images if tag.startswith(f"{REPOSITORY}/"))
        return roots


@dataclass
class Collection:
    """What `invoke gc` removed (or, with --dry-run, would remove), and what it kept."""

    removed_products: list[str] = field(default_factory=list)  # store directory names
    removed_images: list[str] = field(default_factory=list)
    kept_products: int = 0
    kept_images: int = 0
    held: list[str] = field(default_factory=list)  # products or images a running build holds
    store_bytes: int = 0
    image_bytes: int = 0


def reachable(store: Store, roots: set[str]) -> set[str]:
    """The identities of the roots and of every product they were made from, as the stage values record."""
    infos = {entry.name[:IDENTITY_LENGTH]: entry for entry in _entries(store) if entry.name.endswith(INFO_SUFFIX)}
    reached, pending = set(), list(roots)
    while pending:
        identity = pending.pop()
        if identity in reached:
            continue
        reached.add(identity)
        if identity in infos:
            pending += _mounted(json.loads(Path(infos[identity].path).read_text(encoding="utf-8")).get("stage", {}))
    return reached


def _mounted(value) -> list[str]:
    """The identities of the products a stage value mounts ({"stage": {"name": ..., "identity": ...}} in its inputs)."""
    found, values = [], [value]
    while values:
        value = values.pop()
        if isinstance(value, dict):
            stage = value.get("stage")
            if isinstance(stage, dict) and isinstance(stage.get("identity"), str):
                found.append(stage["identity"])
            values += value.values()
        elif isinstance(value, list):
            values += value
    return found


def _entries(store: Store) -> list[os.DirEntry]:
    with os.scandir(store.store_dir) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def size_of(path: Path) -> int:
    """Bytes on disk under `path`, links not followed."""
    if not path.exists() and not path.is_symlink():
        return 0
    if not path.is_dir() or path.is_symlink():
        return path.lstat().st_size
    total = 0
    for directory, _subdirectories, files in os.walk(path):
        total += sum(os.lstat(os.path.join(directory, name)).st_size for name in files)
    return total


def collect(store: Store, roots: Roots, client=None, dry_run: bool = False) -> Collection:
    """Remove what `roots` do not reach (see the module's docstring); `client`: the Docker engine, or None to
    leave images alone."""
    result = Collection()
    keep = reachable(store, roots.products)
    for entry in _entries(store):
        name = entry.name
        if name.startswith(REPLACED_PREFIX) or name.endswith(INFO_SUFFIX) or not entry.is_dir(follow_symlinks=False):
            continue  # removed with their product (or by the build that replaces it)
        if name.startswith(BUILDING_PREFIX):
            _collect_building(store, Path(entry.path), result, dry_run)
            continue
        if name[:IDENTITY_LENGTH] in keep:
            result.kept_products += 1
            continue
        _collect_product(store, Path(entry.path), result, dry_run)
    if client is not None:
        _collect_images(store, client, roots.images, result, dry_run)
    return result


def _collect_product(store: Store, path: Path, result: Collection, dry_run: bool) -> None:
    identity = path.name[:IDENTITY_LENGTH]
    descriptor = open_lock_file(store.locks_dir / f"{identity}.use")
    try:
        if not _try_exclusive(descriptor):
            result.held.append(path.name)
            return
        parts = [path, path.with_name(path.name + INFO_SUFFIX), store.logs_dir / path.name]
        result.store_bytes += sum(size_of(part) for part in parts)
        result.removed_products.append(path.name)
        if not dry_run:
            for part in parts:
                _remove(part)
    finally:
        os.close(descriptor)


def _collect_building(store: Store, path: Path, result: Collection, dry_run: bool) -> None:
    """A product's temporary directory: a live build's (its build lock is held: left alone) or a killed one's."""
    identity = path.name.removeprefix(BUILDING_PREFIX)[:IDENTITY_LENGTH]
    lock = FileLock(store.locks_dir / f"{identity}.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        result.held.append(path.name)
        return
    try:
        result.store_bytes += size_of(path)
        result.removed_products.append(path.name)
        if not dry_run:
            shutil.rmtree(path)
    finally:
        lock.release()


def _collect_images(store: Store, client, rooted: set[str], result: Collection, dry_run: bool) -> None:
    """Our images no root names. The bytes: what the engine's layers took before and after (layers a kept image
    shares are not freed); with dry_run, the sizes the engine reports for each image, at most that."""
    before = client.df()["LayersSize"] if not dry_run else 0
    made_here = images_made_by(store)
    for image in client.images.list():
        for tag in image.tags:
            if tag not in made_here:
                continue
            if tag in rooted:
                result.kept_images += 1
                continue
            descriptor = open_lock_file(store.locks_dir / f"{image_key(tag)}.use")
            try:
                if not _try_exclusive(descriptor):
                    result.held.append(tag)
                    continue
                if not dry_run:
                    try:
                        client.images.remove(tag, noprune=False)
                    except docker.errors.APIError:  # a container (of a running build, or stopped) uses it
                        result.held.append(tag)
                        continue
                result.removed_images.append(tag)
                result.image_bytes += image.attrs.get("Size", 0) if dry_run else 0
            finally:
                os.close(descriptor)
    if not dry_run:
        result.image_bytes = max(0, before - client.df()["LayersSize"])


def images_made_by(store: Store) -> set[str]:
    """The tags of the images this store built (a log directory each) or imported (a root filesystem product), and
    of those it built the raw tag, which a normalisation that stopped leaves behind."""
    tags = set()
    for directory in (store.logs_dir, store.store_dir):
        for entry in (os.scandir(directory) if directory.is_dir() else ()):
            identity, _, name = entry.name.partition("-")
            if len(identity) != IDENTITY_LENGTH or not entry.is_dir(follow_symlinks=False):
                continue
            if name.startswith(IMAGE_LOG_PREFIX):
                tag = f"{REPOSITORY}/{name.removeprefix(IMAGE_LOG_PREFIX)}:{identity}"
                # With what `docker build` made of it, if its normalisation stopped (kept to be looked at).
                tags.update((tag, raw_tag(tag)))
            elif name.startswith(ROOTFS_PREFIX):
                tags.add(f"{REPOSITORY}/base-{name.removeprefix(ROOTFS_PREFIX)}:{identity}")
    return tags


def _try_exclusive(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def root_lockfiles(lock_dir: Path, keep: list[Path]) -> list[Path]:
    """The lockfiles in lock_dir, and those given to keep (each must exist)."""
    for path in keep:
        if not path.is_file():
            raise UserError(f"--keep {display_path(path)} is not a lockfile (no such file). Pass the path of a lockfile "
                            f"written by `invoke build`: the products and images it names are kept.")
    return sorted(lock_dir.glob("*.json")) + list(keep)
