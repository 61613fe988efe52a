"""Building: the phases of one build, in order, as in CPython's Tools/wasm.

    fetch          every pinned input into the cache, verified
    source         the CPython tarball unpacked (a store product)
    images         base, native, toolchain (see images.py)
    build-python   stage one: a native CPython of the same version
                   (configure-build-python, make-build-python)
    host           stage two: python.wasm cross-compiled with it
                   (configure-host, make-host)
    package        python.wasm + compiled stdlib as a deterministic tarball
    smoke          the packaged python.wasm runs under wasmtime
    publish        the tarball into dist/, the lockfile into lockfiles/

Stages are store products named by the hash of their inputs, so an unchanged
stage is found instead of rebuilt, and the build python, which depends on the
source and the native image only, is shared by every SDK and provider.
Nothing is written to dist/ or lockfiles/ before every phase has succeeded.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from . import images
from .archives import safe_extract
from .executor import Bind, run_phase
from .fetch import Fetcher
from .lock import describe_image, describe_pin, lockfile_path, write_lock
from .package import sha256_path, write_atomically
from .paths import (
    CONTAINER_BUILD_PYTHON,
    CONTAINER_CROSS_BUILD,
    CONTAINER_OUTPUT,
    CONTAINER_SOURCE,
    CONTAINER_TOOLS,
    PACKAGE_DIR,
    Workspace,
    display_path,
)
from .progress import Reporter
from .recipes import Plan
from .smoke import smoke, summary
from .store import Product, Store

# CPython's --host-runner: how the build runs python.wasm inside the toolchain
# image (wasi.py fills in the {placeholders}).
HOST_RUNNER = (f"python3 {CONTAINER_TOOLS}/runtime.py --dir {{HOST_DIR}}::{{GUEST_DIR}} "
               f"--env {{ENV_VAR_NAME}}={{ENV_VAR_VALUE}}")


@dataclass
class BuildResult:
    plan: Plan
    artifact: Path
    lockfile: Path
    lock: dict
    smoke_report: dict
    timings: dict[str, float]


class Build:
    """One build of one plan; each method is one phase."""

    def __init__(self, plan: Plan, workspace: Workspace, reporter: Reporter, mirrors=(),
                 configure_args=(), client=None):
        self.plan = plan
        self.workspace = workspace
        self.reporter = reporter
        self.configure_args = tuple(configure_args)
        self.client = client or images.connect()
        self.fetcher = Fetcher(workspace.cache_dir, mirrors, reporter)
        self.store = Store(workspace.store_dir, workspace.locks_dir, workspace.logs_dir)
        self.native = images.native_spec(plan)
        self.toolchain = images.toolchain_spec(plan, self.fetcher.cached_path)

    @property
    def environment(self) -> dict[str, str]:
        # Derived from the recipe, never from the clock or git: clang uses it for
        # __DATE__/__TIME__, and wasi.py would otherwise ask git.
        return {"SOURCE_DATE_EPOCH": str(self.plan.python.source_date_epoch)}

    def run(self) -> BuildResult:
        for warning in self.plan.warnings():
            self.reporter.warn(warning)
        files = self.fetch()
        source = self.source(files[self.plan.python.source.sha256])
        base = self.ensure_images()
        build_python = self.build_python(source)
        host = self.host(source, build_python)
        package = self.package(source, build_python, host)
        tarball = package.path / f"{self.plan.artifact_name}.tar.gz"
        with self.reporter.phase("smoke", "python.wasm under wasmtime") as phase:
            report = smoke(tarball, self.plan.python.version)
            phase.outcome = summary(report)
        lock = self.lock(base, build_python, host, package)
        with self.reporter.phase("publish"):
            artifact = write_atomically(self.workspace.dist_dir / tarball.name, tarball)
            lockfile = write_lock(lockfile_path(self.workspace.lock_dir, self.plan.artifact_name), lock)
        return BuildResult(self.plan, artifact, lockfile, lock, report, dict(self.reporter.timings))

    def fetch(self) -> dict[str, Path]:
        with self.reporter.phase("fetch", f"{len(self.plan.inputs)} pinned inputs") as phase:
            files = self.fetcher.fetch_all(self.plan.inputs)
            cached = sum(origin == "cache" for origin in self.fetcher.origins.values())
            phase.outcome = f"{cached} from the cache, {len(files) - cached} fetched and verified"
        return files

    def source(self, tarball: Path) -> Product:
        """The unpacked source, with the directories the container stages mount onto.

        The source is mounted read-only, so what Tools/wasm/wasi.py would create in
        it (the cross-build/ mount points and an empty Modules/Setup.local) is
        created here, once.
        """
        python = self.plan.python
        inputs = {"source": python.source.sha256, "host_triple": python.wasi.host_triple}

        def unpack(directory: Path, log_dir: Path) -> None:
            safe_extract(tarball, directory, strip_components=1)
            for mount_point in ("build", python.wasi.host_triple):
                (directory / "cross-build" / mount_point).mkdir(parents=True)
            (directory / "Modules" / "Setup.local").write_text(f"# Generated by {python.wasi.helper}\n")

        with self.reporter.phase("source", python.source.file) as phase:
            product = self.store.realise(f"cpython-{python.version}-source", inputs, unpack)
            phase.outcome = self._outcome(product)
        return product

    def ensure_images(self) -> images.BaseImage:
        plan = self.plan
        origin = plan.base.image or f"Debian {plan.base.suite} from {plan.base.mirror}"
        with self.reporter.phase("image base", origin) as phase:
            base = images.ensure_base(self.client, plan, self.store)
            phase.outcome = f"{'reused' if base.reused else 'made'} {base.tag}"
        for spec in (self.native, self.toolchain):
            with self.reporter.phase(f"image {spec.name}") as phase:
                reused = images.ensure_image(self.client, spec, self.store, plan.base.mirror)
                phase.outcome = f"{'reused' if reused else 'built'} {spec.tag}"
        return base

    def _stage(self, stage: str, product_name: str, image: str, phases: dict[str, list[str]], binds,
               output_mount: str, inputs: dict) -> Product:
        """Realise a product by running its phases in containers, its directory mounted at `output_mount`."""

        def build(directory: Path, log_dir: Path) -> None:
            for phase, command in phases.items():
                with self.reporter.phase(stage if phase == stage else f"{stage}: {phase}"):
                    run_phase(self.client, image, phase, command,
                              [*binds, Bind(directory, output_mount, writable=True)],
                              self.environment, log_dir / f"{phase}.log")

        product = self.store.realise(product_name, inputs, build)
        if product.reused:
            self.reporter.info(f"[bold green]✓[/] [bold]{stage}[/]: {self._outcome(product)}")
        return product

    def _helper(self, *args: str) -> list[str]:
        return ["python3", f"{CONTAINER_SOURCE}/{self.plan.python.wasi.helper}", *args]

    def build_python_inputs(self) -> dict:
        """What determines the build python: no WASI SDK, so every SDK and provider shares it."""
        return {"source": self.plan.python.source.sha256, "image": self.native.tag,
                "helper": self.plan.python.wasi.helper, "environment": self.environment}

    def build_python(self, source: Product) -> Product:
        return self._stage(
            "build-python", f"build-python-{self.plan.python.version}", self.native.tag,
            {"configure-build-python": self._helper("configure-build-python"),
             "make-build-python": self._helper("make-build-python")},
            [Bind(source.path, CONTAINER_SOURCE)], CONTAINER_BUILD_PYTHON, self.build_python_inputs(),
        )

    @property
    def configure_host_args(self) -> list[str]:
        return [*self.plan.python.wasi.configure_host_args, *self.configure_args]

    def host_inputs(self, build_python_identity: str) -> dict:
        # The runner script is mounted but not part of the identity: it only runs
        # the finished python.wasm for wasi.py's final `--version` check, and does
        # not shape the output (its command line, which is recorded, does).
        wasi = self.plan.python.wasi
        return {"build_python": build_python_identity, "image": self.toolchain.tag, "helper": wasi.helper,
                "host_triple": wasi.host_triple, "configure_args": self.configure_host_args,
                "host_runner": HOST_RUNNER, "environment": self.environment}

    def host(self, source: Product, build_python: Product) -> Product:
        wasi = self.plan.python.wasi
        return self._stage(
            "host", f"host-{self.plan.artifact_name}", self.toolchain.tag,
            {"configure-host": self._helper("configure-host", "--host-runner", HOST_RUNNER, "--",
                                            *self.configure_host_args),
             "make-host": self._helper("make-host")},
            [Bind(source.path, CONTAINER_SOURCE),
             Bind(build_python.path, CONTAINER_BUILD_PYTHON),
             Bind(PACKAGE_DIR / "runtime.py", f"{CONTAINER_TOOLS}/runtime.py")],
            f"{CONTAINER_CROSS_BUILD}/{wasi.host_triple}", self.host_inputs(build_python.identity),
        )

    def package(self, source: Product, build_python: Product, host: Product) -> Product:
        plan = self.plan
        script = PACKAGE_DIR / "package.py"
        inputs = {"host": host.identity, "build_python": build_python.identity, "image": self.native.tag,
                  "package.py": sha256_path(script), "artifact": plan.artifact_name,
                  "exclude": list(plan.python.package.exclude), "environment": self.environment}
        host_build = f"{CONTAINER_CROSS_BUILD}/{plan.python.wasi.host_triple}"
        command = ["python3", f"{CONTAINER_TOOLS}/package.py", "--artifact", plan.artifact_name,
                   "--line", plan.python.line, "--source", CONTAINER_SOURCE, "--host-build", host_build,
                   "--build-python", f"{CONTAINER_BUILD_PYTHON}/python",
                   "--mtime", str(plan.python.source_date_epoch), "--output", CONTAINER_OUTPUT,
                   *(f"--exclude={name}" for name in plan.python.package.exclude)]
        return self._stage(
            "package", f"package-{plan.artifact_name}", self.native.tag, {"package": command},
            [Bind(source.path, CONTAINER_SOURCE), Bind(build_python.path, CONTAINER_BUILD_PYTHON),
             Bind(host.path, host_build), Bind(script, f"{CONTAINER_TOOLS}/package.py")],
            CONTAINER_OUTPUT, inputs,
        )

    def lock(self, base: images.BaseImage, build_python: Product, host: Product, package: Product) -> dict:
        plan = self.plan
        tarball = package.path / f"{plan.artifact_name}.tar.gz"
        manifest = package.path / "manifest.json"
        wasm = _manifest_entry(manifest, "python.wasm")
        return {
            "artifact": plan.artifact_name,
            "build": {
                "python": plan.python.version, "target": plan.python.wasi.host_triple, "wasi_sdk": plan.sdk,
                "provider": plan.provider, "official_pairing": plan.official, "host_arch": plan.arch,
                "source_date_epoch": plan.python.source_date_epoch,
                "configure_host_args": self.configure_host_args,
            },
            "recipes": {display_path(path): sha256_path(path) for path in plan.recipe_paths.values()},
            "base": {"name": plan.base_name, "suite": plan.base.suite, "variant": plan.base.variant,
                     "mirror": plan.base.mirror, "source_date_epoch": plan.base.source_date_epoch,
                     "rootfs_sha256": base.rootfs_sha256, "image": base.tag},
            "images": {"native": describe_image(self.native, images.read_inventory(self.client, self.native.tag)),
                       "toolchain": describe_image(self.toolchain, images.read_inventory(self.client, self.toolchain.tag))},
            "inputs": [describe_pin(pin) for pin in plan.inputs],
            "products": {"build-python": build_python.identity, "host": host.identity, "package": package.identity},
            "outputs": {
                tarball.name: {"sha256": sha256_path(tarball), "size": tarball.stat().st_size},
                "python.wasm": wasm,
                "manifest.json": {"sha256": sha256_path(manifest), "size": manifest.stat().st_size},
            },
        }

    def _outcome(self, product: Product) -> str:
        return f"{'reused' if product.reused else 'built'} {display_path(product.path)}"


def _manifest_entry(manifest: Path, name: str) -> dict:
    return json.loads(manifest.read_text(encoding="utf-8"))["files"][name]
