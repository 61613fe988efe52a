"""Lockfiles: every input and every output of one build, by sha256.

One lockfile per artifact (python × target × SDK × provider), named like the
artifact: `lockfiles/<artifact>.json`. JSON with sorted keys, one value per
line, no timestamps and no host paths, so two builds of the same inputs write
the same bytes and a changed hash shows as a one-line diff. Committing it is
how a build is published; rebuilding from it is how a build is checked.

    build       what was asked for (python, target, SDK, provider, arch, options; the extensions
                of a custom interpreter)
    recipes     sha256 of each recipe file the build read
    base        the base root filesystem: suite, mirror, and the rootfs tarball's sha256
    images      per image: tag (the hash of its Dockerfile and context), the
                Dockerfile's sha256, its context files, every Debian package
                installed in it (name, version, architecture, .deb sha256), and
                its content: image ID, layer diff_id and size (image_content.py)
    inputs      every fetched file: name, sha256, size, URLs
    products    the store identity of each intermediate product
    outputs     sha256 and size of the artifact, of python.wasm and of the manifest
    tests       written by `invoke test`, not by the build: per suite, the counts of
                CPython's regression tests run on this artifact and its known failures

`read_lock` checks that shape (`Lockfile`) before anyone indexes into it. A
lockfile cut down to lockfile_version, artifact and outputs (`OutputsLockfile`)
is accepted too: verifying an artifact needs its hashes, not how it was built.
A lockfile is untrusted input (it may come from anyone): its size is capped
before it is parsed, duplicate keys and NaN are refused, numbers are bounded
and the names of outputs are plain file names.
"""

import hashlib
import json
import math
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from cpython_wasm.errors import UserError, describe_validation_error
from cpython_wasm.files import sha256_path, write_atomically
from cpython_wasm.paths import display_path
from cpython_wasm.recipes.artifacts import FLAVOURS
from cpython_wasm.recipes.grammar import (
    Arch,
    ConfigureArg,
    ContentDigest,
    DebianPackage,
    DebianSuite,
    DebianVersion,
    EmsdkVersion,
    EnvironmentName,
    Epoch,
    Flags,
    HostTriple,
    MmdebstrapVariant,
    RecipeName,
    Size,
    Text,
    grammar,
)
from cpython_wasm.recipes.pins import FileName, Model, Sha256, Url
from cpython_wasm.recipes.plan import TOOLCHAINS
from cpython_wasm.recipes.schema import PROVIDERS, RELEASE_NUMBER
from cpython_wasm.records.verify import verifier

LOCKFILE_VERSION = 1
MAX_PROBLEMS = 10  # listed in one message; a lockfile has thousands of keys to get wrong
MAX_PROBLEM_CHARS = 300  # of one problem: a value quoted in it may be megabytes long
# Read no more than the verifier does of a file (scripts/verify_artifact.py says why), so /dev/zero or a huge
# file is refused before it fills memory.
MAX_LOCK_BYTES = verifier.MAX_LOCKFILE_BYTES
MAX_WASI_SDK = 999
MAX_EXTENSIONS = 100  # in one interpreter


def lockfile_path(lock_dir: Path, artifact_name: str) -> Path:
    return lock_dir / f"{artifact_name}.json"


# -- the shape of a lockfile, checked when it is read ---------------------------------

# A lockfile's values are read, and some reach a build or a message, before they are compared with
# anything: each has its grammar (see grammar.py), and numbers are bounded.
Release = Annotated[str, AfterValidator(grammar(RELEASE_NUMBER.pattern, "a CPython release, like 3.13.5", 32))]
WasiSdk = Annotated[int, Field(ge=1, le=MAX_WASI_SDK)]


class _Locked(Model):
    """Part of a lockfile: unknown keys are errors, and JSON's types are taken as they are ("25" is no number)."""

    model_config = ConfigDict(strict=True)


class LockedFile(_Locked):
    sha256: Sha256
    size: Size


class LockedProfile(_Locked):
    """The profile a profile-guided build was built with (targets/pgo.py): published as `file`."""

    file: FileName
    sha256: Sha256
    size: Size


