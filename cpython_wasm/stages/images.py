"""Images: the base root filesystem and the toolchain images, built with the Docker SDK.

    base       mmdebstrap of a Debian suite (SOURCE_DATE_EPOCH fixed), `docker import`ed
    native     base + pinned native tools (containers/native.Dockerfile.j2)
    toolchain  native + a WASI SDK (containers/wasi-sdk-<provider>.Dockerfile.j2)
               or Emscripten (containers/emsdk-<provider>.Dockerfile.j2)

Every image is tagged with the hash of what made it: for the base, its
recipe; for the others, the rendered Dockerfile and the sha256 of every file
in its build context (whose FROM line names the parent's tag, so identities
chain). An image whose tag exists is reused. The build context holds only the
Dockerfile, the helper files from containers/files/ and verified pinned inputs.

What `docker build` made is then normalised (image_content.py): one layer, a
config written here, loaded back under the same tag; so the native and
toolchain images are also named by their content (image ID and diff_id), the
same on every machine that installs the same files. Stages name and run in an
image by that content (StageImage), never by its tag.
"""

import contextlib
import io
import json
import posixpath
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import docker
import docker.errors
from filelock import FileLock

from cpython_wasm.container.tarball import write_tar
from cpython_wasm.errors import BuildError, UserError
from cpython_wasm.files import sha256_path
from cpython_wasm.paths import CONTAINERS_DIR, display_path
from cpython_wasm.recipes.plan import Plan
from cpython_wasm.stages.engine import ENGINE_GONE, engine_gone, remove_container
from cpython_wasm.stages.image_content import (
    ImageContent,
    digest,
    image_config,
    layer_listing,
    normalise_layer,
    write_archive,
)
from cpython_wasm.stages.render import render
from cpython_wasm.stages.stage import canonical_json, identity
from cpython_wasm.stages.store import Store, record_timings

REPOSITORY = "cpython-wasm"
IMAGE_LOG_PREFIX = "image-"  # of an image's log directory: <identity>-image-<name>
ROOTFS_PREFIX = "rootfs-"  # of a base's root filesystem product: <identity>-rootfs-<base name>
LABEL_PREFIX = "io.github.cpython-wasm-recipes"
CHUNK = 1 << 20  # bytes read at once from the engine's export and save streams
INVENTORY = "/usr/local/share/cpython-wasm/packages.json"
ROOTFS_LABEL = f"{LABEL_PREFIX}.rootfs.sha256"  # of the base image, inherited by those built on it
# Labels of a normalised image: the tag it was made for (so an image is normalised only once) and its layer's size.
NORMALISED_LABEL = f"{LABEL_PREFIX}.image"
LAYER_SIZE_LABEL = f"{LABEL_PREFIX}.layer.size"


@dataclass(frozen=True)
class ImageSpec:
    """A rendered Dockerfile and the files of its build context."""

    name: str  # e.g. "native-debian-trixie"
    dockerfile: str
    files: tuple[tuple[str, str, Path], ...]  # (name in the context, sha256, where it is on the host)

    @property
    def identity(self) -> str:
        return identity(f"image-{self.name}", {
            "dockerfile": self.dockerfile,
            "files": {name: sha256 for name, sha256, _ in self.files},
        })

    @property
    def tag(self) -> str:
        return f"{REPOSITORY}/{self.name}:{self.identity}"


@dataclass(frozen=True)
class StageImage:
    """An image as a stage names it and runs in it: by its content, the ID of its normalised config (which names
    its one layer's diff_id). So a stage's identity, and every product's, says exactly which bytes it ran in, not
    only which Dockerfile was meant to make them (the spec's tag)."""

    spec: ImageSpec
    id: str  # sha256:<64 hex digits>


def helper_file(name: str, directory: Path = CONTAINERS_DIR / "files") -> tuple[str, str, Path]:
    path = directory / name
    if not path.is_file():
        raise UserError(f"containers/files/{name} does not exist; the images need it. Restore it from this "
                        f"project's repository (git checkout -- containers/files/{name}).")
    return name, sha256_path(path), path


