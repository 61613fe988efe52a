"""Publishing the images a build used, and loading them where there is no network and no registry.

    invoke image-export --python X --sdk N   the native and toolchain images of that lockfile, each as
                                             dist/image-<name>-<tag identity>.tar.gz (+ SHA256SUMS)
    invoke image-import ARCHIVE              checked against the lockfiles, then loaded under their tag

Both images are exported: the toolchain image builds the libraries and python.wasm, the native one the
build python and the packages. An archive holds the normalised image (image_content.py); its bytes come
from the engine (`docker save`, whose layer is the very tar that was loaded) and are checked against the
lockfile's image ID and diff_id before they are written. Importing checks the archive against every
lockfile of the lock directory (read_archive): an image no lockfile names, or any other shape, is refused
before the engine sees it. A build then finds the images by their tags and needs no base image, apt or
network (build.py's ensure_images).
"""

import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cpython_wasm.errors import UserError
from cpython_wasm.files import sha256_path, write_atomically
from cpython_wasm.paths import Workspace, display_path
from cpython_wasm.records.lock import lockfile_path, read_build_lock
from cpython_wasm.records.verify import check_checksums_file, record_checksums
from cpython_wasm.stages import images
from cpython_wasm.stages.image_content import ImageContent, digest, read_archive, write_compressed_archive

IMAGE_KEYS = ("native", "toolchain")  # the lockfile's images, in the order a build makes them


@dataclass
class LockedImageRecord:
    """What the lockfiles say of one image content: its tags (one unless a Dockerfile changed but not what it
    installs), and the SOURCE_DATE_EPOCH of its base."""

    content: ImageContent
    epoch: int
    tags: set[str] = field(default_factory=set)


def archive_name(tag: str) -> str:
    """image-<name>-<tag identity>.tar.gz, from cpython-wasm/<name>:<identity>."""
    repository, identity = tag.rsplit(":", 1)
    return f"image-{repository.rsplit('/', 1)[-1]}-{identity}.tar.gz"


def export_images(engine, workspace: Workspace, artifact_name: str, progress) -> list[Path]:
    """Write the images recorded in lockfiles/<artifact_name>.json to dist/, checked against it; their paths.
    engine() connects to the Docker engine: only once the lockfile is read."""
    lockfile = lockfile_path(workspace.lock_dir, artifact_name)
    if not lockfile.is_file():
        raise UserError(f"No lockfile {display_path(lockfile)}: `invoke image-export` publishes the images a build "
                        f"recorded. Build the selection first (`invoke build` with the same options), or pass "
                        f"--lock-dir.")
    lock = read_build_lock(lockfile)
    dist = workspace.dist_dir
    dist.mkdir(parents=True, exist_ok=True)
    check_checksums_file(dist)
    client = engine()
    written = []
    for key in IMAGE_KEYS:
        image = lock["images"][key]
        expected = ImageContent.from_locked(image)
        progress(f"exporting {image['tag']} ({expected.size:,} bytes uncompressed)")
        with tempfile.TemporaryDirectory(dir=dist, prefix=".image-") as work:
            config, layer = _saved(client, image["tag"], expected, display_path(lockfile), Path(work))
            archive = Path(work) / archive_name(image["tag"])
            write_compressed_archive(archive, config, layer, image["tag"], lock["base"]["source_date_epoch"])
            written.append(write_atomically(dist / archive.name, archive))
    record_checksums(dist, written)
    return written


def _saved(client, tag: str, expected: ImageContent, lockfile: str, work: Path) -> tuple[bytes, Path]:
    """The config and layer of the image tagged `tag`, from `docker save`, once they are the lockfile's."""
    content = images.normalised_content(client, tag)
    if content != expected:
        found = f"its image is {content.id}" if content else "no normalised image has that tag here"
        raise UserError(f"Image {tag} is not the one {lockfile} records ({expected.id}): {found}. Export from the "
                        f"machine that built it, or build the selection again (`invoke build`) and commit its "
                        f"lockfile; nothing was written.")
    with tarfile.open(fileobj=images.readable(client.api.get_image(tag, chunk_size=images.CHUNK)), mode="r|") as tar:
        config, layer = None, work / "layer.tar"
        for member in tar:
            if member.isfile() and member.name == f"{expected.id.removeprefix('sha256:')}.json":
                config = tar.extractfile(member).read()
            elif member.isfile() and member.name.endswith("/layer.tar"):
                with open(layer, "wb") as output:
                    shutil.copyfileobj(tar.extractfile(member), output, 1 << 20)
    if config is None or digest(config) != expected.id or "sha256:" + sha256_path(layer) != expected.diff_id:
        raise UserError(f"The engine's `docker save` of {tag} did not give back the config and layer {lockfile} "
                        f"records ({expected.id}, layer {expected.diff_id}); nothing was written. Check the "
                        f"engine (`docker version`) and try again.")
    return config, layer


def known_images(lock_dir: Path) -> dict[str, LockedImageRecord]:
    """Every image the lockfiles of `lock_dir` record, by image ID."""
    known: dict[str, LockedImageRecord] = {}
    for lockfile in sorted(lock_dir.glob("*.json")):
        lock = read_build_lock(lockfile)
        for key in IMAGE_KEYS:
            image = lock["images"][key]
            record = known.setdefault(image["id"], LockedImageRecord(ImageContent.from_locked(image),
                                                                      lock["base"]["source_date_epoch"]))
            record.tags.add(image["tag"])
    return known


def import_image(engine, archive: Path, lock_dir: Path) -> tuple[ImageContent, list[str]]:
    """Load `archive` once it is checked against the lockfiles of `lock_dir`; its content and the tags it got.
    engine() connects to the Docker engine: only once the archive is found to be one of theirs."""
    if not archive.is_file():
        raise UserError(f"No image archive at {display_path(archive)}. Pass a file written by `invoke image-export` "
                        f"(dist/image-<name>-<identity>.tar.gz).")
    known = known_images(lock_dir)
    if not known:
        raise UserError(f"No lockfile in {display_path(lock_dir)}: an image archive is checked against the image IDs "
                        f"lockfiles record before it is loaded. Pass --lock-dir.")
    work_parent = Workspace.from_options().build_dir
    work_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_parent, prefix=".image-") as work:
        config, content = read_archive(archive, Path(work), {image_id: record.content
                                                             for image_id, record in known.items()})
        record = known[content.id]
        tags = sorted(record.tags)
        client = engine()
        images.load_archive(client, config, Path(work) / "layer.tar", tags[0], record.epoch, Path(work))
    for tag in tags[1:]:
        repository, version = tag.rsplit(":", 1)
        client.api.tag(content.id, repository, version)
    return content, tags

