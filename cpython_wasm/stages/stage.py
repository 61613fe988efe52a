"""A stage: one step of a build as a frozen value, named by the hash of that whole value (a Nix derivation).

A container stage says everything that determines what it makes:

    image        the image it runs in, by its content: its image ID (images.StageImage)
    phases       its commands in order, each with its working directory (one container run each)
    environment  what every phase sees in its environment
    inputs       what is mounted read-only: other stages' products (by their identity) and files (by sha256)
    output       where its one writable directory is mounted
    produces     the files it must have made there: a helper that wrote elsewhere fails here, not a stage later

An unpack stage is the one step that runs on the host: a tarball unpacked, member by member checked, with
the directories and files the read-only source must hold.

`identity` is the hash of the canonical JSON of every field, computed here and nowhere else: nothing is
listed by hand, so nothing can be left out. Where a file or product lies on the host is not part of it
(the same stage has one identity in every store and checkout); what it contains is. The store (store.py)
finds a stage's product by that identity or has an executor (executor.py) make it.
"""

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cpython_wasm.files import sha256_path

IDENTITY_LENGTH = 32  # hex digits (128 bits) shown in store paths and image tags


def canonical_json(data) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def identity(kind: str, value) -> str:
    """The identity of anything the store or the engine keeps (a stage, an image, a root filesystem):
    a hash of its kind and its whole value."""
    return hashlib.sha256(canonical_json({"kind": kind, "inputs": value})).hexdigest()[:IDENTITY_LENGTH]


HOST_ONLY = {"host": True}  # field metadata: where a thing lies on this host, not what it is


def fields_of(thing) -> dict:
    """A frozen dataclass as a JSON object, field by field, host-only fields left out."""
    return {f.name: value_of(getattr(thing, f.name)) for f in dataclasses.fields(thing) if not f.metadata.get("host")}


def value_of(thing):
    """The JSON value of a stage's field: a stage an input refers to by its name and identity, other
    dataclasses field by field, tuples as lists."""
    if isinstance(thing, (Stage, Unpack)):
        return {"name": thing.name, "identity": thing.identity}
    if dataclasses.is_dataclass(thing):
        return fields_of(thing)
    if isinstance(thing, (tuple, list)):
        return [value_of(item) for item in thing]
    if isinstance(thing, Path):
        raise TypeError(f"{thing}: a host path is no part of a stage's value (mark its field HOST_ONLY)")
    return thing


class Hashed:
    """A frozen dataclass named by the hash of its whole value (its fields, host-only ones left out)."""

    @cached_property
    def identity(self) -> str:
        return identity(self.name, fields_of(self))

    def value(self) -> dict:
        return fields_of(self)


@dataclass(frozen=True)
class Phase:
    """One container run of a stage: the command, and where it starts."""

    name: str
    command: tuple[str, ...]
    workdir: str


@dataclass(frozen=True)
class FileInput:
    """A file mounted read-only, named by its content: a pinned input or one of this project's scripts."""

    container: str
    sha256: str
    host: Path = field(metadata=HOST_ONLY, compare=False)

    @classmethod
    def of(cls, container: str, host: Path) -> "FileInput":
        return cls(container, sha256_path(host), Path(host))


@dataclass(frozen=True)
class ProductInput:
    """Another stage's product, mounted read-only."""

    container: str
    stage: "Stage | Unpack"


@dataclass(frozen=True)
class Unpack(Hashed):
    """The CPython source, unpacked on the host, with what its build helper would create in it.

    The source is mounted read-only into every stage, so the helper's output directories (mount points)
    and its Modules/Setup.local are made here, once."""

    name: str
    archive: str  # the tarball's file name
    sha256: str  # its content
    directories: tuple[str, ...]
    files: tuple[tuple[str, str], ...]  # (path in the tree, its text)
    host: Path = field(metadata=HOST_ONLY, compare=False)  # where the verified tarball is
    kind: str = "source"


@dataclass(frozen=True)
class Stage(Hashed):
    """A step that runs in containers (see the module's docstring)."""

    kind: str  # what it is, as progress and the lockfile's products name it: build-python, host, package...
    name: str  # also the store directory's suffix: e.g. host-python-3.13.5-wasi_sdk-25-debian
    image: str
    phases: tuple[Phase, ...]
    environment: tuple[tuple[str, str], ...]
    inputs: tuple[FileInput | ProductInput, ...]
    output: str
    produces: tuple[str, ...]

    @property
    def environment_dict(self) -> dict[str, str]:
        return dict(self.environment)


def frozen_environment(environment: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(environment.items()))