@dataclass(frozen=True)
class Rootfs:
    """The base root filesystem, bootstrapped by mmdebstrap on the host: a store product, and the base image's tag.

    Its value is the base recipe but for the native tools pinned beside it (those are the native image's)."""

    base_name: str
    recipe: str  # the recipe's JSON, canonical: a frozen value

    @classmethod
    def of(cls, plan: Plan) -> "Rootfs":
        return cls(plan.base_name, canonical_json(plan.base.model_dump(mode="json", exclude={"packages"})).decode())

    @property
    def name(self) -> str:
        return ROOTFS_PREFIX + self.base_name

    def value(self) -> dict:
        return {"name": self.base_name, **json.loads(self.recipe)}

    @cached_property
    def identity(self) -> str:
        return identity(self.name, self.value())


def base_tag(plan: Plan) -> str:
    """Tagged with the identity of its root filesystem product, so the two are easy to match.

    A registry image pinned by digest is named by that reference itself."""
    if plan.base.image:
        return plan.base.image
    return f"{REPOSITORY}/base-{plan.base_name}:{Rootfs.of(plan).identity}"


def native_spec(plan: Plan) -> ImageSpec:
    dockerfile = render(
        "native.Dockerfile.j2",
        base_image=base_tag(plan), base_name=plan.base_name, suite=plan.base.suite,
        packages=plan.base.packages,
    )
    return ImageSpec(f"native-{plan.base_name}", dockerfile, (helper_file("dpkg-inventory.py"),))


def pinned_file(pin, cached_path) -> tuple[str, str, Path]:
    """A pinned input in an image's build context: `cached_path(pin)` says where it is (or will be) in the cache."""
    return pin.file, pin.sha256, cached_path(pin)


def image_exists(client, tag: str) -> bool:
    """Whether the engine has the image `tag` (or an image ID)."""
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


@dataclass(frozen=True)
class BaseImage:
    tag: str
    rootfs_sha256: str | None  # None for a registry image (its digest is in the tag)
    reused: bool


def ensure_base(client, plan: Plan, store: Store, fresh: bool = False) -> BaseImage:
    """Import the base image, bootstrapping its root filesystem (a store product) if needed.

    fresh: bootstrap (in this store) and import again even if the tag exists,
    as a rebuild that checks the root filesystem's hash does."""
    if plan.base.image:
        return _pull_pinned(client, plan.base.image)
    tag = base_tag(plan)
    repository, version = tag.rsplit(":", 1)
    with FileLock(store.locks_dir / f"image-{version}.lock"):
        try:
            labels = client.images.get(tag).labels or {}
            if not fresh:
                return BaseImage(tag, labels[ROOTFS_LABEL], reused=True)
        except (docker.errors.ImageNotFound, KeyError):
            pass
        product = store.realise(Rootfs.of(plan), lambda directory, log_dir: _bootstrap(plan, directory, log_dir))
        rootfs_sha256 = (product.path / "rootfs.tar.sha256").read_text().strip()
        labels = {
            "org.opencontainers.image.title": f"cpython-wasm base root filesystem ({plan.base_name})",
            f"{LABEL_PREFIX}.recipe": f"recipes/base/{plan.base_name}.toml",
            ROOTFS_LABEL: rootfs_sha256,
        }
        client.api.import_image_from_file(
            str(product.path / "rootfs.tar"), repository=repository, tag=version,
            changes=[f'LABEL {key}="{value}"' for key, value in labels.items()] + ['CMD ["/bin/bash"]'],
        )
    return BaseImage(tag, rootfs_sha256, reused=False)


def _pull_pinned(client, reference: str) -> BaseImage:
    """Pull a registry image by digest (the engine checks the content against it)."""
    if image_exists(client, reference):
        return BaseImage(reference, None, reused=True)
    try:
        client.images.pull(reference)
    except docker.errors.APIError as error:
        raise BuildError(
            f"Pulling the base image {reference} failed: {error.explanation or error}. Check that the registry "
            f"is reachable and still has that digest, or drop the image setting to bootstrap the base with mmdebstrap."
        ) from None
    return BaseImage(reference, None, reused=False)


