"""A target: what building for one WebAssembly platform means, in one object.

A target (wasi.py, emscripten.py) turns a plan into its stages, knows its
toolchain image, how its interpreter runs (the smoke run, the test suite's
workers, the benchmark's interpreter) and what its SBOM lists. What every
target shares is here: the four stages of a build, as CPython's own helpers
run them.

    source         the CPython tarball unpacked, with the mount points of the build directories
    build-python   a native CPython of the same version (in the native image: every SDK shares it)
    library        each C library of the line's recipe for the target (sqlite, xz...), a static library
                   built by containers/files/build-library.sh in the toolchain image
    host           python.wasm (or python.js) cross-compiled with it, in the toolchain image, each
                   library mounted where configure's <NAME>_CFLAGS and <NAME>_LIBS point
    devkit         for a target that has one (WASI): what compiling and linking C code against the
                   interpreter takes, installed by CPython's own install targets from the host build
                   (containers/files/build-devkit.sh) in the toolchain image
    extension, interpreter   for a custom interpreter only: its C extensions compiled against the devkit,
                   and python.wasm linked again with them (extensions.py)
    package        the deterministic tarballs, by container/package.py in the native image
"""

import dataclasses
import json
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from cpython_wasm.container import devkit as devkit_module
from cpython_wasm.container import emscripten_data, package, stdlib_subset, tarball, wasm, web_assets
from cpython_wasm.paths import (
    CONTAINER_OUTPUT,
    CONTAINER_SCRIPTS_DIR,
    CONTAINER_SOURCE,
    CONTAINER_TOOLS,
    CONTAINERS_DIR,
    LIBRARIES_DIR,
)
from cpython_wasm.recipes.plan import Plan
from cpython_wasm.recipes.schema import LibraryRecipe, WebPackage
from cpython_wasm.stages.images import ImageSpec, StageImage
from cpython_wasm.stages.stage import FileInput, Phase, ProductInput, Stage, Unpack, frozen_environment
from cpython_wasm.targets import extensions as custom
from cpython_wasm.targets import flavours, pgo
from cpython_wasm.targets.drivers import BUILD_PYTHON_PHASES, HOST_PHASES, Driver
from cpython_wasm.tools.smoke import image_runner, smoke

# The packaging script and its siblings, mounted as the package `container` in CONTAINER_TOOLS.
PACKAGE_MODULES = ("__init__", *(module.__name__.rsplit(".", 1)[1]
                                  for module in (package, tarball, wasm, emscripten_data, devkit_module, web_assets)))
STDLIB_SUBSET = stdlib_subset.__name__.rsplit(".", 1)[1]  # beside them, for a flavour with part of Lib/
LIBRARY_SCRIPT = CONTAINERS_DIR / "files" / "build-library.sh"
DEVKIT_SCRIPT = CONTAINERS_DIR / "files" / "build-devkit.sh"
DEVKIT_DIR = "/devkit"  # the devkit stage's output, and where the package stage finds it
CONTAINER_INPUTS = "/inputs"  # where a stage finds its pinned files, read-only


@dataclass(frozen=True)
class Runtime:
    """An engine with its settings, one that `invoke bench --runtime NAME` can run the artifact under.

    `command` runs the artifact the way a python is run (Python's own arguments follow it). `prepare` is a shell
    command line run once before the bench runner, or "": for example precompiling the module with this engine's
    settings, since a precompiled module runs only on an engine configured like the one that made it. `tools` are
    the pinned tools it needs that the image does not have, taken out into the store only when it runs."""

    name: str
    description: str
    command: tuple[str, ...]
    prepare: str = ""
    tools: tuple[str, ...] = ()  # pinned tools it runs with, mounted at tools.mounted(name) (inputs/tools.py)
    files: tuple[Path, ...] = ()  # what it runs besides, mounted read-only at CONTAINER_TOOLS/<file name>


