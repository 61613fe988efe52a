"""An image's content made deterministic: one normalised layer, a config written here, an archive `docker load` reads.

`docker build` names an image by what made it (images.py), but its bytes differ on
every build: the engine stamps each layer with the time, and the build leaves logs
and caches behind. So after a build, the image's whole file system (`docker export`
of a container created from it, never started) becomes one layer by the rules in
RULES, its config is written here with fixed fields, and the result is loaded back
under the same tag. Its image ID is then the sha256 of that config, which names the
layer's sha256 (its diff_id): two builds of the same Dockerfile and context that
install the same files give the same ID, on any engine version (no BuildKit needed).

The archive is Docker's `docker save` layout (manifest.json, the config, the layer),
written deterministically; `invoke image-export` publishes it compressed and `invoke
image-import` checks one against a lockfile before loading it (read_archive: a
hostile archive is refused before the engine sees a byte).
"""

import gzip
import hashlib
import io
import json
import posixpath
import re
import shutil
import tarfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from cpython_wasm.container.tarball import write_tar
from cpython_wasm.files import sha256_path
from cpython_wasm.inputs.archives import READ_ERRORS, UnsafeArchive
from cpython_wasm.stages.stage import canonical_json

# Why each path is left out of the layer: it differed between two builds of the same
# image and nothing reads it, or the engine provides it at every run.
DROPPED = {
    ".dockerenv": "the engine's marker of a container, created at every run",
    "var/log/dpkg.log": "dpkg's log of the build, with its times",
    "var/log/alternatives.log": "update-alternatives' log of the build, with its times",
    "var/log/apt/history.log": "apt's log of the build, with its times",
    "var/log/apt/term.log": "apt's terminal log of the build, with its times",
    "var/log/apt/eipp.log.xz": "apt's solver log of the build, with its times",
    "var/cache/ldconfig/aux-cache": "ldconfig's cache of file inode numbers and times (ld.so never reads it)",
}
DROPPED_UNDER = {
    "dev": "the engine mounts a fresh /dev at every run (export shows its placeholders)",
    "var/lib/apt/lists": "the package indexes of the day of the build (the Dockerfiles remove them; a rule in case)",
    "var/cache/apt": "apt's downloaded .debs and package caches",
}
# And for every member kept:
#   mtime      clamped to the recipe's SOURCE_DATE_EPOCH (the time of the build otherwise: directories,
#              files written by maintainer scripts, pip's and our own files)
#   owner      numeric only, no user or group names (as dpkg gives them, not as the host names them)
#   PAX        only extended attributes kept (no atime or ctime records)
#   .pyc       a timestamp-checked .pyc records its source's mtime in its header: that field is clamped
#              exactly as the source's mtime is, so a .pyc valid before is valid after (pip's, compiled at
#              install time, differed between builds only there)
RULES = {**DROPPED, **{f"{path}/": reason for path, reason in DROPPED_UNDER.items()}}

LAYER = "layer.tar"
MANIFEST = "manifest.json"
CONFIG_FIELDS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels")  # what a run of the image sees
PYC_MAGIC_TAIL = b"\r\n"
MAX_CONFIG_BYTES = 1 << 20  # of a config or manifest.json in an archive (ours are a few kB)


@dataclass(frozen=True)
class ImageContent:
    """What an image is, by content: the engine's image ID (sha256 of the config) and its one layer's sha256."""

    id: str  # "sha256:<hex>"
    diff_id: str  # "sha256:<hex>"
    size: int  # of the layer, uncompressed

    def locked(self) -> dict:
        """As a lockfile's image records it (records/lock.py's LockedImage)."""
        return {"id": self.id, "diff_id": self.diff_id, "layer_size": self.size}

    @classmethod
    def from_locked(cls, image: dict) -> "ImageContent":
        return cls(image["id"], image["diff_id"], image["layer_size"])


def rule_of(name: str) -> str | None:
    """The rule (a key of RULES) that leaves the member `name` out of the layer; None if it is kept."""
    path = name.rstrip("/")
    if path in DROPPED:
        return path
    return next((f"{top}/" for top in DROPPED_UNDER if path.startswith(f"{top}/")), None)


