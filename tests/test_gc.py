"""invoke gc: what no lockfile reaches is removed; what one reaches, what a running build holds and what is being
built are kept. The stores are real (built through the RecordingExecutor); the images are real ones, in Docker."""

import contextlib
import io
import json
import secrets
import subprocess
import sys
import textwrap

import pytest

from cpython_wasm.build import Build
from cpython_wasm.errors import UserError
from cpython_wasm.paths import Workspace
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.records.lock import read_build_lock
from cpython_wasm.stages.executor import RecordingExecutor
from cpython_wasm.stages.gc import Roots, collect, images_made_by, root_lockfiles
from cpython_wasm.stages.images import raw_tag
from cpython_wasm.stages.store import Store, image_key
from tests.helpers import COMMITTED_LOCKFILE, PROJECT_ROOT, invoke


@pytest.fixture(scope="module")
def plan():
    """The default build without profile-guided optimisation (gc treats its stages like any other's)."""
    return Recipes().resolve("3.13.5", 25, "debian", arch="x86_64").without_pgo()


def realised(plan, space, configure_args=()) -> dict:
    """The stages of a build realised in the workspace's store (nothing runs: RecordingExecutor)."""
    build = Build(plan, space, Reporter(), configure_args=configure_args,
                  executor=RecordingExecutor(Store.of(space), Reporter()))
    products = {key: build.executor.realise(stage) for key, stage in build.stages().by_key().items()}
    build.store.release()  # as a build that ended does
    return products