def _bootstrap(plan: Plan, directory: Path, log_dir: Path) -> None:
    """mmdebstrap the base suite into directory/rootfs.tar, with a fixed SOURCE_DATE_EPOCH."""
    if shutil.which("mmdebstrap") is None:
        raise UserError(
            "mmdebstrap is not installed; it bootstraps the Debian base image. Run `scripts/setup` "
            "(or `apt-get install mmdebstrap`) and try again."
        )
    base = plan.base
    command = ["mmdebstrap", f"--variant={base.variant}", f"--components={','.join(base.components)}",
               *(f"--aptopt={option}" for option in base.apt_options),
               base.suite, str(directory / "rootfs.tar"), base.mirror]
    log = log_dir / "mmdebstrap.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as output:
        output.write(f"$ SOURCE_DATE_EPOCH={base.source_date_epoch} {' '.join(command)}\n".encode())
        output.flush()
        result = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT,
                                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                     "SOURCE_DATE_EPOCH": str(base.source_date_epoch)})
    if result.returncode != 0:
        raise BuildError(
            f"Bootstrapping the {plan.base_name} root filesystem with mmdebstrap failed (exit status "
            f"{result.returncode}); its log is {display_path(log)}. Check that {base.mirror} is reachable "
            f"and serves suite {base.suite!r}, or pass --debian-mirror."
        )
    (directory / "rootfs.tar.sha256").write_text(sha256_path(directory / "rootfs.tar") + "\n")


_MISSING_VERSION = re.compile(r"E: Version '([^']+)' for '([^']+)' was not found")
# The engine wraps each chunk a build step writes to stderr in colour codes, so
# a message that arrives in pieces ("E:", " ", "Version ...") has codes inside it.
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class EnsuredImage:
    content: ImageContent
    reused: bool  # its tag existed, normalised


def ensure_image(client, spec: ImageSpec, store: Store, mirror: str, epoch: int, fresh: bool = False) -> EnsuredImage:
    """Build and normalise the image unless its tag exists, normalised.

    fresh: build it again, without the engine's layer cache, and move the tag
    to the result (same inputs, so the same image if apt resolves the same).

    `docker build` tags what it makes with raw_tag(tag), never the tag itself, which only ever names a normalised
    image: a build in another store (a rebuild's fresh images) then never leaves the tag naming an image not yet
    normalised, which a build or a test asking for the tag's content meanwhile would find not built."""
    log = image_log_dir(store, spec) / "docker-build.log"
    with FileLock(store.locks_dir / f"image-{spec.identity}.lock"):
        if not fresh and image_exists(client, spec.tag):
            content = normalised_content(client, spec.tag)
            if content:
                return EnsuredImage(content, reused=True)
            # Built before images were normalised: made deterministic now, its file system as it is.
            return EnsuredImage(_normalise(client, spec.tag, epoch, store, log.parent), reused=False)
        start = time.monotonic()
        _docker_build(client, spec, mirror, log, fresh)
        built = time.monotonic()
        content = _normalise(client, spec.tag, epoch, store, log.parent, source=raw_tag(spec.tag))
        end = time.monotonic()
        record_timings(log.parent, {"docker build": built - start, "normalise": end - built}, end - start)
    return EnsuredImage(content, reused=False)


def _docker_build(client, spec: ImageSpec, mirror: str, log: Path, fresh: bool) -> None:
    context = io.BytesIO(build_context(spec))
    log.parent.mkdir(parents=True, exist_ok=True)
    error = None
    with open(log, "w", encoding="utf-8") as output:
        output.write(spec.dockerfile + "\n")
        try:
            stream = client.api.build(fileobj=context, custom_context=True, tag=raw_tag(spec.tag), rm=True,
                                      forcerm=True, pull=False, nocache=fresh, decode=True)
            for chunk in stream:
                if "error" in chunk:
                    error = chunk["error"].strip()
                    output.write(f"ERROR: {error}\n")
                elif "stream" in chunk:
                    output.write(_COLOUR.sub("", chunk["stream"]))
                elif "status" in chunk:
                    output.write(chunk["status"] + "\n")
        except ENGINE_GONE:
            raise engine_gone(f"image {spec.name}", log) from None
    if error is not None:
        missing = _MISSING_VERSION.search(log.read_text(encoding="utf-8"))
        if missing:
            raise BuildError(
                f"Debian's archive at {mirror} no longer serves {missing.group(2)} {missing.group(1)}, "
                f"which the recipes pin (image {spec.name}; log {display_path(log)}). Rebuild from the archive "
                f"as it was: pass --debian-mirror with a snapshot.debian.org URL from a date when that "
                f"version was current (e.g. http://snapshot.debian.org/archive/debian/20251201T000000Z/), "
                f"or update the pins in the recipe."
            )
        raise BuildError(
            f"Building image {spec.name} failed: {error}. The full log is {display_path(log)}."
        )


