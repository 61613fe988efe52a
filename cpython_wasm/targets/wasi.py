"""WASI (wasm32-wasip1): python.wasm built with a WASI SDK, run by wasmtime."""

import re
import shlex
import shutil
from pathlib import Path

from packageurl import PackageURL

from cpython_wasm.files import write_atomically
from cpython_wasm.inputs import tools
from cpython_wasm.inputs.archives import safe_extract
from cpython_wasm.inputs.tools import WASMTIME_CLI
from cpython_wasm.paths import CONTAINER_SCRIPTS_DIR, CONTAINER_TOOLS, WASI_SDK_PATH
from cpython_wasm.recipes.artifacts import debug_artifact_name
from cpython_wasm.recipes.plan import Plan
from cpython_wasm.records import sbom
from cpython_wasm.runtime import DEFAULT_WASM_STACK
from cpython_wasm.stages.executor import Bind
from cpython_wasm.stages.images import ImageSpec, helper_file, native_spec, pinned_file
from cpython_wasm.stages.render import render
from cpython_wasm.targets.drivers import Driver, driver_for
from cpython_wasm.targets.target import NODE_SETTINGS, Runtime, Target, add_unshipped_stdlib


def wasmtime_guest_options(work: str) -> list[str]:
    """The artifact's directory as the guest's /, where its standard library is."""
    return ["--dir", f"{work}/artifact::/", "--env", "PYTHONHOME=/", "--argv0", "/python.wasm"]


def wasmtime_invocation(unpacked: Path, scratch: Path, cache: Path) -> tuple[list[str], list[Bind], dict[str, str]]:
    """python.wasm under the image's wasmtime CLI, the artifact at /work/artifact (the guest's /) and `scratch`
    the guest's writable /tmp; `cache` the CLI's cache of compiled modules, kept between runs, so that the smoke run
    of an artifact run before loads its compiled module (wasmtime checks the entry against the module's bytes and
    its own version and settings) instead of compiling python.wasm again (about 4 s of a no-op build)."""
    work = "/work"
    cache.mkdir(parents=True, exist_ok=True)
    write_atomically(cache / "config.toml", f'[cache]\ndirectory = "{work}/cache/modules"\n'.encode())
    command = [WASMTIME_CLI, "run", "-C", f"cache-config={work}/cache/config.toml", *wasmtime_guest_options(work),
               "--dir", f"{work}/tmp::/tmp", f"{work}/artifact/python.wasm"]
    return command, [Bind(unpacked, f"{work}/artifact"), Bind(scratch, f"{work}/tmp", writable=True),
                     Bind(cache, f"{work}/cache", writable=True)], {}


# The wasmtime CLI's settings `invoke bench --runtime` runs python.wasm with, by name: what each is, and the codegen
# options given to both `wasmtime compile` and `wasmtime run`. The CLI's defaults are already the settings wasmtime
# documents for fast execution on a 64-bit host (Cranelift, opt-level 2, signals-based traps, bounds checks elided by
# a 4 GiB reservation and guard pages); the others are the documented alternatives a user may pick.
WASMTIME_SETTINGS = {
    "wasmtime": ("wasmtime CLI, its defaults: Cranelift at opt-level 2, bounds checks elided by guard pages", ()),
    "wasmtime-inlining": ("wasmtime CLI, Cranelift with function inlining (-C inlining=y)", ("-C", "inlining=y")),
    "wasmtime-winch": ("wasmtime CLI, Winch, the baseline compiler (-C compiler=winch): quick to compile",
                       ("-C", "compiler=winch")),
}


def wasmtime_cli_runtime(name: str, work: str, max_wasm_stack: int | None = None) -> Runtime:
    """The wasmtime CLI with one of its WASMTIME_SETTINGS running the artifact unpacked at work/artifact, compiled
    once by the CLI beforehand (`prepare`), as wasmtime's cache would after the first run, for every process that runs
    it; with wasmtime's own stack size (runtime.DEFAULT_WASM_STACK) unless another is given."""
    description, codegen = WASMTIME_SETTINGS[name]
    cwasm = f"{work}/{name}.cwasm"
    stack = ("--wasm", f"max-wasm-stack={max_wasm_stack}") if max_wasm_stack is not None else ()
    return Runtime(name, description,
                   (WASMTIME_CLI, "run", *codegen, "--allow-precompiled", *stack, *wasmtime_guest_options(work), cwasm),
                   shlex.join([WASMTIME_CLI, "compile", *codegen, f"{work}/artifact/python.wasm", "-o", cwasm]))


NODE_WASI = CONTAINER_SCRIPTS_DIR / "wasi_node.mjs"