class LockedBuild(_Locked):
    python: Release
    target: HostTriple
    wasi_sdk: WasiSdk | None = None  # the toolchain: exactly one of TOOLCHAINS' lock keys
    emsdk: EmsdkVersion | None = None
    provider: Literal[PROVIDERS]
    official_pairing: bool
    host_arch: Arch
    source_date_epoch: Epoch
    configure_host_args: list[ConfigureArg]  # a recipe's grammar; what is beyond the recipe's, rebuild.py checks
    host_environment: dict[EnvironmentName, Flags]
    # A custom interpreter's extensions (recipes/extensions/), by name; absent for a stock build.
    extensions: list[RecipeName] = Field(default=[], max_length=MAX_EXTENSIONS)
    # A flavour of the interpreter (recipes/flavours/); absent for the stock one.
    flavour: Literal[FLAVOURS] | None = None
    # The profile of a profile-guided build; absent for one that is not (`invoke build --no-pgo`, or a toolchain
    # without a profile runtime).
    pgo: LockedProfile | None = None

    @model_validator(mode="after")
    def _one_toolchain(self):
        keys = [kind.lock_key for kind in TOOLCHAINS.values()]
        named = [key for key in keys if getattr(self, key) is not None]
        if len(named) != 1:
            raise ValueError(f"expected one toolchain, {' or '.join(f'`build.{key}`' for key in keys)}, "
                             f"got {' and '.join(named) or 'none'}")
        return self


class LockedBase(_Locked):
    name: RecipeName
    suite: DebianSuite
    variant: MmdebstrapVariant
    mirror: Url
    source_date_epoch: Epoch
    rootfs_sha256: Sha256 | None  # None: a registry image, pinned by the digest in `image`
    image: Text  # that image, or the tag of the bootstrapped one


class LockedPackage(_Locked):
    """A Debian package as containers/files/dpkg-inventory.py records it (no sha256: in no apt index)."""

    name: DebianPackage
    version: DebianVersion
    architecture: Arch
    sha256: Sha256 | None
    filename: Text | None


class LockedImage(_Locked):
    tag: Text
    dockerfile_sha256: Sha256
    context: dict[FileName, Sha256]
    packages: list[LockedPackage]
    # Its content once normalised (stages/image_content.py): the engine's image ID (the config's sha256), its one
    # layer's sha256 and size. What `invoke image-import` checks an archive against.
    id: ContentDigest
    diff_id: ContentDigest
    layer_size: Size


class LockedImages(_Locked):
    native: LockedImage
    toolchain: LockedImage


class LockedInput(_Locked):
    """A pinned file, as describe_pin records it."""

    name: FileName
    sha256: Sha256
    size: Size | None
    urls: list[Url]


class OutputsLockfile(_Locked):
    """What verifying an artifact needs: its name and the hashes of what its build made."""

    lockfile_version: int  # its value is checked first, with a message of its own
    artifact: FileName  # also a directory name under build/rebuilds/: no "/", "..", leading "-" or "."
    outputs: dict[FileName, LockedFile]

    @field_validator("outputs")
    @classmethod
    def _records_the_artifact(cls, outputs: dict, info: ValidationInfo) -> dict:
        tarball = f"{info.data['artifact']}.tar.gz" if "artifact" in info.data else None
        if tarball and tarball not in outputs:
            raise ValueError(f"expected the artifact's own entry `outputs.{tarball}` (its sha256 and size), "
                             f"found only {', '.join(sorted(outputs)) or 'none'}")
        return outputs


class Lockfile(OutputsLockfile):
    """A lockfile as `invoke build` writes it (see the module's docstring)."""

    build: LockedBuild
    recipes: dict[Text, Sha256]
    base: LockedBase
    images: LockedImages
    inputs: list[LockedInput]
    products: dict[Text, Text]  # store identities
    # Written by `invoke test` (testsuite.py defines each suite's summary); copied, never read into, here.
    tests: dict[str, dict[str, Any]] = {}

    @field_validator("tests")
    @classmethod
    def _finite(cls, tests: dict) -> dict:
        """Python reads NaN and Infinity, which JSON has not; elsewhere no float passes, here any value would."""
        values = [(("tests",), tests)]
        while values:  # not recursive: a deep nesting here must not exhaust the stack
            path, value = values.pop()
            if isinstance(value, float) and not math.isfinite(value):
                key = ".".join(str(part) if str(part).isprintable() else repr(part) for part in path)
                raise ValueError(f"`{key}` holds {value!r}, which is no JSON number")
            children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
            values.extend(((*path, part), child) for part, child in children)
        return tests


# The sections that say how the artifact was built: one of them present means all of them are required.
BUILD_SECTIONS = {name for name, field in Lockfile.model_fields.items()
                  if field.is_required() and name not in OutputsLockfile.model_fields}