# Node's settings `invoke bench --runtime` runs an artifact with (Emscripten's python.js; WASI's python.wasm through
# node:wasi), by name: what each is, and the options given to Node. V8 compiles wasm with Liftoff, its baseline
# compiler, first and tiers hot functions up to TurboFan, its optimising compiler; --no-liftoff compiles everything
# with TurboFan from the start.
NODE_SETTINGS = {
    "node": ("Node, V8's defaults: Liftoff first, hot functions tiered up to TurboFan", ()),
    "node-turbofan": ("Node, V8's optimising tier only (--no-liftoff)", ("--no-liftoff",)),
}


@dataclass(frozen=True)
class BuildStages:
    """The stages of one build, in the order they run."""

    source: Unpack
    build_python: Stage
    toolchain_cache: Stage | None  # what the toolchain builds on first use, once for every stage (Emscripten's)
    libraries: dict[str, Stage]  # by library name
    host: Stage
    devkit: Stage | None  # for a target that has one
    extensions: dict[str, Stage]  # a custom interpreter's, by extension name
    interpreter: Stage | None  # a custom interpreter's python.wasm, linked with them
    package: Stage
    stock_package: Stage | None = None  # a flavour's: the stock build's package, which its own stage starts from
    snapshot: Stage | None = None  # the snapshot flavour's python.wasm (flavours.py)
    # What makes the profile of a profile-guided host build, by key (pgo.py); empty for one not guided.
    training: dict[str, Stage] = dataclasses.field(default_factory=dict)

    def __iter__(self):
        return iter(self.by_key().values())

    def by_key(self) -> dict[str, Stage | Unpack]:
        """Each stage by the key the lockfile's `products` gives it: its kind, library:<name> for a library."""
        return {"source": self.source, "build-python": self.build_python,
                **({"toolchain-cache": self.toolchain_cache} if self.toolchain_cache else {}),
                **{library_key(name): stage for name, stage in self.libraries.items()},
                **self.training, "host": self.host, **({"devkit": self.devkit} if self.devkit else {}),
                **{custom.extension_key(name): stage for name, stage in self.extensions.items()},
                **({"interpreter": self.interpreter} if self.interpreter else {}),
                **({"stock-package": self.stock_package} if self.stock_package else {}),
                **({"snapshot": self.snapshot} if self.snapshot else {}), "package": self.package}


def build_environment(plan: Plan) -> dict[str, str]:
    """The environment of every compile stage."""
    # Derived from the recipe, never from the clock or git: clang uses it for
    # __DATE__/__TIME__, and wasi.py would otherwise ask git.
    return {"SOURCE_DATE_EPOCH": str(plan.release.source_date_epoch)}


