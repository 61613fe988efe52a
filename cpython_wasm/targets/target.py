"""A target: what building for one WebAssembly platform means, in one object.

A target (wasi.py, emscripten.py) turns a plan into its stages, knows its
toolchain image, how its interpreter runs (the smoke run, the test suite's
workers, the benchmark's interpreter) and what its SBOM lists. What every
target shares is here: the four stages of a build, as CPython's own helpers
run them.

    source         the CPython tarball unpacked, with the mount points of the build directories
    build-python   a native CPython of the same version (in the native image: every SDK shares it)
    host           python.wasm (or python.js) cross-compiled with it, in the toolchain image
    package        the deterministic tarballs, by container/package.py in the native image
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from cpython_wasm.container import emscripten_data, package, tarball, wasm
from cpython_wasm.errors import UserError
from cpython_wasm.paths import CONTAINER_OUTPUT, CONTAINER_SCRIPTS_DIR, CONTAINER_SOURCE, CONTAINER_TOOLS
from cpython_wasm.recipes.plan import Plan
from cpython_wasm.stages.images import ImageSpec
from cpython_wasm.stages.stage import FileInput, Phase, ProductInput, Stage, Unpack, frozen_environment
from cpython_wasm.targets.drivers import BUILD_PYTHON_PHASES, HOST_PHASES, Driver

# The packaging script and its siblings, mounted as the package `container` in CONTAINER_TOOLS.
PACKAGE_MODULES = ("__init__", *(module.__name__.rsplit(".", 1)[1] for module in (package, tarball, wasm, emscripten_data)))


@dataclass(frozen=True)
class BuildStages:
    """The stages of one build, in the order they run."""

    source: Unpack
    build_python: Stage
    host: Stage
    package: Stage

    def __iter__(self):
        return iter((self.source, self.build_python, self.host, self.package))


def build_environment(plan: Plan) -> dict[str, str]:
    """The environment of every compile stage."""
    # Derived from the recipe, never from the clock or git: clang uses it for
    # __DATE__/__TIME__, and wasi.py would otherwise ask git.
    return {"SOURCE_DATE_EPOCH": str(plan.release.source_date_epoch)}


class Target:
    name: str  # as recipes, plans and lockfiles name it
    title: str  # as users read it
    runtime: str  # how its interpreter runs, as the smoke phase says it
    runs_in_toolchain_image = False  # whether its runner needs the toolchain image (Node) rather than this process
    runs_in_browser = False  # whether `invoke smoke --browser` runs it in Chromium too

    # -- building -----------------------------------------------------------------------

    def driver(self, plan: Plan) -> Driver:
        raise NotImplementedError

    def toolchain_spec(self, plan: Plan, cached_path) -> ImageSpec:
        """The toolchain image; `cached_path(pin)` says where a pinned input is (or will be) in the cache."""
        raise NotImplementedError

    def toolchain_environment(self, plan: Plan, driver: Driver) -> dict[str, str]:
        """What the toolchain itself needs in the host stage's environment."""
        return {}

    def host_environment(self, plan: Plan, driver: Driver) -> dict[str, str]:
        """The environment of the host stage (what the lockfile's build.host_environment records)."""
        return {**plan.support.host_environment, **driver.host_environment, **self.toolchain_environment(plan, driver),
                **build_environment(plan)}

    def host_dir(self, plan: Plan) -> str | None:
        """Where this target's host build of the plan's release would be, in the source tree (a mount point the
        source must hold); None if the line is not built for this target here."""
        if plan.python.support(self.name) is None:
            return None
        try:
            return self.driver(dataclasses.replace(plan, target=self.name)).host_dir
        except UserError:  # a helper no driver runs yet
            return None

    def stages(self, plan: Plan, native: ImageSpec, toolchain: ImageSpec, configure_args, unpacked: Unpack) -> BuildStages:
        """The build's stages, from the unpacked source (targets.source_stage: one for every target)."""
        driver, artifact = self.driver(plan), plan.artifact_name
        environment = frozen_environment(build_environment(plan))
        build_python_dir, host_dir = driver.path(driver.build_python_dir), driver.path(driver.host_dir)
        build_python = Stage(
            "build-python", f"build-python-{plan.release.version}", native.tag,
            phases(driver, BUILD_PYTHON_PHASES), environment, (ProductInput(CONTAINER_SOURCE, unpacked),),
            build_python_dir, produces=("python",),
        )
        host = Stage(
            "host", f"host-{artifact}", toolchain.tag, phases(driver, HOST_PHASES, configure_args),
            frozen_environment(self.host_environment(plan, driver)),
            (ProductInput(CONTAINER_SOURCE, unpacked), ProductInput(build_python_dir, build_python)),
            host_dir, produces=("python.wasm",),
        )
        command = ("python3", "-m", "container.package", "--artifact", artifact, "--line", plan.python.line,
                   "--target", self.name, "--source", CONTAINER_SOURCE, "--host-build", host_dir,
                   "--build-python", driver.build_python, "--mtime", str(plan.release.source_date_epoch),
                   "--output", CONTAINER_OUTPUT, *(f"--exclude={name}" for name in plan.python.package.exclude))
        scripts = tuple(FileInput.of(f"{CONTAINER_TOOLS}/container/{name}.py", CONTAINER_SCRIPTS_DIR / f"{name}.py")
                        for name in PACKAGE_MODULES)
        packaged = Stage(
            "package", f"package-{artifact}", native.tag, (Phase("package", command, CONTAINER_TOOLS),), environment,
            (ProductInput(CONTAINER_SOURCE, unpacked), ProductInput(build_python_dir, build_python),
             ProductInput(host_dir, host), *scripts),
            CONTAINER_OUTPUT, produces=(f"{artifact}.tar.gz", tarball.MANIFEST),
        )
        return BuildStages(unpacked, build_python, host, packaged)

    # -- running what was built -----------------------------------------------------------

    def smoke(self, artifact: Path, version: str, executor=None, image: str | None = None, log: Path | None = None) -> dict:
        """Run the smoke check on an artifact; its report, or a BuildError. `executor`, `image` and `log`: for a
        target whose runner is in the toolchain image."""
        raise NotImplementedError

    def check_testable(self, plan: Plan) -> None:
        """Raise a UserError if `invoke test` cannot run this target's artifacts."""

    def bench_interpreter(self, work: str) -> tuple[list[str], dict]:
        """The benchmark's wasm interpreter command, with the artifact unpacked at work/artifact, and what the
        bench runner's configuration needs besides."""
        raise NotImplementedError

    def bench_command(self, command: list[str], work: str) -> list[str]:
        """The bench runner's command, with what must run before it."""
        return command

    def runtime_version(self, plan: Plan) -> str:
        raise NotImplementedError

    def sbom_compiled_in(self, plan: Plan, lock: dict) -> list:
        """The SBOM's components linked into the interpreter besides CPython and the recipes' libraries."""
        raise NotImplementedError

    def sbom_toolchain(self, plan: Plan, lock: dict) -> list:
        """The SBOM's tools: the toolchain and the runner of the smoke run."""
        raise NotImplementedError


def phases(driver: Driver, names, configure_args=()) -> tuple[Phase, ...]:
    return tuple(Phase(name, tuple(driver.command(name, configure_args)), driver.workdir(name)) for name in names)
