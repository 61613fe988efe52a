"""Building: the phases of one build, in order, as in CPython's Tools/wasm.

    fetch          every pinned input into the cache, verified
    images         base, native, toolchain (stages/images.py)
    stages         what the plan's target (targets/) makes of it, each realised
                   by the store through the executor (stages/):
                   source, build-python, libraries, host, devkit, package; a custom
                   interpreter's extensions and its relinked python.wasm (targets/extensions.py);
                   a flavour's stock package and its own stage (targets/flavours.py)
    smoke          the packaged interpreter runs on the target's runtime
    publish        into dist/: the tarballs, the SLSA provenance and CycloneDX
                   SBOM, SHA256SUMS; then the lockfile into lockfiles/

Stages are store products named by the hash of their whole value, so an
unchanged stage is found instead of rebuilt, and the build python, which
depends on the source and the native image only, is shared by every SDK and
provider. Nothing is written to dist/ or lockfiles/ before every phase has
succeeded.
"""

import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape

from cpython_wasm.errors import UserError
from cpython_wasm.files import write_atomically
from cpython_wasm.inputs import tools
from cpython_wasm.inputs.archives import check_archive
from cpython_wasm.inputs.fetch import Fetcher
from cpython_wasm.paths import Workspace, display_path
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.artifacts import COMPANION_SUFFIXES, companion_name
from cpython_wasm.recipes.plan import Plan
from cpython_wasm.records import lock as lockfiles
from cpython_wasm.records import provenance, sbom
from cpython_wasm.records.verify import check_checksums_file, record_checksums
from cpython_wasm.stages import images
from cpython_wasm.stages.executor import DockerExecutor, Executor
from cpython_wasm.stages.store import Product, Store, image_key, record_timings
from cpython_wasm.targets import extensions, pgo, source_stage, target_of
from cpython_wasm.targets.drivers import check_extra_configure_args
from cpython_wasm.targets.target import BuildStages
from cpython_wasm.tools.smoke import summary


@dataclass(frozen=True)
class Products:
    """What the stages up to packaging made (or found in the store)."""

    base: images.BaseImage
    by_key: dict[str, Product]  # each stage's product, by its key (BuildStages.by_key), in the order they ran
    tarball: Path  # the artifact, inside the package product
    # The lockfile's `products`: each stage's identity, but the source's (an input, locked by its hash); also of
    # the stages a substituted profile made unnecessary (pgo.py).
    locked: dict[str, str]

    source = property(lambda self: self.by_key["source"])
    build_python = property(lambda self: self.by_key["build-python"])
    host = property(lambda self: self.by_key["host"])
    package = property(lambda self: self.by_key["package"])

    @property
    def profile(self) -> Path | None:
        """The profile python.wasm was built with, for a profile-guided build (pgo.py)."""
        product = self.by_key.get(pgo.PROFILE_KEY)
        return pgo.profile_file(product.path) if product else None

    @property
    def tarballs(self) -> list[Path]:
        """The artifact, then its companions (the debug artifact where python.wasm had DWARF to split off, the
        devkit where the target has one)."""
        companions = (self.tarball.with_name(companion_name(self.tarball.name, suffix)) for suffix in COMPANION_SUFFIXES)
        return [self.tarball, *filter(Path.is_file, companions)]


@dataclass
class BuildResult:
    plan: Plan
    artifact: Path
    lockfile: Path
    lock: dict
    smoke_report: dict
    timings: dict[str, float]