class Target:
    name: str  # as recipes, plans and lockfiles name it
    title: str  # as users read it
    runtime: str  # how its interpreter runs, as the smoke phase says it (runtime_of: for one plan)
    runs_in_browser = False  # whether `invoke smoke --browser` runs it in Chromium too
    library_cflags: tuple[str, ...] = ()  # what every C library needs on this target, before its recipe's cflags
    has_devkit = False  # whether its builds publish <artifact>.devkit.tar.gz (a devkit stage)

    # -- building -----------------------------------------------------------------------

    def driver(self, plan: Plan) -> Driver:
        raise NotImplementedError

    def toolchain_spec(self, plan: Plan, cached_path, store=None) -> ImageSpec:
        """The toolchain image; `cached_path(pin)` says where a pinned input is (or will be) in the cache, and
        `store` where a tool taken out of one is (None: nowhere, for a spec that is only rendered or compared)."""
        raise NotImplementedError

    def toolchain_environment(self, plan: Plan, writable_dir: str) -> dict[str, str]:
        """What the toolchain itself needs in the environment of a stage that compiles, whose output is
        writable_dir."""
        return {}

    def toolchain_cache_stage(self, plan: Plan, toolchain: StageImage) -> Stage | None:
        """What the toolchain builds on first use (Emscripten's system libraries), built once in a stage of its
        own for every compile stage to start from (compile_phase); None where nothing is."""
        return None

    def compile_phase(self, phase: Phase, cache: Stage | None) -> Phase:
        """A compile stage's first phase, started from the toolchain cache stage's product (when there is one)."""
        return phase

    def compile_inputs(self, cache: Stage | None) -> tuple:
        """What a compile stage mounts for compile_phase."""
        return ()

    def host_environment(self, plan: Plan, driver: Driver) -> dict[str, str]:
        """The environment of the host stage (what the lockfile's build.host_environment records): the
        recipe's, the helper's, the toolchain's, and where configure finds each library."""
        return {**plan.support.host_environment, **driver.host_environment,
                **self.toolchain_environment(plan, driver.path(driver.host_dir)),
                **{name: value for library in plan.libraries
                   for name, value in self.configure_variables(plan, library).items()},
                **build_environment(plan)}

    def configure_variables(self, plan: Plan, library: LibraryRecipe) -> dict[str, str]:
        """What CPython's configure reads for a library instead of asking pkg-config (whose search path CPython's
        WASI helper points at the SDK's sysroot, and emconfigure at emscripten's): its headers and its archive."""
        prefix = library_prefix(library)
        return {f"{library.configure_name}_CFLAGS": f"-I{prefix}/include",
                f"{library.configure_name}_LIBS": self.library_libs(plan, f"-L{prefix}/lib -l{library.link}")}

    def library_libs(self, plan: Plan, libs: str) -> str:
        """How python.wasm's link names a library's archive."""
        return libs

    def library_stage(self, plan: Plan, library: LibraryRecipe, toolchain: StageImage, cached_path,
                      unpacked: Unpack, cache: Stage | None) -> Stage:
        """One C library, built for this target in its toolchain image into LIBRARIES_DIR/<name> (`unpacked`:
        the CPython source, for a library built by a script of CPython's own; `cache`: the toolchain cache
        stage)."""
        prefix, tarball = library_prefix(library), f"{CONTAINER_INPUTS}/{library.source.file}"
        script = FileInput.of(f"{CONTAINER_TOOLS}/{LIBRARY_SCRIPT.name}", LIBRARY_SCRIPT)
        # Not the release's SOURCE_DATE_EPOCH: a library is one product for every CPython release built with
        # the same toolchain.
        environment = {**self.toolchain_environment(plan, prefix), "SOURCE_DATE_EPOCH": str(plan.base.source_date_epoch),
                       "CFLAGS": " ".join((*self.library_cflags, *library.cflags_for(self.name)))}
        return Stage(
            "library", f"{library.name}-{library.version}-{plan.toolchain_name}", toolchain.id,
            (self.compile_phase(Phase(f"build-{library.name}",
                                      ("sh", script.container, self.name, library.name, tarball, prefix), "/tmp"),
                                cache),),
            frozen_environment(environment),
            (script, FileInput(tarball, library.source.sha256, cached_path(library.source)),
             *self.compile_inputs(cache)),
            prefix, produces=(f"lib/lib{library.link}.a",),
        )

    def devkit_stage(self, plan: Plan, toolchain: StageImage, host: Stage, inputs) -> Stage:
        """The devkit, installed from the host build (mounted with what it was built from: `inputs`, the host
        stage's) into DEVKIT_DIR by CPython's own install targets, in the same toolchain image."""
        script = FileInput.of(f"{CONTAINER_TOOLS}/{DEVKIT_SCRIPT.name}", DEVKIT_SCRIPT)
        libraries = [library_prefix(library) for library in plan.libraries]
        return Stage(
            "devkit", f"devkit-{plan.host_name}", toolchain.id,
            (Phase("devkit", ("sh", script.container, host.output, DEVKIT_DIR, *libraries), "/tmp"),),
            frozen_environment(build_environment(plan)),
            (*inputs, ProductInput(host.output, host), script), DEVKIT_DIR,
            produces=(f"lib/libpython{plan.python.line}.a", f"include/python{plan.python.line}/pyconfig.h"),
        )

    def mount_points(self, plan: Plan) -> tuple[str, ...]:
        """Where this target's host build of the plan's release mounts its build directories, in the source tree
        (mount points the source must hold): the host build's, and the build python's where the helper looks
        for it elsewhere; none if the line is not built for this target."""
        if plan.python.support(self.name) is None:
            return ()
        driver = self.driver(dataclasses.replace(plan, target=self.name))
        return (driver.host_dir, *((driver.build_python_mount,) if driver.build_python_mount else ()))

    def stages(self, plan: Plan, native: StageImage, toolchain: StageImage, configure_args, unpacked: Unpack,
               cached_path) -> BuildStages:
        """The build's stages, from the unpacked source (targets.source_stage: one for every target);
        `cached_path(pin)` says where a pinned input is (or will be) in the cache."""
        driver = self.driver(plan)
        environment = frozen_environment(build_environment(plan))
        build_python_dir, host_dir = driver.path(driver.build_python_dir), driver.path(driver.host_dir)
        build_python = Stage(
            "build-python", f"build-python-{plan.release.version}", native.id,
            phases(driver, BUILD_PYTHON_PHASES), environment, (ProductInput(CONTAINER_SOURCE, unpacked),),
            build_python_dir, produces=("python",),
        )
        cache = self.toolchain_cache_stage(plan, toolchain)
        libraries = {library.name: self.library_stage(plan, library, toolchain, cached_path, unpacked, cache)
                     for library in plan.libraries}
        host_inputs = (ProductInput(CONTAINER_SOURCE, unpacked),
                       ProductInput(driver.path(driver.host_build_python_dir), build_python),
                       *(ProductInput(stage.output, stage) for stage in libraries.values()))

        def host_stage(kind: str, extra_args=(), extra_inputs=()) -> Stage:
            """python.wasm built by the helper's host phases, with configure's arguments and the inputs given
            beyond the build's (profile-guided optimisation's: pgo.py)."""
            first, *rest = phases(driver, HOST_PHASES, (*configure_args, *extra_args))
            return Stage(
                kind, f"{kind}-{plan.host_name}", toolchain.id, (self.compile_phase(first, cache), *rest),
                frozen_environment(self.host_environment(plan, driver)),
                (*host_inputs, *self.compile_inputs(cache), *extra_inputs), host_dir, produces=("python.wasm",),
            )

        training = (pgo.training_stages(plan, toolchain, host_stage, ProductInput(CONTAINER_SOURCE, unpacked),
                                        cached_path, CONTAINER_INPUTS) if plan.pgo else {})
        # Mounted wherever the host build is used (the devkit's install may run its make again).
        guided_by = (ProductInput(pgo.PROFILE_DIR, training[pgo.PROFILE_KEY]),) if training else ()
        host = host_stage("host", pgo.optimising_args() if training else (), guided_by)
        devkit = self.devkit_stage(plan, toolchain, host, (*host_inputs, *guided_by)) if self.has_devkit else None
        extensions = {extension.name: custom.extension_stage(plan, extension, toolchain, devkit, DEVKIT_DIR,
                                                             environment, cached_path, CONTAINER_INPUTS)
                      for extension in plan.extensions}
        interpreter = (custom.interpreter_stage(plan, toolchain, devkit, DEVKIT_DIR, extensions, environment)
                       if extensions else None)

        def package(artifact: str, relinked: Stage | None, stdlib=None) -> Stage:
            """The package stage of `artifact`, with the python.wasm of `relinked` (a stage that linked it again)
            if given, else the host stage's; with only the `stdlib` modules of Lib/ if given (stdlib_subset.py
            runs package.py then)."""
            packager = ("container.stdlib_subset", *(f"--stdlib={module}" for module in stdlib)) if stdlib else (
                "container.package",)
            command = ("python3", "-m", *packager, "--artifact", artifact, "--line", plan.python.line,
                       "--target", self.name, "--source", CONTAINER_SOURCE, "--host-build", host_dir,
                       "--build-python", driver.build_python, "--mtime", str(plan.release.source_date_epoch),
                       "--output", CONTAINER_OUTPUT, *(f"--exclude={name}" for name in plan.python.package.exclude),
                       *(("--devkit", DEVKIT_DIR) if devkit else ()),
                       *(("--python-wasm", f"{relinked.output}/python.wasm") if relinked else ()),
                       *(f"--site={stage.output}/lib" for stage in extensions.values()),
                       *(f"--builtin={module.name}" for extension in plan.extensions for module in extension.modules),
                       *(f"--web-package={web_package_argument(web)}" for web in plan.web_packages))
            scripts = tuple(FileInput.of(f"{CONTAINER_TOOLS}/container/{name}.py", CONTAINER_SCRIPTS_DIR / f"{name}.py")
                            for name in (*PACKAGE_MODULES, *((STDLIB_SUBSET,) if stdlib else ())))
            web_inputs = tuple(FileInput(f"{CONTAINER_INPUTS}/{web.tarball.file}", web.tarball.sha256,
                                         cached_path(web.tarball)) for web in plan.web_packages)
            custom_inputs = tuple(ProductInput(stage.output, stage)
                                  for stage in (*extensions.values(), *((relinked,) if relinked else ())))
            return Stage(
                "package", f"package-{artifact}", native.id, (Phase("package", command, CONTAINER_TOOLS),), environment,
                (ProductInput(CONTAINER_SOURCE, unpacked), ProductInput(build_python_dir, build_python),
                 ProductInput(host_dir, host), *((ProductInput(DEVKIT_DIR, devkit),) if devkit else ()), *custom_inputs,
                 *scripts, *web_inputs),
                CONTAINER_OUTPUT,
                produces=(f"{artifact}.tar.gz", tarball.MANIFEST, *((f"{artifact}.devkit.tar.gz",) if devkit else ())),
            )

        if not plan.flavour:
            return BuildStages(unpacked, build_python, cache, libraries, host, devkit, extensions, interpreter,
                               package(plan.artifact_name, interpreter), training=training)
        if not plan.flavour.snapshot:  # its own host build (the stages above are its own): its package
            return BuildStages(unpacked, build_python, cache, libraries, host, devkit, extensions, interpreter,
                               package(plan.artifact_name, None, plan.flavour.stdlib), training=training)
        stock_package = package(plan.stock_artifact_name, None)
        snapshot = flavours.snapshot_stage(plan, toolchain, devkit, DEVKIT_DIR, stock_package, environment,
                                           CONTAINER_INPUTS)
        return BuildStages(unpacked, build_python, cache, libraries, host, devkit, extensions, interpreter,
                           package(plan.artifact_name, snapshot), stock_package, snapshot, training)

    # -- running what was built -----------------------------------------------------------

    def runtime_of(self, plan: Plan | None) -> str:
        """How the interpreter of a plan's artifact runs, as the smoke phase says it."""
        return self.runtime

    def smoke(self, artifact: Path, version: str, executor, image: str, log: Path, cache: Path, modules=(),
              extensions=(), programs=None) -> dict:
        """Run the smoke check on an artifact in the toolchain `image` (its runtime is there), output to `log`, its
        runtime keeping what it compiles in `cache`; its report, or a BuildError. `modules`: those it must import and
        use (its plan's); `extensions`: a custom interpreter's (its plan's), whose modules it must have built in;
        `programs`: what it must run (its plan's smoke_programs)."""
        run = image_runner(executor, image, log, self.smoke_invocation, cache)
        return smoke(artifact, version, self.name, run, modules, extensions, programs)

    @staticmethod
    def smoke_invocation(unpacked: Path, scratch: Path, cache: Path) -> tuple[list[str], list, dict[str, str]]:
        """How the smoke run starts the interpreter of the artifact `unpacked` (tools/smoke.py's image_runner)."""
        raise NotImplementedError

    def add_tests(self, plan: Plan, artifact: Path, source: Path, work: Path) -> None:
        """Put the release's Lib/test (from the unpacked `source`) where the interpreter of the artifact unpacked
        at work/artifact finds it, with whatever else its test run needs there."""
        raise NotImplementedError

    def regrtest_options(self, plan: Plan, source: Path, jobs: int) -> list[str]:
        """regrtest's options as CPython's own CI runs the suite on this platform (from the release's `source`):
        by default as `make test` does (CPython's WASI CI runs it), with one worker per core."""
        return ["--fast-ci", "-j", str(jobs)]

    def runner_inputs(self, build) -> tuple:
        """Files that run the artifact in the toolchain image, for the test run and the benchmark, besides the
        artifact, the source and the build python (FileInputs)."""
        return ()

    def regrtest_command(self, build, source: Path, options: list[str], tests: list[str], jobs: int,
                         work: str) -> list[str]:
        """The test run's command in the toolchain image: regrtest with regrtest_options, then `options` (where
        it writes) and the `tests`, on the artifact unpacked at work/artifact."""
        raise NotImplementedError

    def test_runner(self, jobs: int) -> str:
        """How the test run runs the interpreter, as its progress line says."""
        raise NotImplementedError


    def bench_runtimes(self, plan: Plan, work: str) -> dict[str, Runtime]:
        """The runtimes the benchmark can run the artifact unpacked at work/artifact under, by name. The first is
        the default: the one every run measures and the targets are checked under."""
        raise NotImplementedError

    def bench_config(self, plan: Plan, work: str) -> dict:
        """What the bench runner's configuration needs besides the interpreters."""
        return {}

    @staticmethod
    def prepared_command(command: list[str], runtimes: list[Runtime]) -> list[str]:
        """`command` after what each of the runtimes it runs must do first (Runtime.prepare)."""
        steps = [runtime.prepare for runtime in runtimes if runtime.prepare]
        if not steps:
            return command
        return ["sh", "-c", " && ".join([*steps, f"exec {shlex.join(command)}"])]

    def runtime_version(self, plan: Plan) -> str:
        """What runs the artifact in the test run and the benchmark, with its version."""
        raise NotImplementedError

    def sbom_compiled_in(self, plan: Plan, lock: dict) -> list:
        """The SBOM's components linked into the interpreter besides CPython and the recipes' libraries."""
        raise NotImplementedError

    def sbom_toolchain(self, plan: Plan, lock: dict) -> list:
        """The SBOM's tools: the toolchain and the runner of the smoke run."""
        raise NotImplementedError