def _normalised(client, tag: str) -> tuple[ImageContent, dict[str, str]] | None:
    """The content and labels of the image tagged `tag`, if it is normalised (made by _normalise for that tag)."""
    try:
        attributes = client.api.inspect_image(tag)
    except docker.errors.ImageNotFound:
        return None
    labels = (attributes.get("Config") or {}).get("Labels") or {}
    layers = (attributes.get("RootFS") or {}).get("Layers") or []
    if labels.get(NORMALISED_LABEL) != tag or len(layers) != 1 or not labels.get(LAYER_SIZE_LABEL, "").isdigit():
        return None
    return ImageContent(attributes["Id"], layers[0], int(labels[LAYER_SIZE_LABEL])), labels


def normalised_content(client, tag: str) -> ImageContent | None:
    """The content of the normalised image tagged `tag`; None if there is none."""
    found = _normalised(client, tag)
    return found and found[0]


def normalised_labels(client, tag: str) -> dict[str, str] | None:
    """The labels of the normalised image tagged `tag`; None if there is none."""
    found = _normalised(client, tag)
    return found and found[1]


def rootfs_of(labels: dict[str, str]) -> str | None:
    """The base root filesystem's sha256, which an image built on it inherits as a label (none on a registry base)."""
    return labels.get(ROOTFS_LABEL)


def raw_tag(tag: str) -> str:
    """Where `docker build` puts an image before it is normalised under `tag`."""
    return f"{tag}-unnormalised"


def _normalise(client, tag: str, epoch: int, store: Store, log_dir: Path, source: str | None = None) -> ImageContent:
    """The image tagged `source` (by default `tag` itself) in its normalised form (image_content.py), loaded
    under `tag`; what it then is."""
    source = source or tag
    built = client.api.inspect_image(source)
    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.store_dir.parent, prefix=".image-") as work:
        layer = Path(work) / "layer.tar"
        try:
            with exported(client, source) as export, open(layer, "wb") as output:
                dropped = normalise_layer(export, output, epoch)
        except ENGINE_GONE:
            raise engine_gone(f"normalise {tag}", log_dir / "normalise.json") from None
        except (ValueError, tarfile.TarError) as error:  # normalise_layer's checks of the export, or a damaged one
            raise BuildError(f"Normalising image {tag} stopped: {error}. The engine's export is not what the rules "
                             f"(stages/image_content.py) can make one deterministic layer of; nothing was loaded "
                             f"under {tag}, and {source} still names the image as built. Run the build again; if it stops here "
                             f"again, report the engine's version (`docker version`).") from None
        content_size = layer.stat().st_size
        diff_id = "sha256:" + sha256_path(layer)
        config = image_config(built, diff_id, epoch, {NORMALISED_LABEL: tag, LAYER_SIZE_LABEL: str(content_size)})
        load_archive(client, config, layer, tag, epoch, Path(work))
    (log_dir / "normalise.json").write_text(json.dumps(
        {"built": built["Id"], "normalised": digest(config), "diff_id": diff_id, "layer_size": content_size,
         "dropped": dropped}, indent=1, sort_keys=True) + "\n")
    if source != tag:
        try:
            client.api.remove_image(source, noprune=True)  # the tag only
        except docker.errors.APIError:
            pass
    if built["Id"] != digest(config):
        try:  # what the Dockerfile made, now untagged (with the layers only it used)
            client.images.remove(built["Id"], noprune=False)
        except docker.errors.APIError:
            pass  # in use by a container of another build, or removed by it: `invoke gc` or the engine's prune
    return ImageContent(digest(config), diff_id, content_size)


