"""Emscripten (wasm32-emscripten): python.js and python.wasm built with emcc, run by Node and browsers."""

import dataclasses
import re
import shlex
import tomllib
from pathlib import Path

from packageurl import PackageURL

from cpython_wasm.container.emscripten_data import stdlib_top_level
from cpython_wasm.errors import BuildError, UserError
from cpython_wasm.paths import CONTAINER_SOURCE, CONTAINER_TOOLS, CONTAINERS_DIR, EMSDK_PATH
from cpython_wasm.recipes.plan import Plan
from cpython_wasm.recipes.schema import LibraryRecipe
from cpython_wasm.records import sbom
from cpython_wasm.records.verify import verifier
from cpython_wasm.stages.images import ImageSpec, StageImage, native_spec, pinned_file
from cpython_wasm.stages.render import render
from cpython_wasm.stages.stage import FileInput, Phase, ProductInput, Stage, Unpack, frozen_environment
from cpython_wasm.targets.drivers import (
    EMSCRIPTEN_HELPER_BUILD_PYTHON,
    EMSCRIPTEN_HELPER_HOST_DIR,
    Driver,
    EmscriptenConfigureDriver,
    EmscriptenHelperDriver,
    build_triple,
    driver_for,
)
from cpython_wasm.targets.target import (
    CONTAINER_INPUTS,
    NODE_SETTINGS,
    Runtime,
    Target,
    add_unshipped_stdlib,
    build_environment,
    library_prefix,
)
from cpython_wasm.tools.smoke import node_command, node_invocation

DYNAMIC_LINKING = "--enable-wasm-dynamic-linking"
PLATFORMS_EMSCRIPTEN = "Platforms/emscripten"  # CPython's own helper (3.14+), as the recipes name it
# The libraries Platforms/emscripten downloads and builds itself (its make-dependencies), by recipe name.
HELPER_DEPENDENCIES = ("libffi", "mpdecimal")
HELPER_DEPENDENCY_SCRIPT = CONTAINERS_DIR / "files" / "build-helper-dependency.sh"
# Runs a 3.11-3.13 "browser" flavour python.js under Node as a python command: a test worker.
BROWSER_FLAVOUR_RUNNER = CONTAINERS_DIR / "files" / "run-python-js.cjs"
BROWSER_FLAVOUR_RUNNER_MOUNT = f"{CONTAINER_TOOLS}/{BROWSER_FLAVOUR_RUNNER.name}"  # where the test stage mounts it
# Where Tools/wasm's browser flavour preloads the standard library (configure's WASM_ASSETS_DIR is .$(prefix)).
BROWSER_FLAVOUR_PREFIX = "/usr/local"
# V8's stack for a browser flavour's worker, in kB: 3.13 bounds C recursion by a count, which in wasm frames on
# V8's stack goes past its default limit (984 kB; test_functools ended in "RangeError: Maximum call stack size
# exceeded"). 4000 kB stays inside the main thread's 8 MB (ulimit -s in the images). 3.14+ checks the stack
# itself and needs no more.
BROWSER_FLAVOUR_NODE_STACK_KB = 4000
# emcc's cache of system libraries, built once per toolchain (the toolchain cache stage's output), and where a
# compile stage mounts it to start its own cache from (EM_CACHE, in its output: emcc adds what else it needs).
CACHE_DIR = "/opt/emscripten-cache"
CACHE_SEED = "/opt/emscripten-cache-seed"
# What each configure's test programs link: a plain program. (The host stage adds the position-independent
# variants its main module needs, once.)
SYSTEM_LIBRARIES = 'printf "int main(void) { return 0; }\\n" > seed.c && emcc -O2 seed.c -o seed.js && rm -f seed*'
# The seed copied into the stage's own cache (writable: the seed is a sealed product), then the command.
SEED_CACHE = 'mkdir -p "$EM_CACHE" && cp -R "$0"/. "$EM_CACHE"/ && chmod -R u+w "$EM_CACHE" && exec "$@"'
# An option of regrtest as a release's config.toml gives it (-uall, --single-process, -W).
REGRTEST_OPTION = re.compile(r"-{1,2}[A-Za-z][A-Za-z0-9=,-]*")