def walk_key(name: str) -> tuple[str, ...]:
    """The order of `docker export` (a walk, each directory's names sorted), which hard links rely on."""
    return tuple(name.rstrip("/").split("/"))


def clamp_pyc(data: bytes, epoch: int) -> bytes:
    """A timestamp-checked .pyc (PEP 552 flags 0) with its recorded source mtime clamped to `epoch`."""
    if len(data) >= 16 and data[2:4] == PYC_MAGIC_TAIL and int.from_bytes(data[4:8], "little") == 0:
        recorded = int.from_bytes(data[8:12], "little")
        if recorded > epoch:
            return data[:8] + epoch.to_bytes(4, "little") + data[12:]
    return data


def normalise_member(member: tarfile.TarInfo, epoch: int) -> tarfile.TarInfo:
    member = member.replace(deep=False)
    member.mtime = min(int(member.mtime), epoch)
    member.uname = member.gname = ""
    member.pax_headers = {key: value for key, value in sorted(member.pax_headers.items())
                          if key.startswith("SCHILY.xattr.")}
    return member


def normalise_layer(export, output, epoch: int) -> dict[str, int]:
    """Write the file system read from `export` (a tar stream, in export's order) to `output` by the rules;
    how many members each rule dropped. The order is checked, never assumed: a hard link must follow its target."""
    dropped: Counter[str] = Counter()
    previous: tuple[str, ...] = ()
    written: set[str] = set()
    with tarfile.open(fileobj=export, mode="r|") as source, \
            tarfile.open(fileobj=output, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for member in source:
            key = walk_key(member.name)
            if key <= previous:
                raise ValueError(f"the engine's export is not in walk order at {member.name!r}")
            previous = key
            if rule := rule_of(member.name):
                dropped[rule] += 1
                continue
            member = normalise_member(member, epoch)
            if member.islnk() and member.linkname not in written:
                raise ValueError(f"hard link {member.name!r} precedes its target {member.linkname!r}")
            if member.isfile() and member.name.endswith(".pyc"):
                data = clamp_pyc(source.extractfile(member).read(), epoch)
                layer.addfile(member, io.BytesIO(data))
            elif member.isfile():
                layer.addfile(member, source.extractfile(member))
            else:
                layer.addfile(member)
            written.add(member.name)
    return dict(dropped)


def iso_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_config(built: dict, diff_id: str, epoch: int, extra_labels: dict[str, str]) -> bytes:
    """The config of the normalised image: what a run sees of `built` (the engine's inspect of the image the
    Dockerfile made), with no build time, host name, parent or history of the build's own."""
    seen = built.get("Config") or {}
    config = {key: seen[key] for key in CONFIG_FIELDS if seen.get(key)}
    config["Labels"] = {**config.get("Labels", {}), **extra_labels}
    return canonical_json({
        "architecture": built["Architecture"],
        "os": built["Os"],
        "created": iso_time(epoch),
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": iso_time(epoch), "created_by": "cpython-wasm-recipes: the image's file system, "
                                                               "normalised (cpython_wasm/stages/image_content.py)"}],
    })


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_archive(output, config: bytes, layer: Path, tag: str | None, epoch: int) -> None:
    """Docker's `docker save` layout, every member a plain file with fixed metadata (write_tar)."""
    config_name = digest(config).removeprefix("sha256:") + ".json"
    manifest = [{"Config": config_name, "RepoTags": [tag] if tag else [], "Layers": [LAYER]}]
    write_tar(output, [(MANIFEST, canonical_json(manifest)), (config_name, config), (LAYER, layer)], mtime=epoch)


def write_compressed_archive(path: Path, config: bytes, layer: Path, tag: str | None, epoch: int) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=raw, mtime=0) as out:
        write_archive(out, config, layer, tag, epoch)


class BadImageArchive(UnsafeArchive):
    """Exit status 3, as for any archive refused unread (inputs/archives.py)."""