def node_runtime(name: str, work: str) -> Runtime:
    """Node.js (recipes/tools/node.toml) with one of its NODE_SETTINGS running the artifact unpacked at
    work/artifact through container/wasi_node.mjs, which takes the wasmtime CLI's options for what the guest sees.
    Node keeps no compiled module between processes: every process compiles python.wasm."""
    description, options = NODE_SETTINGS[name]
    return Runtime(name, f"{description}; its WASI (node:wasi)",
                   (tools.mounted("node"), *options, "--disable-warning=ExperimentalWarning",
                    f"{CONTAINER_TOOLS}/{NODE_WASI.name}",
                    *wasmtime_guest_options(work), f"{work}/artifact/python.wasm"),
                   tools=("node",), files=(NODE_WASI,))


def wasmtime_py_runtime(plan: Plan, work: str) -> Runtime:
    """wasmtime's Python embedding (the image's wasmtime-py, through runtime.py), as a program embedding the engine
    runs python.wasm: in a host Python process, on the module precompiled by the same engine."""
    runtime, cwasm = f"{CONTAINER_TOOLS}/runtime.py", f"{work}/wasmtime-py.cwasm"
    return Runtime("wasmtime-py", f"wasmtime-py {plan.wasmtime.version}, wasmtime's Python embedding, in a host Python",
                   ("python3", runtime, "run", "--allow-precompiled", *wasmtime_guest_options(work), cwasm),
                   shlex.join(["python3", runtime, "compile", f"{work}/artifact/python.wasm", "-o", cwasm]))


def wasm_stack(host_build: Path) -> int:
    """The wasm stack the release's host runner gives the guest: upstream's is 8 MiB (Linux's `ulimit -s`); a
    line whose Makefile asks for more gets what it asks for."""
    makefile = host_build / "Makefile"
    match = _WASM_STACK.search(makefile.read_text(errors="replace")) if makefile.is_file() else None
    return max(DEFAULT_WASM_STACK, int(match.group(1))) if match else DEFAULT_WASM_STACK


_WASM_STACK = re.compile(r"max-wasm-stack=(\d+)")


