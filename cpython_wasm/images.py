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
"""

import io
import json
import re
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
from filelock import FileLock

from .errors import BuildError, UserError
from .executor import ENGINE_GONE, engine_gone
from .package import sha256_path, write_tar
from .paths import CONTAINERS_DIR, EMSCRIPTEN_PREFIX, EMSDK_PATH, PACKAGE_DIR, WASI_SDK_PATH, display_path
from .recipes import Plan
from .render import render
from .store import Store, identity, record_timings

REPOSITORY = "cpython-wasm"
LABEL_PREFIX = "io.github.cpython-wasm-recipes"
INVENTORY = "/usr/local/share/cpython-wasm/packages.json"
# Long phases print nothing for minutes; the engine connection must not time out.
ENGINE_TIMEOUT = 6 * 3600


def connect() -> docker.DockerClient:
    """A client for the Docker engine, or a clear error saying how to start one."""
    try:
        client = docker.from_env(timeout=ENGINE_TIMEOUT)
        client.ping()
        return client
    except docker.errors.DockerException as error:
        raise UserError(
            f"No Docker engine answers ({error}). The builds run in containers and need one: run "
            f"`scripts/ensure-docker` (as root or with sudo; it installs Debian's docker.io if needed, starts "
            f"dockerd and waits for its socket), or point DOCKER_HOST at a running engine, then run again."
        ) from None


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


def _helper_file(name: str, directory: Path = CONTAINERS_DIR / "files") -> tuple[str, str, Path]:
    path = directory / name
    if not path.is_file():
        raise UserError(f"containers/files/{name} does not exist; the recipes need it (a build script for each "
                        f"sysroot library, named build-<library>.sh). Add it, or remove the library from the recipe.")
    return name, sha256_path(path), path


def base_inputs(plan: Plan) -> dict:
    """What the root filesystem depends on: not the native tools pinned beside it (those are the native image's)."""
    return {"name": plan.base_name, **plan.base.model_dump(mode="json", exclude={"packages"})}


def base_tag(plan: Plan) -> str:
    """Tagged with the identity of its root filesystem product, so the two are easy to match.

    A registry image pinned by digest is named by that reference itself."""
    if plan.base.image:
        return plan.base.image
    return f"{REPOSITORY}/base-{plan.base_name}:{identity(f'rootfs-{plan.base_name}', base_inputs(plan))}"


def native_spec(plan: Plan) -> ImageSpec:
    dockerfile = render(
        "native.Dockerfile.j2",
        base_image=base_tag(plan), base_name=plan.base_name, suite=plan.base.suite,
        packages=plan.base.packages,
    )
    return ImageSpec(f"native-{plan.base_name}", dockerfile, (_helper_file("dpkg-inventory.py"),))


def toolchain_spec(plan: Plan, cached_path) -> ImageSpec:
    """The toolchain image; `cached_path(pin)` says where a pinned input is (or will be) in the cache."""
    if plan.target == "emscripten":
        return _emscripten_spec(plan, cached_path)
    return _wasi_sdk_spec(plan, cached_path)


def _pinned(pin, cached_path) -> tuple[str, str, Path]:
    return pin.file, pin.sha256, cached_path(pin)


def _wasi_sdk_spec(plan: Plan, cached_path) -> ImageSpec:
    toolchain = plan.toolchain
    if plan.provider == "debian":
        values = {"llvm_major": toolchain.llvm_major, "version_file": toolchain.version_file,
                  "packages": toolchain.packages}
        files = [_helper_file("assemble-debian-wasi-sdk.sh")]
    else:
        values = {"sdk_tarball": plan.sdk_tarball.file}
        files = [_pinned(plan.sdk_tarball, cached_path)]
    for library in plan.libraries:
        files += [_helper_file(f"build-{library.name}.sh"), _pinned(library.source, cached_path)]
    files += [_pinned(plan.wasmtime_wheel, cached_path), _helper_file("runtime.py", PACKAGE_DIR)]
    dockerfile = render(
        f"wasi-sdk-{plan.provider}.Dockerfile.j2",
        native_image=native_spec(plan).tag, sdk=plan.sdk, suite=plan.base.suite, sdk_path=WASI_SDK_PATH,
        libraries=plan.libraries, wasmtime_version=plan.wasmtime.version, wasmtime_wheel=plan.wasmtime_wheel.file,
        **values,
    )
    return ImageSpec(f"wasi-sdk-{plan.sdk}-{plan.provider}", dockerfile, tuple(files))


def _emscripten_spec(plan: Plan, cached_path) -> ImageSpec:
    files = [_pinned(plan.sdk_tarball, cached_path)] if plan.sdk_tarball else []
    files += [_helper_file("emscripten-build-library.sh"),
              *(_pinned(library.source, cached_path) for library in plan.libraries)]
    dockerfile = render(
        f"emsdk-{plan.provider}.Dockerfile.j2",
        native_image=native_spec(plan).tag, sdk=plan.sdk, suite=plan.base.suite, packages=plan.toolchain.packages,
        sdk_tarball=plan.sdk_tarball.file if plan.sdk_tarball else None, emsdk_path=EMSDK_PATH,
        frozen_cache=plan.frozen_cache, libraries=plan.libraries,
        prefix=EMSCRIPTEN_PREFIX,
    )
    return ImageSpec(f"emsdk-{plan.sdk}-{plan.provider}", dockerfile, tuple(files))


def image_exists(client, tag: str) -> bool:
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
                return BaseImage(tag, labels[f"{LABEL_PREFIX}.rootfs.sha256"], reused=True)
        except (docker.errors.ImageNotFound, KeyError):
            pass
        product = store.realise(f"rootfs-{plan.base_name}", base_inputs(plan),
                                lambda directory, log_dir: _bootstrap(plan, directory, log_dir))
        rootfs_sha256 = (product.path / "rootfs.tar.sha256").read_text().strip()
        labels = {
            "org.opencontainers.image.title": f"cpython-wasm base root filesystem ({plan.base_name})",
            f"{LABEL_PREFIX}.recipe": f"recipes/base/{plan.base_name}.toml",
            f"{LABEL_PREFIX}.rootfs.sha256": rootfs_sha256,
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


def ensure_image(client, spec: ImageSpec, store: Store, mirror: str, fresh: bool = False) -> bool:
    """Build the image unless its tag exists. Returns True if it was reused.

    fresh: build it again, without the engine's layer cache, and move the tag
    to the result (same inputs, so the same image if apt resolves the same)."""
    log = image_log_dir(store, spec) / "docker-build.log"
    with FileLock(store.locks_dir / f"image-{spec.identity}.lock"):
        if not fresh and image_exists(client, spec.tag):
            return True
        start = time.monotonic()
        context = io.BytesIO(build_context(spec))
        log.parent.mkdir(parents=True, exist_ok=True)
        error = None
        with open(log, "w", encoding="utf-8") as output:
            output.write(spec.dockerfile + "\n")
            try:
                stream = client.api.build(fileobj=context, custom_context=True, tag=spec.tag, rm=True,
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
        elapsed = time.monotonic() - start
        record_timings(log.parent, {"docker build": elapsed}, elapsed)
    return False


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
    return store.logs_dir / f"{spec.identity}-image-{spec.name}"


def rootfs_log_dir(store: Store, plan: Plan) -> Path:
    return store.log_dir(f"rootfs-{plan.base_name}", base_inputs(plan))


def read_inventory(client, tag: str) -> list[dict]:
    """The package list the image recorded when it was built (see containers/files/dpkg-inventory.py)."""
    container = client.containers.create(tag, command=["true"], network_mode="none")
    try:
        stream, _ = container.get_archive(INVENTORY)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            return json.load(tar.extractfile(tar.getmembers()[0]))
    finally:
        container.remove(force=True)