class Emscripten(Target):
    name = "emscripten"
    title = "Emscripten"
    runtime = "python.js under Node"
    runs_in_browser = True
    # Position-independent, so that a line linked for dynamic linking (-sMAIN_MODULE, which `import ctypes`
    # needs: it opens the interpreter itself with dlopen(NULL)) can link them; a static link takes them too,
    # so every line shares one build of each library.
    library_cflags = ("-fPIC",)

    def driver(self, plan: Plan) -> Driver:
        """3.11-3.13: configure and make, as Tools/wasm/README.md documents; 3.14+: CPython's own
        Platforms/emscripten. Either with the build python of the line's WASI helper (one store product for both
        targets)."""
        wasi = driver_for(plan.python.wasi.helper, plan.python.wasi.host_triple, plan.arch)
        helper, host_triple = plan.support.helper, plan.support.host_triple
        if helper == "configure":
            return EmscriptenConfigureDriver(
                wasi.helper, wasi.build_python_dir, f"cross-build/{host_triple}", wasi.setup_local, wasi.subcommands,
                build_triple=build_triple(helper, plan.arch), host_triple=host_triple,
            )
        if helper == PLATFORMS_EMSCRIPTEN:
            return EmscriptenHelperDriver(
                wasi.helper, wasi.build_python_dir, EMSCRIPTEN_HELPER_HOST_DIR, wasi.setup_local, wasi.subcommands,
                build_python_mount=EMSCRIPTEN_HELPER_BUILD_PYTHON, emscripten_helper=helper,
            )
        raise UserError(f"No driver for the Emscripten helper {helper!r} of CPython {plan.python.line}.")

    def toolchain_spec(self, plan: Plan, cached_path, store=None) -> ImageSpec:
        files = [pinned_file(plan.sdk_tarball, cached_path)] if plan.sdk_tarball else []
        dockerfile = render(
            f"emsdk-{plan.provider}.Dockerfile.j2",
            native_image=native_spec(plan).tag, sdk=plan.sdk, suite=plan.base.suite, packages=plan.toolchain.packages,
            sdk_tarball=plan.sdk_tarball.file if plan.sdk_tarball else None, emsdk_path=EMSDK_PATH,
            frozen_cache=plan.frozen_cache, makefile_clang=getattr(plan.toolchain, "makefile_clang", None),
        )
        return ImageSpec(f"emsdk-{plan.sdk}-{plan.provider}", dockerfile, tuple(files))

    def toolchain_environment(self, plan: Plan, writable_dir: str) -> dict[str, str]:
        """Where emcc keeps its cache of system libraries: never written in the image.

        A frozen cache that the toolchain ships prebuilt is only read; otherwise
        emcc builds what it needs into the stage's own output."""
        if plan.frozen_cache:
            return {}
        return {"EM_CACHE": f"{writable_dir}/emscripten-cache"}

    def toolchain_cache_stage(self, plan: Plan, toolchain: StageImage) -> Stage | None:
        """The system libraries emcc builds on first use (libc, its allocator, compiler-rt...), as a plain link
        needs them, built once per toolchain: every compile stage's configure links test
        programs, and would otherwise build them again (minutes each). None where the toolchain ships them
        prebuilt in a frozen cache."""
        if plan.frozen_cache:
            return None
        return Stage(
            "toolchain-cache", f"emscripten-cache-{plan.toolchain_name}", toolchain.id,
            (Phase("build-system-libraries", ("sh", "-c", SYSTEM_LIBRARIES), "/tmp"),),
            frozen_environment({"EM_CACHE": CACHE_DIR, "SOURCE_DATE_EPOCH": str(plan.base.source_date_epoch)}),
            (), CACHE_DIR, produces=("sysroot/lib/wasm32-emscripten/libc.a",),
        )

    def compile_phase(self, phase: Phase, cache: Stage | None) -> Phase:
        if cache is None:
            return phase
        return dataclasses.replace(phase, command=("sh", "-c", SEED_CACHE, CACHE_SEED, *phase.command))

    def compile_inputs(self, cache: Stage | None) -> tuple:
        return (ProductInput(CACHE_SEED, cache),) if cache is not None else ()

    def library_stage(self, plan: Plan, library: LibraryRecipe, toolchain: StageImage, cached_path,
                      unpacked: Unpack, cache: Stage | None) -> Stage:
        """What CPython's own helper builds itself (HELPER_DEPENDENCIES), built the way it builds it, by the
        release's own script where it has one (containers/files/build-helper-dependency.sh); the rest as for
        every target."""
        if not self.built_by_platforms_emscripten(plan) or library.name not in HELPER_DEPENDENCIES:
            return super().library_stage(plan, library, toolchain, cached_path, unpacked, cache)
        prefix, tarball = library_prefix(library), f"{CONTAINER_INPUTS}/{library.source.file}"
        script = FileInput.of(f"{CONTAINER_TOOLS}/{HELPER_DEPENDENCY_SCRIPT.name}", HELPER_DEPENDENCY_SCRIPT)
        helper_dir = f"{CONTAINER_SOURCE}/{plan.support.helper}"
        environment = {**self.toolchain_environment(plan, prefix), **build_environment(plan)}
        return Stage(
            "library", f"{library.name}-{library.version}-{plan.toolchain_name}-cpython-{plan.release.version}",
            toolchain.id,
            (self.compile_phase(Phase(f"build-{library.name}",
                                      ("sh", script.container, library.name, tarball, prefix, helper_dir), "/tmp"),
                                cache),),
            frozen_environment(environment),
            (script, FileInput(tarball, library.source.sha256, cached_path(library.source)),
             ProductInput(CONTAINER_SOURCE, unpacked), *self.compile_inputs(cache)),
            prefix, produces=(f"lib/lib{library.link}.a",),
        )

    def built_by_platforms_emscripten(self, plan: Plan) -> bool:
        """Whether the plan's line is built by CPython's own Platforms/emscripten (3.14+; EmscriptenHelperDriver)."""
        return plan.support.helper == PLATFORMS_EMSCRIPTEN

    def links_dynamically(self, plan: Plan) -> bool:
        """Whether python.js is a main module for dynamic linking: CPython's own helper always links it so."""
        return DYNAMIC_LINKING in plan.support.configure_host_args or self.built_by_platforms_emscripten(plan)

    def library_libs(self, plan: Plan, libs: str) -> str:
        """A main module for dynamic linking (--enable-wasm-dynamic-linking) is linked by emcc with every
        archive whole: libz.a, named twice (for zlib and binascii), would then define each symbol twice, and
        every unused member of the others would be linked and exported. Linked the usual way in between, each
        archive gives what the interpreter uses, once."""
        if not self.links_dynamically(plan):
            return libs
        return f"-Wl,--no-whole-archive {libs} -Wl,--whole-archive"

    def runtime_of(self, plan: Plan | None) -> str:
        if plan is not None and self.built_by_platforms_emscripten(plan):
            return "python.mjs under Node"
        return self.runtime

    smoke_invocation = staticmethod(node_invocation)

    def add_tests(self, plan: Plan, artifact: Path, source: Path, work: Path) -> None:
        """At work/tests, on the workers' PYTHONPATH after the standard library zip (regrtest_command): Lib/test,
        and the pure-Python modules of the release's Lib/ that the web build leaves out of its zip entirely
        (wasm_assets.py drops http, curses, ensurepip...), as upstream's Node runs, which read Lib/ from the
        host, have them. Nothing the artifact ships is shadowed: what it carries is what runs."""
        if not self.built_by_platforms_emscripten(plan) and b'Module["FS"]' not in (work / "artifact" / "python.js").read_bytes():
            raise UserError(
                f"{plan.artifact_name}'s python.js does not export Emscripten's FS, which its test run mounts "
                f"Lib/test and the work directory with (containers/files/run-python-js.cjs). The 3.13 recipe links "
                f"with LDFLAGS=-sEXPORTED_RUNTIME_METHODS=FS; build with a recipe that does, or test the WASI "
                f"build of the same release (`invoke test --python {plan.release.version}`).")
        add_unshipped_stdlib(source, stdlib_top_level(work / "artifact"), work / "tests")

    def regrtest_options(self, plan: Plan, source: Path, jobs: int) -> list[str]:
        """3.14+: the release's Platforms/emscripten/config.toml test-args after `-m test` (what CPython's own
        Emscripten CI runs), with `--single-process` replaced by one worker per core (`-j`; regrtest_command).
        3.11-3.13 name none (CPython did not test Emscripten then): `make test`'s, as for WASI."""
        if not self.built_by_platforms_emscripten(plan):
            return super().regrtest_options(plan, source, jobs)
        path = source / "Platforms" / "emscripten" / "config.toml"
        arguments = tomllib.loads(verifier.read_bounded(path, 1 << 16).decode("utf-8")).get("test-args")
        if not (isinstance(arguments, list) and arguments[:2] == ["-m", "test"]
                and all(isinstance(argument, str) and REGRTEST_OPTION.fullmatch(argument) for argument in arguments[2:])):
            raise BuildError(f"{path}: test-args is not `-m test` followed by regrtest options ({arguments!r}).")
        return [*(argument for argument in arguments[2:] if argument != "--single-process"), "-j", str(jobs)]

    def regrtest_command(self, build, source: Path, options: list[str], tests: list[str], jobs: int,
                         work: str) -> list[str]:
        """regrtest's main process is the native build python of the release and each worker the artifact under
        the image's Node (`--python`: CPython's node_entry.mjs, as python.sh runs it, with Lib/test from
        work/tests on its PYTHONPATH), one per core, as `make test` runs WASI's. (Upstream's Emscripten CI runs
        regrtest inside Node, --single-process: on one core, and a test that crashes the interpreter ends the
        whole run; here it ends its worker, and regrtest says which.)"""
        worker = self.test_worker(build.plan, work)
        return [build.driver.build_python, "-m", "test", *self.regrtest_options(build.plan, source, jobs), *options,
                "--python", shlex.join(worker), *tests]

    def test_worker(self, plan: Plan, work: str) -> list[str]:
        """A regrtest worker: the artifact unpacked at work/artifact under Node, with work/tests (add_tests) after
        its standard library. 3.14+ reads host paths through node_entry.mjs; a 3.11-3.13 browser flavour's
        python.js sees only what python.data preloads, so run-python-js.cjs mounts the work directory for it
        and links the tests into its standard library's directory."""
        if self.built_by_platforms_emscripten(plan):
            return self.node_interpreter(plan, f"{work}/artifact", f"{work}/tests")
        return ["node", f"--stack-size={BROWSER_FLAVOUR_NODE_STACK_KB}", BROWSER_FLAVOUR_RUNNER_MOUNT,
                f"{work}/artifact", work, f"{BROWSER_FLAVOUR_PREFIX}/lib/python{plan.python.line}", f"{work}/tests"]

    def runner_inputs(self, build) -> tuple:
        if self.built_by_platforms_emscripten(build.plan):
            return ()
        return (FileInput.of(BROWSER_FLAVOUR_RUNNER_MOUNT, BROWSER_FLAVOUR_RUNNER),)

    def node_interpreter(self, plan: Plan, artifact: str, *more_path: str, node_options: tuple[str, ...] = ()) -> list[str]:
        """The command line that runs the artifact unpacked at `artifact` under Node as a python would be run, its
        environment (node_command) set by env; `more_path` after its standard library on PYTHONPATH (3.14+);
        `node_options` given to Node itself."""
        stdlib = f"python{plan.python.line}.zip" if self.built_by_platforms_emscripten(plan) else None
        (node, *command), environment = node_command(artifact, stdlib)
        if environment and more_path:
            environment["PYTHONPATH"] = ":".join((environment["PYTHONPATH"], *more_path))
        return ["env", *(f"{name}={value}" for name, value in sorted(environment.items())), node, *node_options, *command]

    def test_runner(self, jobs: int) -> str:
        return f"{jobs} workers under Node"

    def bench_runtimes(self, plan: Plan, work: str) -> dict[str, Runtime]:
        runtimes = [Runtime(name, description, tuple(self.node_interpreter(plan, f"{work}/artifact", node_options=options)))
                    for name, (description, options) in NODE_SETTINGS.items()]
        return {runtime.name: runtime for runtime in runtimes}

    def runtime_version(self, plan: Plan) -> str:
        return "node"

    def sbom_compiled_in(self, plan: Plan, lock: dict) -> list:
        # emscripten's own C library and runtime, from its system libraries.
        if plan.provider == "debian":
            return [sbom.deb(sbom.debian_packages(lock, "toolchain")["emscripten"])]
        return [emsdk_component(plan)]

    def sbom_toolchain(self, plan: Plan, lock: dict) -> list:
        # Node, which runs the smoke test, comes from Debian for either provider.
        packages = sbom.debian_packages(lock, "toolchain")
        debs = [sbom.deb(packages[name]) for name in sorted(plan.toolchain.packages)]
        return debs if plan.provider == "debian" else [emsdk_component(plan), *debs]


def emsdk_component(plan: Plan):
    tarball = plan.sdk_tarball
    return sbom.component(sbom.ComponentType.APPLICATION, "emscripten", plan.sdk, tarball.sha256,
                          PackageURL("github", "emscripten-core", "emscripten", plan.sdk), description=tarball.file)