def image_files(client, reference: str) -> dict[str, tuple]:
    """Every file of an image's file system as layer_listing describes it, read through `docker export`."""
    with exported(client, reference) as export:
        return layer_listing(export)


def extract_image_files(client, reference: str, paths: set[str], destination: Path) -> None:
    """The regular files of an image named in `paths` (as layer_listing names them), written under
    `destination`. An imported image is untrusted: tarfile's "data" filter refuses a name that would leave
    `destination`, and such a file is left out (the file-by-file comparison still lists it)."""
    destination.mkdir(parents=True, exist_ok=True)
    with exported(client, reference) as export, tarfile.open(fileobj=export, mode="r|") as tar:
        for member in tar:
            if member.isfile() and posixpath.normpath(member.name) in paths:
                with contextlib.suppress(tarfile.FilterError):
                    tar.extract(member, destination, filter="data")


@contextlib.contextmanager
def exported(client, reference: str):
    """The file system of the image `reference` as a tar stream: `docker export` of a container created from it,
    never started (removed afterwards)."""
    container = client.containers.create(reference, command=["true"], network_mode="none")
    try:
        yield readable(container.export(chunk_size=CHUNK))
    finally:
        remove_container(container)


def readable(chunks) -> io.BufferedReader:
    """A file to read from an iterator of byte chunks (what the engine streams), for tarfile's stream mode."""
    return io.BufferedReader(Chunks(chunks), CHUNK)


def load_archive(client, config: bytes, layer: Path, tag: str, epoch: int, work: Path) -> None:
    """Load the image of `config` and `layer` under `tag`, and check the engine gives it the ID of `config`."""
    archive = work / "image.tar"
    with open(archive, "wb") as output:
        write_archive(output, config, layer, tag, epoch)
    with open(archive, "rb") as data:
        client.images.load(data)
    archive.unlink()
    loaded = client.api.inspect_image(tag)["Id"]
    if loaded != digest(config):
        raise BuildError(f"The engine loaded image {tag} as {loaded}, not as {digest(config)}, the sha256 of its "
                         f"config: this engine rewrites the images it loads. Nothing was built with it; report the "
                         f"engine's version (`docker version`).")


class Chunks(io.RawIOBase):
    """The raw file under `readable`."""

    def __init__(self, chunks):
        self.chunks, self.pending = iter(chunks), memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending:
            chunk = next(self.chunks, None)
            if chunk is None:
                return 0
            self.pending = memoryview(chunk)
        size = min(len(buffer), len(self.pending))
        buffer[:size], self.pending = self.pending[:size], self.pending[size:]
        return size


def build_context(spec: ImageSpec) -> bytes:
    """The build context sent to the engine: the Dockerfile and the spec's declared files, nothing else.

    Each file is hashed again as it is read and must still have the sha256 the
    image's identity was computed from: a pinned input changed in the cache
    since it was verified, or a helper script edited mid-build, is refused."""
    for name, sha256, path in spec.files:
        actual = sha256_path(path)
        if actual != sha256:
            raise BuildError(f"{path} (the build context's {name} of image {spec.name}) has sha256 {actual}, not "
                             f"{sha256} as when the build started; it changed on disk. Nothing was built. Run again: "
                             f"a pinned input is fetched and verified anew.")
    context = io.BytesIO()
    write_tar(context, [("Dockerfile", spec.dockerfile.encode()), *((name, path) for name, _, path in spec.files)], mtime=0)
    return context.getvalue()


def image_log_dir(store: Store, spec: ImageSpec) -> Path:
    """Where building the image logged; also how `invoke gc` knows which images a store made."""
    return store.logs_dir / f"{spec.identity}-{IMAGE_LOG_PREFIX}{spec.name}"


def rootfs_log_dir(store: Store, plan: Plan) -> Path:
    return store.log_dir(Rootfs.of(plan))


def read_inventory(client, tag: str) -> list[dict]:
    """The package list the image recorded when it was built (see containers/files/dpkg-inventory.py)."""
    container = client.containers.create(tag, command=["true"], network_mode="none")
    try:
        stream, _ = container.get_archive(INVENTORY)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            return json.load(tar.extractfile(tar.getmembers()[0]))
    finally:
        container.remove(force=True)
