"""Emscripten (wasm32-emscripten): python.js and python.wasm built with emcc, run by Node and browsers."""

from pathlib import Path

from packageurl import PackageURL

from cpython_wasm.errors import UserError
from cpython_wasm.paths import EMSDK_PATH
from cpython_wasm.recipes.plan import Plan
from cpython_wasm.records import sbom
from cpython_wasm.stages.images import ImageSpec, native_spec, pinned_file
from cpython_wasm.stages.render import render
from cpython_wasm.targets.drivers import NOT_DRIVEN, Driver, EmscriptenConfigureDriver, build_triple, driver_for
from cpython_wasm.targets.target import Target
from cpython_wasm.tools.smoke import node_runner, smoke

DYNAMIC_LINKING = "--enable-wasm-dynamic-linking"


class Emscripten(Target):
    name = "emscripten"
    title = "Emscripten"
    runtime = "python.js under Node"
    runs_in_toolchain_image = True
    runs_in_browser = True
    # Position-independent, so that a line linked for dynamic linking (-sMAIN_MODULE, which `import ctypes`
    # needs: it opens the interpreter itself with dlopen(NULL)) can link them; a static link takes them too,
    # so every line shares one build of each library.
    library_cflags = ("-fPIC",)

    def driver(self, plan: Plan) -> Driver:
        """3.11-3.13: configure and make, as Tools/wasm/README.md documents, with the build python of the line's
        WASI helper (one store product for both targets)."""
        wasi = driver_for(plan.python.wasi.helper, plan.python.wasi.host_triple, plan.arch)
        helper, host_triple = plan.support.helper, plan.support.host_triple
        if helper == "configure":
            return EmscriptenConfigureDriver(
                wasi.helper, wasi.build_python_dir, f"cross-build/{host_triple}", wasi.setup_local, wasi.subcommands,
                build_triple=build_triple(helper, plan.arch), host_triple=host_triple,
            )
        raise UserError(
            f"CPython {plan.python.line} is built for Emscripten by its own helper, {helper}, which "
            f"{NOT_DRIVEN[helper]}. Build a line whose [emscripten] helper is \"configure\" (`invoke matrix` lists them)."
        )

    def toolchain_spec(self, plan: Plan, cached_path) -> ImageSpec:
        files = [pinned_file(plan.sdk_tarball, cached_path)] if plan.sdk_tarball else []
        dockerfile = render(
            f"emsdk-{plan.provider}.Dockerfile.j2",
            native_image=native_spec(plan).tag, sdk=plan.sdk, suite=plan.base.suite, packages=plan.toolchain.packages,
            sdk_tarball=plan.sdk_tarball.file if plan.sdk_tarball else None, emsdk_path=EMSDK_PATH,
            frozen_cache=plan.frozen_cache,
        )
        return ImageSpec(f"emsdk-{plan.sdk}-{plan.provider}", dockerfile, tuple(files))

    def toolchain_environment(self, plan: Plan, writable_dir: str) -> dict[str, str]:
        """Where emcc keeps its cache of system libraries: never written in the image.

        A frozen cache that the toolchain ships prebuilt is only read; otherwise
        emcc builds what it needs into the stage's own output."""
        if plan.frozen_cache:
            return {}
        return {"EM_CACHE": f"{writable_dir}/emscripten-cache"}

    def library_libs(self, plan: Plan, libs: str) -> str:
        """A main module for dynamic linking (--enable-wasm-dynamic-linking) is linked by emcc with every
        archive whole: libz.a, named twice (for zlib and binascii), would then define each symbol twice, and
        every unused member of the others would be linked and exported. Linked the usual way in between, each
        archive gives what the interpreter uses, once."""
        if DYNAMIC_LINKING not in plan.support.configure_host_args:
            return libs
        return f"-Wl,--no-whole-archive {libs} -Wl,--whole-archive"

    def smoke(self, artifact: Path, version: str, modules=(), executor=None, image=None, log=None,
              extensions=()) -> dict:
        return smoke(artifact, version, self.name, node_runner(executor, image, log), modules, extensions)

    def check_testable(self, plan: Plan) -> None:
        raise UserError(
            f"invoke test runs WASI artifacts; {plan.artifact_name} is built for Emscripten, whose "
            f"browser build preloads its standard library into python.data and has no place for Lib/test. "
            f"Test the WASI build of the same release (`invoke test --python {plan.release.version}`).")

    def bench_interpreter(self, work: str) -> tuple[list[str], dict]:
        return ["node", f"{work}/artifact/python.js"], {}

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