class Wasi(Target):
    name = "wasi"
    title = "WASI"
    runtime = "python.wasm under wasmtime"
    # No dlopen on wasm32-wasip1: C code reaches the interpreter only linked with it, from the devkit.
    has_devkit = True

    def driver(self, plan: Plan) -> Driver:
        return driver_for(plan.python.wasi.helper, plan.python.wasi.host_triple, plan.arch)

    def toolchain_spec(self, plan: Plan, cached_path, store=None) -> ImageSpec:
        toolchain = plan.toolchain
        if plan.provider == "debian":
            values = {"llvm_major": toolchain.llvm_major, "version_file": toolchain.version_file,
                      "packages": toolchain.packages}
            files = [helper_file("assemble-debian-wasi-sdk.sh")]
        else:
            values = {"sdk_tarball": plan.sdk_tarball.file}
            files = [pinned_file(plan.sdk_tarball, cached_path)]
        cli = tools.image_file(plan, store)  # the wasmtime CLI, installed as `wasmtime`
        files += [cli, pinned_file(plan.wasmtime_wheel, cached_path)]
        dockerfile = render(
            f"wasi-sdk-{plan.provider}.Dockerfile.j2",
            native_image=native_spec(plan).tag, sdk=plan.sdk, suite=plan.base.suite, sdk_path=WASI_SDK_PATH,
            wasmtime_cli_version=plan.wasmtime_cli.version, wasmtime_cli_sha256=cli[1],
            wasmtime_version=plan.wasmtime.version, wasmtime_wheel=plan.wasmtime_wheel.file,
            **values,
        )
        return ImageSpec(f"wasi-sdk-{plan.sdk}-{plan.provider}", dockerfile, tuple(files))

    smoke_invocation = staticmethod(wasmtime_invocation)

    def add_tests(self, plan: Plan, artifact: Path, source: Path, work: Path) -> None:
        """Lib/test beside the artifact's standard library, the debug artifact over it (and for a flavour that
        ships part of the standard library, the rest of it, after what it ships).

        The debug artifact brings the standard library's sources (tests read
        them: inspect, linecache, tracebacks); each shipped .pyc is also put
        where CPython looks for the bytecode of a source (__pycache__/), so
        what runs is the artifact's own bytecode, never a recompilation of the
        sources."""
        tree = work / "artifact"
        lib = tree / "lib" / f"python{plan.python.line}"
        debug = artifact.with_name(debug_artifact_name(artifact.name))
        if debug.is_file():
            safe_extract(debug, tree, strip_components=1)
            cache_tag = "cpython-" + plan.python.line.replace(".", "")
            for compiled in lib.rglob("*.pyc"):
                if compiled.with_suffix(".py").is_file() and compiled.parent.name != "__pycache__":
                    cached = compiled.parent / "__pycache__" / f"{compiled.stem}.{cache_tag}.pyc"
                    cached.parent.mkdir(exist_ok=True)
                    shutil.copy2(compiled, cached)
        shutil.copytree(source / "Lib" / "test", lib / "test")
        if plan.flavour and plan.flavour.stdlib is not None:
            # A flavour with part of the standard library: regrtest's own modules (unittest, argparse...) and
            # what the tests import besides, as sources in site-packages, which `site` puts on the path after
            # the standard library.
            shipped = {entry.name.split(".")[0] for entry in lib.iterdir()}
            add_unshipped_stdlib(source, shipped, lib / "site-packages")
        (tree / "tmp").mkdir()  # the guest's /tmp: where each worker puts its files

    def regrtest_command(self, build, source: Path, options: list[str], tests: list[str], jobs: int,
                         work: str) -> list[str]:
        """regrtest's main process is the native build python of the release; each worker is the artifact under
        wasmtime, precompiled once (`--python`), as CPython's WASI CI runs it."""
        worker = wasmtime_cli_runtime("wasmtime", work, wasm_stack(build.products().host.path))
        regrtest = [build.driver.build_python, "-m", "test", *self.regrtest_options(build.plan, source, jobs), *options,
                    "--python", shlex.join(worker.command), *tests]
        return self.prepared_command(regrtest, [worker])

    def test_runner(self, jobs: int) -> str:
        return f"{jobs} workers, python.wasm under the wasmtime CLI"

    def bench_runtimes(self, plan: Plan, work: str) -> dict[str, Runtime]:
        runtimes = [*(wasmtime_cli_runtime(name, work) for name in WASMTIME_SETTINGS), wasmtime_py_runtime(plan, work),
                    *(node_runtime(name, work) for name in NODE_SETTINGS)]
        return {runtime.name: runtime for runtime in runtimes}

    def bench_config(self, plan: Plan, work: str) -> dict:
        return {"wasi": {"module": f"{work}/artifact/python.wasm", "runner_options": wasmtime_guest_options(work),
                         "dirs": [[f"{work}/artifact", "/"]], "env": {"PYTHONHOME": "/"}}}

    def runtime_version(self, plan: Plan) -> str:
        return f"wasmtime CLI {plan.wasmtime_cli.version} (in process: wasmtime-py {plan.wasmtime.version})"

    def sbom_compiled_in(self, plan: Plan, lock: dict) -> list:
        if plan.provider == "debian":
            packages = sbom.debian_packages(lock, "toolchain")
            llvm = plan.toolchain.llvm_major
            return [sbom.deb(packages["wasi-libc"]), sbom.deb(packages[f"libclang-rt-{llvm}-dev-wasm32"])]
        tarball, sdk = plan.sdk_tarball, plan.sdk_recipe
        purl = PackageURL("github", "WebAssembly", "wasi-libc", sdk.wasi_libc)
        return [
            sbom.component(sbom.ComponentType.LIBRARY, "wasi-libc", sdk.wasi_libc, tarball.sha256, purl,
                           description=f"the sysroot of {tarball.file} (its sha256)"),
            sbom.component(sbom.ComponentType.LIBRARY, "compiler-rt-builtins", sdk.llvm, tarball.sha256,
                           description=f"libclang_rt.builtins-wasm32 of {tarball.file} (its sha256)"),
        ]

    def sbom_toolchain(self, plan: Plan, lock: dict) -> list:
        wheel, cli = plan.wasmtime_wheel, plan.wasmtime_cli
        archive = cli.archive(plan.arch)
        embedding = sbom.component(sbom.ComponentType.APPLICATION, "wasmtime", plan.wasmtime.version, wheel.sha256,
                                   PackageURL("pypi", name="wasmtime", version=plan.wasmtime.version),
                                   description="wasmtime's Python package in the toolchain image (not used to build)")
        runner = sbom.component(sbom.ComponentType.APPLICATION, "wasmtime-cli", cli.version, archive.sha256,
                                PackageURL("github", "bytecodealliance", "wasmtime", f"v{cli.version}"),
                                description=f"the toolchain image's wasmtime: the host runner, the smoke run's"
                                            f"{' and `wasmtime wizer`' if plan.flavour and plan.flavour.snapshot else ''};"
                                            f" from {archive.file}")
        return [*self._sdk_tools(plan, lock), embedding, runner]

    def _sdk_tools(self, plan: Plan, lock: dict) -> list:
        if plan.provider == "debian":
            packages = sbom.debian_packages(lock, "toolchain")
            return [sbom.deb(packages[name]) for name in sorted(plan.toolchain.packages)]
        tarball = plan.sdk_tarball
        return [sbom.component(sbom.ComponentType.APPLICATION, "wasi-sdk", str(plan.sdk), tarball.sha256,
                               PackageURL("github", "WebAssembly", "wasi-sdk", f"wasi-sdk-{plan.sdk}"),
                               description=tarball.file)]
