"""Building: the phases of one build, in order, as in CPython's Tools/wasm.

    fetch          every pinned input into the cache, verified
    source         the CPython tarball unpacked (a store product)
    images         base, native, toolchain (see images.py)
    build-python   stage one: a native CPython of the same version
                   (configure-build-python, make-build-python)
    host           stage two: python.wasm cross-compiled with it
                   (configure-host, make-host)
    package        python.wasm + compiled stdlib as a deterministic tarball, and
                   the debug artifact (python.wasm's DWARF, the stdlib's sources)
    smoke          the packaged interpreter runs: python.wasm under wasmtime,
                   or python.js under the toolchain image's Node
    publish        into dist/: the tarballs, the SLSA provenance and CycloneDX
                   SBOM, SHA256SUMS; then the lockfile into lockfiles/

Stages are store products named by the hash of their inputs, so an unchanged
stage is found instead of rebuilt, and the build python, which depends on the
source and the native image only, is shared by every SDK and provider.
Nothing is written to dist/ or lockfiles/ before every phase has succeeded.
"""

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from . import images, provenance, sbom
from .archives import check_archive, safe_extract
from .drivers import BUILD_PYTHON_PHASES, HOST_PHASES, Driver, check_extra_configure_args, plan_driver
from .errors import BuildError
from .executor import Bind, remove_leftover_containers, remove_stopped_containers, run_phase
from .fetch import Fetcher
from .lock import (
    describe_base,
    describe_build,
    describe_image,
    describe_pin,
    describe_recipes,
    lockfile_path,
    with_test_results,
    write_lock,
)
from .package import sha256_path, write_atomically
from .paths import CONTAINER_OUTPUT, CONTAINER_SOURCE, CONTAINER_TOOLS, PACKAGE_DIR, Workspace, display_path
from .progress import Reporter
from .recipes import Plan
from .smoke import RUNTIMES, smoke, summary
from .store import Product, Store, record_timings
from .verify import check_checksums_file, record_checksums