def add_unshipped_stdlib(source: Path, shipped: set[str], destination: Path) -> None:
    """The pure-Python modules and packages of the release's Lib/ whose top-level name (os, json, email...) is
    not in `shipped`, copied as sources into `destination`: what regrtest and the tests import besides what an
    artifact ships, on the workers' path after its standard library, so nothing it ships is shadowed."""
    destination.mkdir(parents=True, exist_ok=True)
    for entry in sorted((source / "Lib").iterdir()):
        name = entry.name.split(".")[0] if entry.is_file() else entry.name
        if name in shipped or entry.name == "__pycache__" or (entry.is_file() and entry.suffix != ".py"):
            continue
        if entry.is_dir():
            shutil.copytree(entry, destination / entry.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(entry, destination / entry.name)


def web_package_argument(web: WebPackage) -> str:
    """What the package stage is told of a web package (container/web_assets.py): its tarball, where its files
    go, and each file with the URL the page names it by."""
    return json.dumps({"tarball": f"{CONTAINER_INPUTS}/{web.tarball.file}", "directory": web.directory,
                       "files": [file.model_dump(exclude_none=True) for file in web.files]}, sort_keys=True)


def library_key(name: str) -> str:
    return f"library:{name}"


def library_prefix(library: LibraryRecipe) -> str:
    return f"{LIBRARIES_DIR}/{library.name}"


def phases(driver: Driver, names, configure_args=()) -> tuple[Phase, ...]:
    return tuple(Phase(name, tuple(driver.command(name, configure_args)), driver.workdir(name)) for name in names)