def _object(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object whose keys are all different: of two values for one key, readers may take either."""
    found = dict(pairs)
    if len(found) != len(pairs):
        repeated = sorted(key for key, times in Counter(key for key, _ in pairs).items() if times > 1)
        raise ValueError(f"key {', '.join(map(repr, repeated[:MAX_PROBLEMS]))} appears more than once in one object")
    return found


def _parse(path: Path, shown: str) -> Any:
    if not Path(path).exists():
        raise FileNotFoundError(path)
    try:  # the verifier's reader: a FIFO or a device is refused, never waited on or read without end
        data = verifier.read_bounded(path, MAX_LOCK_BYTES)
    except ValueError as error:
        raise UserError(f"Lockfile {shown} {error}: lockfiles `invoke build` writes are regular files of about "
                        f"120 kB. Pass the path of a lockfile written by `invoke build`.") from None
    return json.loads(data.decode("utf-8"), object_pairs_hook=_object)


def read_lock(path: Path) -> dict:
    """The lockfile at `path`, as the plain dict it is, once its shape is checked; or a UserError naming file and key."""
    shown = display_path(path)
    try:
        lock = _parse(path, shown)
    except FileNotFoundError:
        raise UserError(f"Lockfile {shown} does not exist. Pass the path of a lockfile written by `invoke build`.") from None
    except (OSError, ValueError, RecursionError) as error:  # RecursionError: arrays or objects nested too deeply
        raise UserError(f"Lockfile {shown} cannot be read as JSON: {_shorten(str(error))}.") from None
    version = lock.get("lockfile_version") if isinstance(lock, dict) else None
    if type(version) is not int or version != LOCKFILE_VERSION:  # True and 1.0 equal 1 in Python, not in JSON
        raise UserError(
            f"Lockfile {shown} has lockfile_version {version!r}; "
            f"this version of cpython-wasm-recipes reads version {LOCKFILE_VERSION}."
        )
    model = Lockfile if BUILD_SECTIONS & lock.keys() else OutputsLockfile  # one section of how it was built: all of them
    try:
        model.model_validate(lock)
    except ValidationError as error:
        problems = [_shorten(describe_validation_error(e)) for e in error.errors()]
        more = f"; and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
        raise UserError(
            f"Lockfile {shown} is malformed: {'; '.join(problems[:MAX_PROBLEMS])}{more}. Lockfiles are written by "
            f"`invoke build`, not by hand: restore this one from version control, or write it again with `invoke build`."
        ) from None
    return lock


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_PROBLEM_CHARS else text[:MAX_PROBLEM_CHARS - 1] + "…"


def read_build_lock(path: Path) -> dict:
    """A lockfile that records how its artifact was built (what a rebuild or a smoke run needs), not only its outputs."""
    lock = read_lock(path)
    missing = sorted(BUILD_SECTIONS - lock.keys())
    if missing:
        raise UserError(
            f"Lockfile {display_path(path)} records the outputs of {lock['artifact']} but not how it was built (no "
            f"{', '.join(missing)}): it can verify an artifact, not rebuild or run one. Use the lockfile `invoke build` "
            f"wrote for it (lockfiles/{lock['artifact']}.json in the commit that published it)."
        )
    return lock


# -- writing a lockfile: every section made as its model ---------------------------------


def describe_pin(pin) -> LockedInput:
    return LockedInput(name=pin.file, sha256=pin.sha256, size=pin.size, urls=list(pin.urls))


def describe_recipes(plan) -> dict[str, str]:
    """sha256 of each recipe file a plan was resolved from, by its path as users read it."""
    return {display_path(path): sha256_path(path) for path in plan.recipe_paths.values()}


def locked_toolchain(build: dict) -> tuple[str, int | str]:
    """The target and toolchain release a lockfile's `build` names (its wasi_sdk or emsdk key)."""
    return next((target, build[kind.lock_key]) for target, kind in TOOLCHAINS.items() if kind.lock_key in build)


def profile_name(host_name: str, sha256: str) -> str:
    """What a profile-guided build's profile is published as, beside the artifact and in profiles/ beside the
    lockfile: named by its content too, so that a profile trained again elsewhere never replaces the one a
    committed lockfile names."""
    return f"{host_name}-{sha256[:16]}.profdata"


def profile_path(lockfile: Path, name: str) -> Path:
    """Where a lockfile's profile (`build.pgo.file`) is kept beside it."""
    return lockfile.parent / "profiles" / name


def describe_build(plan, configure_host_args, host_environment: dict[str, str],
                   pgo: LockedProfile | None = None) -> LockedBuild:
    """The lockfile's `build`: what was asked for, the configure arguments and environment it was built with, and
    the profile of a profile-guided build."""
    return LockedBuild(**{
        "python": plan.release.version, "target": plan.support.host_triple,
        TOOLCHAINS[plan.target].lock_key: plan.sdk,
        "provider": plan.provider, "official_pairing": plan.official, "host_arch": plan.arch,
        "source_date_epoch": plan.release.source_date_epoch,
        "configure_host_args": list(configure_host_args),
        "host_environment": dict(host_environment),
        **({"extensions": [extension.name for extension in plan.extensions]} if plan.extensions else {}),
        **({"flavour": plan.flavour.name} if plan.flavour else {}),
        **({"pgo": pgo} if pgo else {}),
    })


def describe_base(plan, tag: str, rootfs_sha256: str | None) -> LockedBase:
    """The lockfile's `base`: the base recipe as built, and the image it became."""
    return LockedBase(name=plan.base_name, suite=plan.base.suite, variant=plan.base.variant, mirror=plan.base.mirror,
                      source_date_epoch=plan.base.source_date_epoch, rootfs_sha256=rootfs_sha256, image=tag)


def describe_image(spec, content: dict, packages: list[dict]) -> LockedImage:
    """content: the normalised image's id, diff_id and layer_size (ImageContent.locked(), or a lockfile's own)."""
    return LockedImage(
        tag=spec.tag,
        dockerfile_sha256=hashlib.sha256(spec.dockerfile.encode()).hexdigest(),
        context={name: sha256 for name, sha256, _ in spec.files},
        packages=[LockedPackage.model_validate(package) for package in packages],
        **{key: content[key] for key in ("id", "diff_id", "layer_size")},
    )


def describe_file(path: Path) -> LockedFile:
    return LockedFile(sha256=sha256_path(path), size=path.stat().st_size)


def describe_profile(plan, profile: Path) -> LockedProfile:
    sha256 = sha256_path(profile)
    return LockedProfile(file=profile_name(plan.host_name, sha256), sha256=sha256, size=profile.stat().st_size)


def new_lock(plan, configure_host_args, host_environment, profile: Path | None, base, image_specs: dict,
             products: dict[str, str], tarballs: list[Path], manifest: Path) -> Lockfile:
    """The lockfile of a build. profile: a profile-guided build's; image_specs: per image, (its spec, its content,
    the packages installed in it); products: each stage's identity; tarballs and manifest: in the package product
    (python.wasm's entry is read from the manifest)."""
    manifest_files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    return Lockfile(
        lockfile_version=LOCKFILE_VERSION,
        artifact=plan.artifact_name,
        build=describe_build(plan, configure_host_args, host_environment,
                             describe_profile(plan, profile) if profile else None),
        recipes=describe_recipes(plan),
        base=describe_base(plan, base.tag, base.rootfs_sha256),
        images=LockedImages(**{name: describe_image(spec, content, packages)
                               for name, (spec, content, packages) in image_specs.items()}),
        inputs=[describe_pin(pin) for pin in plan.inputs],
        products=products,
        outputs={**{path.name: describe_file(path) for path in tarballs},
                 "python.wasm": LockedFile.model_validate(manifest_files["python.wasm"]),
                 "manifest.json": describe_file(manifest)},
    )


def with_outputs(lock: Lockfile, outputs: dict[str, tuple[str, int]]) -> Lockfile:
    """The lockfile with more outputs: {name: (sha256, size)}."""
    added = {name: LockedFile(sha256=sha256, size=size) for name, (sha256, size) in outputs.items()}
    return lock.model_copy(update={"outputs": {**lock.outputs, **added}})


def document(lock: Lockfile) -> dict:
    """The lockfile as the JSON document it is written as: the sections that were set, nothing else (a lockfile
    has one toolchain key, and `tests` only once `invoke test` ran)."""
    return lock.model_dump(mode="json", exclude_unset=True)


def encode(lock: Lockfile) -> bytes:
    return (json.dumps(document(lock), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def write_lock(path: Path, lock: Lockfile) -> Path:
    return write_atomically(path, encode(lock))


def with_test_results(lock: Lockfile, previous_path: Path) -> Lockfile:
    """The lock with the test results of the lockfile it replaces, if they are of the very same artifact.

    Only the previous lockfile's outputs and tests are read, so that the results of a lockfile this version
    would refuse as a whole (written before a key was added to another section) are kept too; the results
    are then checked as part of the new lock."""
    try:
        previous = _parse(previous_path, display_path(previous_path))
        name = f"{lock.artifact}.tar.gz"
        same = previous["outputs"][name]["sha256"] == lock.outputs[name].sha256
        tests = previous["tests"]
    except (UserError, OSError, ValueError, RecursionError, KeyError, TypeError):
        return lock  # none, or not one `invoke build` wrote: nothing to keep
    if not same or not tests:
        return lock
    try:
        return Lockfile.model_validate({**document(lock), "tests": tests})
    except ValidationError:
        return lock


def record_test_results(path: Path, suite: str, summary: dict) -> None:
    """Write one suite's results (testsuite.py) into the lockfile at `path`, beside those of the other suites."""
    lock = Lockfile.model_validate(read_build_lock(path))
    lock = lock.model_copy(update={"tests": {**lock.tests, suite: summary}})
    write_lock(path, lock)