class Build:
    """One build of one plan; each method is one phase. The executor (stages/executor.py) runs its stages:
    Docker's unless another is given (a RecordingExecutor runs nothing)."""

    def __init__(self, plan: Plan, workspace: Workspace, reporter: Reporter, mirrors=(),
                 configure_args=(), executor: Executor | None = None, fresh_images=False,
                 locked_images: dict[str, str] | None = None, published_profile: pgo.PublishedProfile | None = None):
        self.plan = plan
        self.target = target_of(plan)
        # Bootstrap the base and build the images again even if their tags exist
        # (a rebuild that checks them); the store decides the rest.
        self.fresh_images = fresh_images
        self.workspace = workspace
        self.reporter = reporter
        self.driver = self.target.driver(plan)
        self.configure_args = tuple(configure_args)
        check_extra_configure_args(self.configure_args)
        self.driver.check_configure_args(self.configure_host_args)
        extensions.check_target(plan, self.target.has_devkit)
        self.executor = executor or DockerExecutor(Store.of(workspace), reporter)
        self.store = self.executor.store
        self.fetcher = Fetcher(workspace.cache_dir, mirrors, reporter)
        self.native = images.native_spec(plan)
        self.toolchain = self.target.toolchain_spec(plan, self.fetcher.cached_path, self.store)
        self._products: Products | None = None
        self.image_contents: dict[str, images.ImageContent] = {}  # by the lockfile's image key, once ensured
        # Image IDs by key, where a lockfile says them before the images are ensured (a dry run, a check of the
        # stages a lockfile names); what ensure_images finds or builds comes first.
        self.locked_images = dict(locked_images or {})
        # A rebuild's: the profile a profile-guided build published, put in the store instead of training (pgo.py).
        self.published_profile = published_profile

    @property
    def configure_host_args(self) -> list[str]:
        """The recipes' arguments for the host `configure` (the line's and its flavour's), then the extra ones."""
        return [*self.plan.configure_host_args, *self.configure_args]

    @property
    def host_environment(self) -> dict[str, str]:
        return self.target.host_environment(self.plan, self.driver)

    def stages(self) -> BuildStages:
        """The build's stages, with their identities: nothing is fetched, built or run to know them, once the
        content of the images is known (stage_images)."""
        plan = self.plan
        source = source_stage(plan, self.fetcher.cached_path(plan.release.source))
        native, toolchain = self.stage_images()
        return self.target.stages(plan, native, toolchain, self.configure_host_args, source, self.fetcher.cached_path)

    def read_locked_images(self) -> None:
        """Take the images' content from this artifact's lockfile where it records images of the same tags (what
        they were when it was built): a dry run then needs no engine."""
        path = lockfiles.lockfile_path(self.workspace.lock_dir, self.plan.artifact_name)
        locked = lockfiles.read_lock(path).get("images", {}) if path.is_file() else {}
        for key, spec in (("native", self.native), ("toolchain", self.toolchain)):
            if locked.get(key, {}).get("tag") == spec.tag:
                self.locked_images[key] = locked[key]["id"]

    def stage_images(self) -> tuple[images.StageImage, images.StageImage]:
        """The native and toolchain images by their content, as the stages name them: as this build ensured them,
        else as given (a lockfile's), else as the engine has them; refused if none of those knows one."""
        found = []
        for key, spec in (("native", self.native), ("toolchain", self.toolchain)):
            content = self.image_contents.get(key)
            image_id = content.id if content else self.locked_images.get(key)
            if image_id is None:
                content = self.executor.image_content(spec.tag)
                if content is None:
                    raise UserError(f"Image {spec.tag} is not built, and the stages of {self.plan.artifact_name} are "
                                    f"named by the content of the images they run in. Build it (`invoke build` with "
                                    f"the same options), or import it (`invoke image-import`), then ask again.")
                image_id = content.id
            found.append(images.StageImage(spec, image_id))
        return found[0], found[1]

    def products(self) -> Products:
        """Every phase up to packaging (once per Build); what `invoke test` and `invoke bench` start from."""
        if self._products is None:
            self._products = self._realise()
        return self._products

    def _realise(self) -> Products:
        for warning in self.plan.warnings():
            self.reporter.warn(warning)
        # Of builds killed, or cut off by the engine, before they removed them.
        stopped = self.executor.remove_stopped()
        if stopped:
            self.reporter.warn(f"removed {stopped} stopped container(s) left by an earlier build that was killed")
        files = self.fetch()
        extensions.check_names(self.plan, files[self.plan.release.source.sha256])
        self.realise_tools()  # a file of the toolchain image's build context
        base = self.ensure_images()
        realised, identities = self.realise_stages()
        return Products(base, realised, realised["package"].path / f"{self.plan.artifact_name}.tar.gz", identities)

    def realise_stages(self) -> tuple[dict[str, Product], dict[str, str]]:
        """Each stage's product, by key, in order; and each stage's identity, but the source's (Products.locked)."""
        stages = self.stages()
        profile = stages.training.get(pgo.PROFILE_KEY)
        substituted = {pgo.PROFILE_KEY: self.substitute_profile(profile)} if profile and self.published_profile else {}
        # What only the profile needs is not built where the profile is in the store already.
        unneeded = pgo.MADE_FOR_THE_PROFILE if profile and self.store.path(profile).is_dir() else ()
        realised = {key: substituted.get(key) or self.executor.realise(stage)
                    for key, stage in stages.by_key().items() if key not in unneeded}
        return realised, {key: stage.identity for key, stage in stages.by_key().items() if key != "source"}

    def substitute_profile(self, stage) -> Product:
        """The published profile as the profile stage's product, once its content is the one the lockfile names (a
        rebuild's: pgo.py says why)."""
        published = self.published_profile
        with self.reporter.phase("profile", f"substituted from {escape(display_path(published.path))}") as phase:
            published.check()
            product = self.store.realise(stage, lambda directory, log_dir: shutil.copyfile(
                published.path, pgo.profile_file(directory)))
            phase.outcome = (f"sha256 {published.sha256[:16]}…, the lockfile's"
                             f"{' (in the store already)' if product.reused else ''}")
        return product

    def run(self) -> BuildResult:
        start = time.monotonic()
        products = self.products()
        with self.reporter.phase("smoke", self.target.runtime_of(self.plan)) as phase:
            report = self.target.smoke(products.tarball, self.plan.release.version, self.executor, self.stage_images()[1].id,
                                       self.workspace.logs_dir / f"smoke-{self.plan.artifact_name}.log",
                                       self.workspace.runtime_cache_dir, self.plan.modules, self.plan.extensions, self.plan.smoke_programs)
            phase.outcome = summary(report)
        lock, attestations = self.attest(self.lock(products))
        with self.reporter.phase("publish") as phase:
            dist = self.workspace.dist_dir
            check_checksums_file(dist)  # before any file is replaced: a refused SHA256SUMS leaves dist/ as it was
            artifact, *companions = [write_atomically(dist / tarball.name, tarball) for tarball in products.tarballs]
            written = [*companions, *(write_atomically(dist / name, document) for name, document in attestations.items())]
            lockfile = lockfiles.lockfile_path(self.workspace.lock_dir, self.plan.artifact_name)
            if products.profile:  # what a rebuild needs besides the recipes: beside the artifact and the lockfile
                name = lock.build.pgo.file
                written.append(write_atomically(dist / name, products.profile))
                write_atomically(lockfiles.profile_path(lockfile, name), products.profile)
            record_checksums(dist, [artifact, *written])
            lockfiles.write_lock(lockfile, lockfiles.with_test_results(lock, lockfile))
            phase.outcome = f"{len(written) + 1} files and SHA256SUMS in {display_path(dist)}"
        timings = dict(self.reporter.timings)
        # The last build of this artifact, phase by phase (a no-op build finds everything: `invoke bench`).
        record_timings(self.workspace.logs_dir / "builds" / self.plan.artifact_name, timings, time.monotonic() - start)
        return BuildResult(self.plan, artifact, lockfile, lockfiles.document(lock), report, timings)

    def fetch(self, inputs=None) -> dict[str, Path]:
        """The plan's pinned inputs (or those of them given), fetched and verified; by sha256."""
        inputs = self.plan.inputs if inputs is None else inputs
        with self.reporter.phase("fetch", f"{len(inputs)} pinned inputs") as phase:
            files = self.fetcher.fetch_all(inputs)
            cached = sum(origin == "cache" for origin in self.fetcher.origins.values())
            phase.outcome = f"{cached} from the cache, {len(files) - cached} fetched and verified"
        if self.plan.sdk_tarball and self.plan.sdk_tarball.sha256 in files:
            # Unpacked by tar inside the image build: its members are checked here first.
            with self.reporter.phase("check", self.plan.sdk_tarball.file) as phase:
                members = check_archive(files[self.plan.sdk_tarball.sha256], strip_components=1)
                phase.outcome = f"{members} members, none absolute, escaping or special"
        return files

    def realise_tools(self) -> None:
        """The wasmtime CLI a WASI toolchain image installs, taken out of its verified archive (fetched first)."""
        if self.plan.wasmtime_cli:
            tools.realise_tool(self, "wasmtime-cli", self.plan.wasmtime_cli, self.plan.recipe_paths["wasmtime-cli"])

    def ensure_images(self) -> images.BaseImage:
        """The base, native and toolchain images; their content is kept for the lockfile (self.image_contents).

        The base is needed only to build the native image: where the native and toolchain images are here
        already (built before, or loaded by `invoke image-import` on a machine without network), it is not
        bootstrapped, and its root filesystem's sha256 is read from the label they inherited from it."""
        plan = self.plan
        for tag in (images.base_tag(plan), self.native.tag, self.toolchain.tag):
            # First: `invoke gc` may be removing one (then it is made again below); held until this build ends.
            self.store.hold(image_key(tag))
        origin = plan.base.image or f"Debian {plan.base.suite} from {plan.base.mirror}"
        with self.reporter.phase("image base", origin) as phase:
            labels = None if self.fresh_images else self.executor.image_labels(self.native.tag)
            if labels is not None and self.executor.image_labels(self.toolchain.tag) is not None:
                base = images.BaseImage(images.base_tag(plan), images.rootfs_of(labels), reused=True)
                phase.outcome = "not needed: the native and toolchain images are here"
            else:
                base = self.executor.ensure_base(plan, fresh=self.fresh_images)
                phase.outcome = f"{'reused' if base.reused else 'made'} {base.tag}"
        for key, spec in (("native", self.native), ("toolchain", self.toolchain)):
            with self.reporter.phase(f"image {spec.name}") as phase:
                ensured = self.executor.ensure_image(spec, plan.base.mirror, plan.base.source_date_epoch,
                                                     fresh=self.fresh_images)
                self.image_contents[key] = ensured.content
                phase.outcome = f"{'reused' if ensured.reused else 'built'} {spec.tag} ({ensured.content.id[:19]})"
        return base

    def lock(self, products: Products) -> lockfiles.Lockfile:
        """The lockfile of what was built, but for the provenance and the SBOM (see attest)."""
        plan, base, package = self.plan, products.base, products.package
        return lockfiles.new_lock(
            plan, self.configure_host_args, self.host_environment, products.profile, base,
            {key: (spec, self.image_contents[key].locked(), self.executor.inventory(spec.tag))
             for key, spec in (("native", self.native), ("toolchain", self.toolchain))},
            products.locked, products.tarballs, package.path / "manifest.json",
        )

    def attest(self, lock: lockfiles.Lockfile) -> tuple[lockfiles.Lockfile, dict[str, bytes]]:
        """The provenance statement and the SBOM, made from the lockfile; the lockfile with their hashes."""
        name, document = self.plan.artifact_name, lockfiles.document(lock)
        documents = {provenance.provenance_name(name): provenance.encode(provenance.statement(document)),
                     sbom.sbom_name(name): sbom.encode(sbom.bom(self.plan, document, self.target))}
        return lockfiles.with_outputs(lock, {file_name: (hashlib.sha256(data).hexdigest(), len(data))
                                             for file_name, data in documents.items()}), documents