@dataclass(frozen=True)
class Products:
    """What the phases up to packaging made (or found in the store)."""

    base: images.BaseImage
    source: Product
    build_python: Product
    host: Product
    package: Product
    tarball: Path  # the artifact, inside the package product

    @property
    def debug_tarball(self) -> Path | None:
        """The debug artifact (python.debug.wasm, the stdlib's sources), where python.wasm had DWARF to split off."""
        path = self.tarball.with_name(self.tarball.name.replace(".tar.gz", ".debug.tar.gz"))
        return path if path.is_file() else None

    @property
    def tarballs(self) -> list[Path]:
        return [self.tarball, *filter(None, [self.debug_tarball])]


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
                 configure_args=(), client=None, fresh_images=False):
        self.plan = plan
        # Bootstrap the base and build the images again even if their tags exist
        # (a rebuild that checks them); the store decides the rest.
        self.fresh_images = fresh_images
        self.workspace = workspace
        self.reporter = reporter
        self.driver = plan_driver(plan)
        self.configure_args = tuple(configure_args)
        check_extra_configure_args(self.configure_args)
        self.driver.check_configure_args(self.configure_host_args)
        self.client = client or images.connect()
        self.fetcher = Fetcher(workspace.cache_dir, mirrors, reporter)
        self.store = Store(workspace.store_dir, workspace.locks_dir, workspace.logs_dir)
        self.native = images.native_spec(plan)
        self.toolchain = images.toolchain_spec(plan, self.fetcher.cached_path)
        self._products: Products | None = None

    @property
    def environment(self) -> dict[str, str]:
        return build_environment(self.plan)

    def products(self) -> Products:
        """Every phase up to packaging (once per Build); what `invoke test` and `invoke bench` start from."""
        if self._products is None:
            self._products = self._realise()
        return self._products

    def _realise(self) -> Products:
        for warning in self.plan.warnings():
            self.reporter.warn(warning)
        # Of builds killed, or cut off by the engine, before they removed them.
        stopped = remove_stopped_containers(self.client)
        if stopped:
            self.reporter.warn(f"removed {stopped} stopped container(s) left by an earlier build that was killed")
        files = self.fetch()
        source = self.source(files[self.plan.release.source.sha256])
        base = self.ensure_images()
        build_python = self.build_python(source)
        host = self.host(source, build_python)
        package = self.package(source, build_python, host)
        return Products(base, source, build_python, host, package, package.path / f"{self.plan.artifact_name}.tar.gz")

    def run(self) -> BuildResult:
        start = time.monotonic()
        products = self.products()
        with self.reporter.phase("smoke", RUNTIMES[self.plan.target]) as phase:
            node = (self.client, self.toolchain.tag, self.workspace.logs_dir / f"smoke-{self.plan.artifact_name}.log")
            report = smoke(products.tarball, self.plan.release.version, self.plan.target, node)
            phase.outcome = summary(report)
        lock = self.lock(products)
        attestations = self.attest(lock)
        with self.reporter.phase("publish") as phase:
            dist = self.workspace.dist_dir
            check_checksums_file(dist)  # before any file is replaced: a refused SHA256SUMS leaves dist/ as it was
            artifact, *debug = [write_atomically(dist / tarball.name, tarball) for tarball in products.tarballs]
            written = [*debug, *(write_atomically(dist / name, document) for name, document in attestations.items())]
            record_checksums(dist, [artifact, *written])
            lockfile = lockfile_path(self.workspace.lock_dir, self.plan.artifact_name)
            write_lock(lockfile, with_test_results(lock, lockfile))
            phase.outcome = f"{len(written) + 1} files and SHA256SUMS in {display_path(dist)}"
        timings = dict(self.reporter.timings)
        # The last build of this artifact, phase by phase (a no-op build finds everything: `invoke bench`).
        record_timings(self.workspace.logs_dir / "builds" / self.plan.artifact_name, timings, time.monotonic() - start)
        return BuildResult(self.plan, artifact, lockfile, lock, report, timings)

    def fetch(self) -> dict[str, Path]:
        with self.reporter.phase("fetch", f"{len(self.plan.inputs)} pinned inputs") as phase:
            files = self.fetcher.fetch_all(self.plan.inputs)
            cached = sum(origin == "cache" for origin in self.fetcher.origins.values())
            phase.outcome = f"{cached} from the cache, {len(files) - cached} fetched and verified"
        if self.plan.sdk_tarball:
            # Unpacked by tar inside the image build: its members are checked here first.
            with self.reporter.phase("check", self.plan.sdk_tarball.file) as phase:
                members = check_archive(files[self.plan.sdk_tarball.sha256], strip_components=1)
                phase.outcome = f"{members} members, none absolute, escaping or special"
        return files

    def source(self, tarball: Path) -> Product:
        """The unpacked source, with what the build helper would create in it.

        The source is mounted read-only, so the helper's output directories (mount
        points) and its Modules/Setup.local are created here, once.
        """
        release, driver = self.plan.release, self.driver
        inputs = {"source": release.source.sha256, "mount_points": [driver.build_python_dir, driver.host_dir],
                  "setup_local": driver.setup_local}

        def unpack(directory: Path, log_dir: Path) -> None:
            safe_extract(tarball, directory, strip_components=1)
            for mount_point in (driver.build_python_dir, driver.host_dir):
                (directory / mount_point).mkdir(parents=True)
            (directory / "Modules" / "Setup.local").write_text(driver.setup_local)

        with self.reporter.phase("source", release.source.file) as phase:
            product = self.store.realise(f"cpython-{release.version}-source", inputs, unpack)
            phase.outcome = self._outcome(product)
        return product

    def ensure_images(self) -> images.BaseImage:
        plan = self.plan
        origin = plan.base.image or f"Debian {plan.base.suite} from {plan.base.mirror}"
        with self.reporter.phase("image base", origin) as phase:
            base = images.ensure_base(self.client, plan, self.store, fresh=self.fresh_images)
            phase.outcome = f"{'reused' if base.reused else 'made'} {base.tag}"
        for spec in (self.native, self.toolchain):
            with self.reporter.phase(f"image {spec.name}") as phase:
                reused = images.ensure_image(self.client, spec, self.store, plan.base.mirror, fresh=self.fresh_images)
                phase.outcome = f"{'reused' if reused else 'built'} {spec.tag}"
        return base

    def _stage(self, stage: str, product_name: str, image: str, phases: dict[str, list[str]], binds,
               output_mount: str, inputs: dict, expected: str, environment: dict[str, str] | None = None) -> Product:
        """Realise a product by running its phases in containers, its directory mounted at `output_mount`.

        `expected` is a file the phases must have made in it: a helper that wrote
        its output elsewhere fails here, not in a later stage."""

        def abandoned(directory: Path) -> None:
            # A killed build of this product left its directory, and maybe its container still writing there.
            removed = remove_leftover_containers(self.client, directory)
            if removed:
                self.reporter.warn(f"{stage}: removed {removed} container(s) left by an earlier build that was killed")

        def build(directory: Path, log_dir: Path) -> None:
            timings = {}
            for phase, command in phases.items():
                start = time.monotonic()
                with self.reporter.phase(stage if phase == stage else f"{stage}: {phase}"):
                    run_phase(self.client, image, phase, command,
                              [*binds, Bind(directory, output_mount, writable=True)],
                              environment or self.environment, log_dir / f"{phase}.log",
                              workdir=self.driver.workdir(phase))
                timings[phase] = time.monotonic() - start
            if not (directory / expected).is_file():
                raise BuildError(
                    f"Stage {stage} finished but made no {expected} in {output_mount}; its logs are in "
                    f"{display_path(log_dir)}. The build helper may write elsewhere for this version (see "
                    f"cpython_wasm/drivers.py)."
                )
            return timings  # kept with the product's logs (store.TIMINGS)

        product = self.store.realise(product_name, inputs, build, abandoned=abandoned)
        if product.reused:
            self.reporter.info(f"[bold green]✓[/] [bold]{stage}[/]: {self._outcome(product)}")
        return product

    def build_python_inputs(self) -> dict:
        """What determines the build python: no WASI SDK, so every SDK and provider shares it."""
        return {"source": self.plan.release.source.sha256, "image": self.native.tag,
                "commands": [self.driver.command(phase) for phase in BUILD_PYTHON_PHASES],
                "environment": self.environment}

    def build_python(self, source: Product) -> Product:
        driver = self.driver
        return self._stage(
            "build-python", f"build-python-{self.plan.release.version}", self.native.tag,
            {phase: driver.command(phase) for phase in BUILD_PYTHON_PHASES},
            [Bind(source.path, CONTAINER_SOURCE)], driver.path(driver.build_python_dir),
            self.build_python_inputs(), expected="python",
        )

    @property
    def configure_host_args(self) -> list[str]:
        return [*self.plan.support.configure_host_args, *self.configure_args]

    def host_commands(self) -> dict[str, list[str]]:
        return {phase: self.driver.command(phase, self.configure_host_args) for phase in HOST_PHASES}

    @property
    def host_environment(self) -> dict[str, str]:
        return host_environment(self.plan, self.driver)

    def host_inputs(self, build_python_identity: str) -> dict:
        return {"build_python": build_python_identity, "image": self.toolchain.tag,
                "commands": list(self.host_commands().values()), "environment": self.host_environment}

    def host(self, source: Product, build_python: Product) -> Product:
        driver = self.driver
        return self._stage(
            "host", f"host-{self.plan.artifact_name}", self.toolchain.tag, self.host_commands(),
            [Bind(source.path, CONTAINER_SOURCE), Bind(build_python.path, driver.path(driver.build_python_dir))],
            driver.path(driver.host_dir), self.host_inputs(build_python.identity), expected="python.wasm",
            environment=self.host_environment,
        )

    def package(self, source: Product, build_python: Product, host: Product) -> Product:
        plan = self.plan
        script = PACKAGE_DIR / "package.py"
        inputs = {"host": host.identity, "build_python": build_python.identity, "image": self.native.tag,
                  "package.py": sha256_path(script), "artifact": plan.artifact_name,
                  "exclude": list(plan.python.package.exclude), "environment": self.environment}
        driver = self.driver
        command = ["python3", f"{CONTAINER_TOOLS}/package.py", "--artifact", plan.artifact_name,
                   "--line", plan.python.line, "--target", plan.target, "--source", CONTAINER_SOURCE,
                   "--host-build", driver.path(driver.host_dir), "--build-python", driver.build_python,
                   "--mtime", str(plan.release.source_date_epoch), "--output", CONTAINER_OUTPUT,
                   *(f"--exclude={name}" for name in plan.python.package.exclude)]
        return self._stage(
            "package", f"package-{plan.artifact_name}", self.native.tag, {"package": command},
            [Bind(source.path, CONTAINER_SOURCE), Bind(build_python.path, driver.path(driver.build_python_dir)),
             Bind(host.path, driver.path(driver.host_dir)), Bind(script, f"{CONTAINER_TOOLS}/package.py")],
            CONTAINER_OUTPUT, inputs, expected=f"{plan.artifact_name}.tar.gz",
        )

    def lock(self, products: Products) -> dict:
        plan, base, package = self.plan, products.base, products.package
        manifest = package.path / "manifest.json"
        wasm = _manifest_entry(manifest, "python.wasm")
        return {
            "artifact": plan.artifact_name,
            "build": describe_build(plan, self.configure_host_args, self.host_environment),
            "recipes": describe_recipes(plan),
            "base": describe_base(plan, base.tag, base.rootfs_sha256),
            "images": {"native": describe_image(self.native, images.read_inventory(self.client, self.native.tag)),
                       "toolchain": describe_image(self.toolchain, images.read_inventory(self.client, self.toolchain.tag))},
            "inputs": [describe_pin(pin) for pin in plan.inputs],
            "products": {"build-python": products.build_python.identity, "host": products.host.identity,
                         "package": package.identity},
            "outputs": {
                **{path.name: {"sha256": sha256_path(path), "size": path.stat().st_size} for path in products.tarballs},
                "python.wasm": wasm,
                "manifest.json": {"sha256": sha256_path(manifest), "size": manifest.stat().st_size},
            },
        }

    def attest(self, lock: dict) -> dict[str, bytes]:
        """The provenance statement and the SBOM, made from the lockfile; their hashes join its outputs."""
        name = self.plan.artifact_name
        documents = {provenance.provenance_name(name): provenance.encode(provenance.statement(lock)),
                     sbom.sbom_name(name): sbom.encode(sbom.bom(self.plan, lock))}
        for file_name, document in documents.items():
            lock["outputs"][file_name] = {"sha256": hashlib.sha256(document).hexdigest(), "size": len(document)}
        return documents

    def _outcome(self, product: Product) -> str:
        return f"{'reused' if product.reused else 'built'} {display_path(product.path)}"


def build_environment(plan: Plan) -> dict[str, str]:
    """The environment of every compile stage."""
    # Derived from the recipe, never from the clock or git: clang uses it for
    # __DATE__/__TIME__, and wasi.py would otherwise ask git.
    return {"SOURCE_DATE_EPOCH": str(plan.release.source_date_epoch)}


def toolchain_environment(plan: Plan, driver: Driver) -> dict[str, str]:
    """Where emcc keeps its cache of system libraries: never written in the image.

    A frozen cache that the toolchain ships prebuilt is only read; otherwise
    emcc builds what it needs into the host product's directory."""
    if plan.target != "emscripten" or plan.frozen_cache:
        return {}
    return {"EM_CACHE": driver.path(f"{driver.host_dir}/emscripten-cache")}


def host_environment(plan: Plan, driver: Driver) -> dict[str, str]:
    """The environment of the host stage (what the lockfile's build.host_environment records)."""
    return {**plan.support.host_environment, **driver.host_environment, **toolchain_environment(plan, driver),
            **build_environment(plan)}


def _manifest_entry(manifest: Path, name: str) -> dict:
    return json.loads(manifest.read_text(encoding="utf-8"))["files"][name]