def read_archive(archive: Path, directory: Path, known: dict[str, ImageContent]) -> tuple[bytes, ImageContent]:
    """An image archive's config and its content, its layer unpacked into `directory` (as layer.tar), once it
    is known to be one of `known` (image ID -> content, from a lockfile) and ours in shape: one config (a JSON
    file named by its sha256, first, as write_archive orders them), one layer of the known size and sha256, a
    manifest.json naming the two, no other member, every member a plain file. Anything else is refused before
    the engine sees a byte, and before more than the known layer's size is read."""

    def refuse(text: str) -> BadImageArchive:
        return BadImageArchive(
            f"{archive} is not an image archive of a lockfile here: {text}. `invoke image-import` loads what "
            f"`invoke image-export` wrote (Docker's save layout: one config, one layer, manifest.json, compressed "
            f"with gzip or not) for an image some lockfile under the lock directory records. Export it again "
            f"from a machine that built that image, or check where it came from.")

    config, content, manifest, layer_read = None, None, None, False
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if not member.isfile():
                    raise refuse(f"member {member.name!r} is not a plain file")
                if config is None:
                    if not re.fullmatch(r"[0-9a-f]{64}\.json", member.name) or member.size > MAX_CONFIG_BYTES:
                        raise refuse(f"its first member {member.name!r} is not a config (<sha256>.json, at most "
                                     f"{MAX_CONFIG_BYTES} bytes)")
                    config = tar.extractfile(member).read()
                    image_id = "sha256:" + member.name.removesuffix(".json")
                    if digest(config) != image_id:
                        raise refuse(f"its config {member.name} does not have that sha256")
                    if image_id not in known:
                        raise refuse(f"its image ID {image_id} is in no lockfile")
                    content = known[image_id]
                elif member.name == LAYER and not layer_read:
                    if member.size != content.size:
                        raise refuse(f"its layer is {member.size} bytes, the lockfile's {content.size}")
                    with open(directory / LAYER, "wb") as layer:
                        shutil.copyfileobj(tar.extractfile(member), layer, 1 << 20)
                    layer_read = True
                elif member.name == MANIFEST and manifest is None and member.size <= MAX_CONFIG_BYTES:
                    manifest = tar.extractfile(member).read()
                else:
                    raise refuse(f"member {member.name!r} is none of <sha256>.json, {LAYER} and {MANIFEST} "
                                 f"in that order, or one too many")
    except READ_ERRORS as error:
        raise refuse(f"it could not be read as a tarball ({error})") from None
    if config is None or manifest is None or not layer_read:
        raise refuse(f"it lacks {'its config' if config is None else LAYER if manifest else MANIFEST}")
    layer_digest = "sha256:" + sha256_path(directory / LAYER)
    if layer_digest != content.diff_id or json.loads(config)["rootfs"]["diff_ids"] != [layer_digest]:
        raise refuse(f"its layer's sha256 is {layer_digest}, the lockfile's {content.diff_id}")
    try:
        (entry,) = json.loads(manifest)
        names = (entry["Config"], entry["Layers"])
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        raise refuse(f"its {MANIFEST} does not name one config and its layers") from None
    if names != (image_id.removeprefix("sha256:") + ".json", [LAYER]):
        raise refuse(f"its {MANIFEST} names {names!r}, not the archive's config and {LAYER}")
    return config, content


class ListedFile(NamedTuple):
    """A member of a layer as two images' file systems are compared (sha256: of a regular file's content)."""

    type: str
    mode: str
    uid: int
    gid: int
    size: int
    mtime: int
    link: str
    sha256: str | None


def layer_listing(layer) -> dict[str, ListedFile]:
    """Each member of a layer (a tar stream), by its normalised path."""
    listing = {}
    with tarfile.open(fileobj=layer, mode="r|") as tar:
        for member in tar:
            content = hashlib.file_digest(tar.extractfile(member), "sha256").hexdigest() if member.isfile() else None
            listing[posixpath.normpath(member.name)] = ListedFile(member.type.decode(), oct(member.mode), member.uid,
                                                                  member.gid, member.size, int(member.mtime),
                                                                  member.linkname, content)
    return listing