def lockfile_of(products: dict, path):
    """The committed lockfile, naming these products: a root as `invoke build` writes it."""
    lock = json.loads(COMMITTED_LOCKFILE.read_text())
    lock["products"] = {key: product.identity for key, product in products.items() if key != "source"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
    return path


@pytest.fixture
def space(tmp_path):
    return Workspace.from_options(tmp_path / "cache", tmp_path / "build", tmp_path / "dist", tmp_path / "locks")


@pytest.fixture
def two_builds(plan, space):
    """Two builds in one store: `kept`, which a lockfile names, and `other` (another configure argument)."""
    kept = realised(plan, space)
    other = realised(plan, space, ["--with-pydebug"])
    lockfile_of(kept, space.lock_dir / "kept.json")
    return kept, other


def store_names(space) -> set[str]:
    return {path.name for path in space.store_dir.iterdir()}


def test_what_a_lockfile_reaches_is_kept_with_what_it_was_made_from_and_the_rest_removed(space, two_builds):
    kept, other = two_builds
    (space.logs_dir / other["host"].path.name).mkdir(parents=True, exist_ok=True)
    (space.logs_dir / other["host"].path.name / "make-host.log").write_text("x" * 1000)
    result = collect(Store.of(space), Roots.of(root_lockfiles(space.lock_dir, [])), dry_run=False)
    # The source and the build python are shared, and reached through the host's recorded stage.
    assert sorted(result.removed_products) == sorted(other[key].path.name for key in ("host", "devkit", "package"))
    # source, build python, 4 libraries, host, devkit, package
    assert result.kept_products == 9 and result.held == []
    assert store_names(space) == {name for product in kept.values()
                                  for name in (product.path.name, product.path.name + ".json")}
    assert not (space.logs_dir / other["host"].path.name).exists(), "the logs go with the product"
    assert result.store_bytes >= 1000


def test_a_dry_run_lists_the_same_and_removes_nothing(space, two_builds):
    before = store_names(space)
    dry = collect(Store.of(space), Roots.of(root_lockfiles(space.lock_dir, [])), dry_run=True)
    assert store_names(space) == before
    real = collect(Store.of(space), Roots.of(root_lockfiles(space.lock_dir, [])), dry_run=False)
    assert dry.removed_products == real.removed_products and dry.store_bytes == real.store_bytes


def test_keep_adds_a_lockfile_to_the_roots(space, two_builds, tmp_path):
    kept, other = two_builds
    extra = lockfile_of(other, tmp_path / "elsewhere" / "other.json")
    result = collect(Store.of(space), Roots.of(root_lockfiles(space.lock_dir, [extra])))
    assert result.removed_products == [] and result.kept_products == 12


HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from cpython_wasm.stages.store import Store
    from filelock import FileLock
    build = Path(sys.argv[1])
    store = Store(build / "store", build / "locks", build / "logs")
    if sys.argv[2] == "use":
        store.hold(sys.argv[3])  # as a running build holds every product and image it uses
    else:
        lock = FileLock(build / "locks" / f"{sys.argv[3]}.lock")
        lock.acquire()  # as a build holds the product it is building
    print("held", flush=True)
    time.sleep(600)
""")


class Holder:
    """Another process that holds a key of a store, as a running build does."""

    def __init__(self, space, how: str, key: str):
        self.process = subprocess.Popen([sys.executable, "-c", HOLD, str(space.build_dir), how, key],
                                        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "held"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def test_a_product_a_running_build_holds_is_never_removed(space, two_builds):
    _, other = two_builds
    with Holder(space, "use", other["host"].identity):
        result = collect(Store.of(space), Roots.of(root_lockfiles(space.lock_dir, [])))
        assert result.held == [other["host"].path.name]
        assert other["host"].path.is_dir() and not other["package"].path.exists()
    # Once that build is gone (killed: the kernel drops its lock), the product goes.
    result = collect(Store.of(space), Roots.of(root_lockfiles(space.lock_dir, [])))
    assert result.removed_products == [other["host"].path.name] and not other["host"].path.exists()


def test_a_product_being_built_is_left_alone_and_one_a_killed_build_left_is_removed(space, two_builds):
    kept, _ = two_builds
    identity = "f" * 32
    building = space.store_dir / f".building-{identity}-host-x"
    (building / "half").mkdir(parents=True)
    with Holder(space, "build", identity):
        result = collect(Store.of(space), Roots.of(root_lockfiles(space.lock_dir, [])))
        assert building.name in result.held and building.is_dir()
    result = collect(Store.of(space), Roots.of(root_lockfiles(space.lock_dir, [])))
    assert building.name in result.removed_products and not building.exists()


def test_a_malformed_root_stops_the_collection_before_anything_is_removed(space, two_builds):
    (space.lock_dir / "broken.json").write_text("{")
    before = store_names(space)
    with pytest.raises(UserError, match="broken.json"):
        collect(Store.of(space), Roots.of(root_lockfiles(space.lock_dir, [])))
    assert store_names(space) == before
    result = invoke("gc", "--build-dir", str(space.build_dir), "--lock-dir", str(space.lock_dir))
    assert result.returncode == 2 and "broken.json" in result.stderr and "Traceback" not in result.stderr
    assert store_names(space) == before


def test_invoke_gc_reports_what_it_removed_and_the_bytes(space, two_builds):
    _, other = two_builds
    result = invoke("gc", "--dry-run", "--build-dir", str(space.build_dir), "--lock-dir", str(space.lock_dir),
                    env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert result.returncode == 0, result.stderr
    assert "would remove build" not in result.stdout  # the store is outside the checkout: shown whole
    assert str(other["host"].path) in result.stdout and "would remove 3 store products" in result.stdout
    assert other["host"].path.is_dir()
    result = invoke("gc", "--build-dir", str(space.build_dir), "--lock-dir", str(space.lock_dir),
                    env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert result.returncode == 0 and "removed 3 store products" in result.stdout and not other["host"].path.exists()
    assert "images left alone" in result.stderr


def test_keep_names_a_missing_lockfile_in_one_paragraph(space, tmp_path):
    result = invoke("gc", "--keep", str(tmp_path / "nothing.json"), "--build-dir", str(space.build_dir),
                    "--lock-dir", str(space.lock_dir))
    assert result.returncode == 2 and "--keep" in result.stderr and "Traceback" not in result.stderr


# -- images, in Docker ----------------------------------------------------------------------------

def probe_image(client, store: Store) -> str:
    """A real image (FROM scratch, one label) tagged as this store made it: its log directory is in the store."""
    name, identity = f"gc-probe-{secrets.token_hex(4)}", secrets.token_hex(16)
    image, _ = client.images.build(fileobj=io.BytesIO(f"FROM scratch\nLABEL probe={identity}\n".encode()), rm=True)
    tag = f"cpython-wasm/{name}:{identity}"
    image.tag(f"cpython-wasm/{name}", identity)
    (store.logs_dir / f"{identity}-image-{name}").mkdir(parents=True)
    return tag


@pytest.mark.e2e
def test_images_this_store_made_are_removed_unless_a_lockfile_names_them_or_a_build_holds_them(space, two_builds):
    import docker

    client = docker.from_env()
    store = Store.of(space)
    loose, held, rooted = (probe_image(client, store) for _ in range(3))
    try:
        lock = read_build_lock(space.lock_dir / "kept.json")
        lock["images"]["toolchain"]["tag"] = rooted
        (space.lock_dir / "kept.json").write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
        # What a normalisation that stopped leaves: `docker build`'s output under the raw tag, never a root.
        repository, identity = rooted.rsplit(":", 1)
        client.images.get(rooted).tag(repository, f"{identity}-unnormalised")
        assert {loose, held, rooted, raw_tag(rooted)} <= images_made_by(store)
        with Holder(space, "use", image_key(held)):
            result = collect(store, Roots.of(root_lockfiles(space.lock_dir, [])), client)
        tags = {tag for image in client.images.list() for tag in image.tags}
        assert sorted(result.removed_images) == sorted([loose, raw_tag(rooted)]) and loose not in tags
        assert raw_tag(rooted) not in tags
        assert held in result.held and held in tags
        assert rooted in tags and result.kept_images == 1
    finally:
        for tag in (loose, held, rooted, raw_tag(rooted)):
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(tag)
