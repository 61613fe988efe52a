"""The orchestration of a build, run through the RecordingExecutor: which stages, in which order, mounting
what, and which identities a change of input changes. Nothing runs in Docker; the store is real."""

import dataclasses
import json
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpython_wasm import paths
from cpython_wasm.build import Build
from cpython_wasm.paths import Workspace
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.stages.executor import RecordingExecutor
from cpython_wasm.stages.stage import FileInput, Phase, ProductInput, Stage, Unpack
from cpython_wasm.stages.store import Store
from cpython_wasm.targets import target
from cpython_wasm.tools import rebuild
from tests.helpers import PROJECT_ROOT, invoke

LIBRARIES = ("library:zlib", "library:bzip2", "library:sqlite", "library:xz")
STAGES = ("source", "build-python", *LIBRARIES, "host", "devkit", "package")


@pytest.fixture(scope="module")
def recipes():
    return Recipes()


@pytest.fixture
def plan(recipes):
    """The default build without profile-guided optimisation, whose three stages tests/test_pgo.py covers."""
    return recipes.resolve("3.13.5", 25, "debian", arch="x86_64").without_pgo()


def workspace(tmp_path):
    return Workspace.from_options(tmp_path / "cache", tmp_path / "build", tmp_path / "dist", tmp_path / "locks")


def recorded_build(plan, tmp_path, configure_args=(), locked_images=None) -> Build:
    space = workspace(tmp_path)
    return Build(plan, space, Reporter(), configure_args=configure_args,
                 executor=RecordingExecutor(Store.of(space), Reporter()), locked_images=locked_images)


def identities(build: Build) -> dict[str, str]:
    return {key: stage.identity for key, stage in build.stages().by_key().items()}


def realise(build: Build) -> dict:
    """The stages realised (as `products()` does after fetching, which needs the network: skipped here)."""
    build.ensure_images()
    return {key: build.executor.realise(stage) for key, stage in build.stages().by_key().items()}


def test_the_stages_run_in_order_each_in_its_image(plan, tmp_path):
    build = recorded_build(plan, tmp_path)
    realise(build)
    calls = build.executor.calls
    assert [call.action for call in calls[:3]] == ["image"] * 3
    assert [call.name for call in calls[3:]] == [
        "Python-3.13.5.tar.xz", "configure-build-python", "make-build-python", "build-zlib", "build-bzip2",
        "build-sqlite", "build-xz", "configure-host", "make-host", "devkit", "package"]
    images = {call.name: call.image for call in calls if call.action == "run"}
    # By their content, as ensured: never by tag (a tag names what was meant to be built, not what was).
    native, toolchain = build.image_contents["native"].id, build.image_contents["toolchain"].id
    assert images["make-build-python"] == images["package"] == native and native.startswith("sha256:")
    assert images["configure-host"] == images["make-host"] == images["build-sqlite"] == images["devkit"] \
        == toolchain != native


def test_each_stage_mounts_its_inputs_read_only_and_only_its_output_writable(plan, tmp_path):
    build = recorded_build(plan, tmp_path)
    products = realise(build)
    mounts = {call.name: {bind.container: (bind.host, bind.writable) for bind in call.binds}
              for call in build.executor.calls if call.action == "run"}
    assert mounts["make-host"] == {
        "/cpython": (products["source"].path, False),
        "/cpython/cross-build/build": (products["build-python"].path, False),
        **{f"/opt/libraries/{key.split(':')[1]}": (products[key].path, False) for key in LIBRARIES},
        "/cpython/cross-build/wasm32-wasip1": (mounts["make-host"]["/cpython/cross-build/wasm32-wasip1"][0], True),
    }
    sqlite = mounts["build-sqlite"]
    assert [container for container, (_, writable) in sqlite.items() if writable] == ["/opt/libraries/sqlite"]
    assert sqlite["/inputs/sqlite3_3.46.1.orig.tar.xz"][1] is False
    # The devkit: installed from the host build, mounted read-only with what it was built from.
    devkit = mounts["devkit"]
    assert {container: bind for container, bind in devkit.items() if container != "/devkit"} == {
        **{container: bind for container, bind in mounts["make-host"].items()
           if container != "/cpython/cross-build/wasm32-wasip1"},
        "/cpython/cross-build/wasm32-wasip1": (products["host"].path, False),
        "/opt/cpython-wasm/build-devkit.sh": devkit["/opt/cpython-wasm/build-devkit.sh"]}
    assert devkit["/devkit"][1] is True
    packaging = mounts["package"]
    assert packaging["/cpython/cross-build/wasm32-wasip1"] == (products["host"].path, False)
    assert packaging["/devkit"] == (products["devkit"].path, False)
    assert [container for container, (_, writable) in packaging.items() if writable] == ["/out"]
    scripts = {container.rsplit("/", 1)[1] for container in packaging if container.startswith("/opt/cpython-wasm/")}
    assert scripts == {"__init__.py", "package.py", "tarball.py", "wasm.py", "emscripten_data.py", "devkit.py",
                       "web_assets.py"}


def test_a_second_build_finds_every_stage_in_the_store(plan, tmp_path):
    first = recorded_build(plan, tmp_path)
    realise(first)
    second = recorded_build(plan, tmp_path)
    products = realise(second)
    assert all(product.reused for product in products.values())
    assert [call.action for call in second.executor.calls] == ["image"] * 3  # nothing ran


def test_the_store_records_each_stage_whole_beside_its_product(plan, tmp_path):
    build = recorded_build(plan, tmp_path)
    host = realise(build)["host"]

    info = json.loads(host.path.with_name(host.path.name + ".json").read_text())
    stage = build.stages().host
    assert info == {"name": stage.name, "identity": stage.identity, "stage": json.loads(json.dumps(stage.value()))}


def changed(before: dict, after: dict) -> set[str]:
    return {kind for kind in before if before[kind] != after[kind]}


def test_an_extra_configure_argument_changes_the_host_and_what_follows(plan, tmp_path):
    plain = identities(recorded_build(plan, tmp_path))
    custom = identities(recorded_build(plan, tmp_path / "other", ["--with-pydebug"]))
    assert changed(plain, custom) == {"host", "devkit", "package"}


def test_another_sdk_changes_the_libraries_host_and_package_but_shares_the_build_python(plan, tmp_path):
    other_sdk = dataclasses.replace(plan, sdk=99, toolchain=plan.toolchain.model_copy(
        update={"packages": {**plan.toolchain.packages, "clang-19": "1:19.1.7-9"}}))
    assert changed(identities(recorded_build(plan, tmp_path)), identities(recorded_build(other_sdk, tmp_path))) \
        == {*LIBRARIES, "host", "devkit", "package"}


def test_another_source_changes_every_stage_but_the_libraries(plan, tmp_path):
    source = plan.release.source.model_copy(update={"sha256": "0" * 64})
    other = dataclasses.replace(plan, release=plan.release.model_copy(update={"source": source}))
    assert changed(identities(recorded_build(plan, tmp_path)), identities(recorded_build(other, tmp_path))) \
        == set(STAGES) - set(LIBRARIES)


def test_a_library_is_one_product_for_every_release_built_with_the_same_toolchain(recipes, tmp_path):
    one = identities(recorded_build(recipes.resolve("3.13.15", 33, "debian", arch="x86_64"), tmp_path))
    two = identities(recorded_build(recipes.resolve("3.14.6", 33, "debian", arch="x86_64"), tmp_path))
    assert {key for key in LIBRARIES if one[key] == two[key]} == set(LIBRARIES)


def test_a_library_option_changes_that_library_and_what_links_it(plan, tmp_path):
    sqlite = next(library for library in plan.libraries if library.name == "sqlite")
    edited = sqlite.model_copy(update={"cflags": (*sqlite.cflags, "-DSQLITE_DEFAULT_CACHE_SIZE=-4000")})
    other = dataclasses.replace(plan, libraries=tuple(edited if library is sqlite else library
                                                      for library in plan.libraries))
    assert changed(identities(recorded_build(plan, tmp_path)), identities(recorded_build(other, tmp_path))) \
        == {"library:sqlite", "host", "devkit", "package"}


def test_configure_finds_each_library_in_its_mounted_product(plan, tmp_path):
    """CPython's configure reads <NAME>_CFLAGS and <NAME>_LIBS before pkg-config: they point at the mounts."""
    stages = recorded_build(plan, tmp_path).stages()
    environment = stages.host.environment_dict
    assert environment["LIBSQLITE3_CFLAGS"] == "-I/opt/libraries/sqlite/include"
    assert environment["LIBSQLITE3_LIBS"] == "-L/opt/libraries/sqlite/lib -lsqlite3"
    assert environment["LIBLZMA_LIBS"] == "-L/opt/libraries/xz/lib -llzma"
    assert environment["BZIP2_LIBS"] == "-L/opt/libraries/bzip2/lib -lbz2"
    assert environment["ZLIB_CFLAGS"] == "-I/opt/libraries/zlib/include"
    sqlite = stages.libraries["sqlite"]
    assert sqlite.output == "/opt/libraries/sqlite" and sqlite.produces == ("lib/libsqlite3.a",)
    assert "-DSQLITE_OMIT_LOAD_EXTENSION" in sqlite.environment_dict["CFLAGS"].split()
    assert "-D_WASI_EMULATED_GETPID" in sqlite.environment_dict["CFLAGS"].split()  # WASI's own option


def test_an_edited_packaging_script_changes_the_package_only(plan, tmp_path, monkeypatch):
    before = identities(recorded_build(plan, tmp_path))
    scripts = tmp_path / "container"
    shutil.copytree(paths.CONTAINER_SCRIPTS_DIR, scripts)
    with open(scripts / "wasm.py", "a") as script:
        script.write("# an edit\n")
    monkeypatch.setattr(target, "CONTAINER_SCRIPTS_DIR", scripts)
    assert changed(before, identities(recorded_build(plan, tmp_path))) == {"package"}


def test_the_build_python_is_the_same_for_both_targets(recipes, tmp_path):
    wasi = recipes.resolve("3.13.5", 25, "debian", arch="x86_64")
    emscripten = recipes.resolve("3.13.5", "3.1.69", "debian", target="emscripten", arch="x86_64")
    one, two = recorded_build(wasi, tmp_path), recorded_build(emscripten, tmp_path)
    assert one.stages().build_python.identity == two.stages().build_python.identity
    assert one.stages().host.environment != two.stages().host.environment  # EM_CACHE, PYTHONPYCACHEPREFIX


@pytest.mark.parametrize("lockfile", sorted((PROJECT_ROOT / "lockfiles").glob("*.json")), ids=lambda path: path.stem)
def test_every_committed_lockfile_names_the_stages_this_code_builds(lockfile, tmp_path):
    """A change that moves a stage's identity must rebuild the lockfiles it moves (and prove the bytes the
    same): caught here, in seconds, rather than by a rebuild that finds nothing in the store."""
    lock = json.loads(lockfile.read_text())
    request = rebuild.plan_from_lock(lock, Recipes(), lockfile)
    space = workspace(tmp_path)
    build = Build(request.plan, space, Reporter(), configure_args=request.configure_args,
                  executor=RecordingExecutor(Store.of(space), Reporter()),
                  locked_images={key: image["id"] for key, image in lock["images"].items()})
    assert {kind: identity for kind, identity in identities(build).items() if kind != "source"} == lock["products"]


def test_the_environment_of_every_stage_carries_the_recipes_source_date_epoch(plan, tmp_path):
    stages = recorded_build(plan, tmp_path).stages()
    for stage in (stages.build_python, stages.host, stages.package):
        assert stage.environment_dict["SOURCE_DATE_EPOCH"] == "1749600000"  # the release's
    for stage in stages.libraries.values():
        assert stage.environment_dict["SOURCE_DATE_EPOCH"] == "1735689600"  # the base's: one for every release


# -- the identity covers the whole value -------------------------------------------------------

def a_stage() -> Stage:
    source = Unpack("cpython-source", "Python.tar.xz", "1" * 64, ("build",), (("Setup.local", ""),), host=PROJECT_ROOT)
    return Stage("host", "host-x", "image:1", (Phase("make", ("make", "-j2"), "/cpython"),), (("A", "1"),),
                 (ProductInput("/cpython", source), FileInput("/opt/x.py", "2" * 64, PROJECT_ROOT)), "/out", ("python.wasm",))


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
CHANGES = {
    "kind": TEXT.map(lambda text: "k" + text),
    "name": TEXT.map(lambda text: "n" + text),
    "image": TEXT.map(lambda text: "i" + text),
    "phases": st.lists(st.builds(Phase, TEXT, st.lists(TEXT, max_size=3).map(tuple), TEXT), max_size=3).map(tuple),
    "environment": st.lists(st.tuples(TEXT, TEXT), max_size=3).map(tuple),
    "inputs": st.lists(st.builds(FileInput, TEXT, TEXT, st.just(PROJECT_ROOT)), max_size=3).map(tuple),
    "output": TEXT.map(lambda text: "/o" + text),
    "produces": st.lists(TEXT, max_size=3).map(tuple),
}


def test_every_field_of_a_stage_is_covered_by_a_strategy():
    assert set(CHANGES) == {field.name for field in dataclasses.fields(Stage)}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(CHANGES)).flatmap(lambda name: st.tuples(st.just(name), CHANGES[name])))
def test_any_change_to_any_field_changes_the_identity(change):
    name, value = change
    stage = a_stage()
    other = dataclasses.replace(stage, **{name: value})
    assert (other.identity == stage.identity) == (other.value() == stage.value())


def test_where_a_file_lies_on_this_host_is_no_part_of_the_identity():
    stage = a_stage()
    moved = dataclasses.replace(stage, inputs=tuple(dataclasses.replace(mount, host=PROJECT_ROOT / "elsewhere")
                                                    if isinstance(mount, FileInput) else mount for mount in stage.inputs))
    assert moved.identity == stage.identity


def test_a_product_input_is_named_by_the_identity_of_the_stage_that_makes_it():
    stage = a_stage()
    source = stage.inputs[0].stage
    other_source = dataclasses.replace(source, sha256="3" * 64)
    other = dataclasses.replace(stage, inputs=(ProductInput("/cpython", other_source), stage.inputs[1]))
    assert other.identity != stage.identity


# -- invoke build --dry-run ---------------------------------------------------------------------

def test_a_dry_run_prints_the_stages_and_their_store_paths_and_builds_nothing(tmp_path):
    build_dir = tmp_path / "build"
    locks = PROJECT_ROOT / "lockfiles"  # the images' content is the committed lockfile's: no engine is asked
    result = invoke("build", "--python", "3.13.5", "--sdk", "25", "--provider", "debian", "--dry-run",
                    "--build-dir", str(build_dir), "--dist-dir", str(tmp_path / "dist"),
                    "--lock-dir", str(locks), env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert result.returncode == 0, result.stderr
    plan = Recipes().resolve("3.13.5", 25, "debian")
    space = Workspace.from_options(None, build_dir, tmp_path / "dist", tmp_path / "locks")
    lock = json.loads((locks / f"{plan.artifact_name}.json").read_text())
    expected = recorded_build(plan, tmp_path / "recorded", locked_images={k: v["id"] for k, v in lock["images"].items()})
    assert expected.stages().host.image == lock["images"]["toolchain"]["id"]
    assert f"({lock['images']['toolchain']['id']})" in result.stdout
    for stage in expected.stages():
        assert f"{stage.identity}-{stage.name}" in result.stdout
    assert expected.toolchain.tag in result.stdout and "configure-host: python3 /cpython/Tools/wasm/wasi.py" in result.stdout
    assert not any(path.is_file() for path in build_dir.rglob("*")), "a dry run writes nothing"
    assert not (tmp_path / "dist").exists()
    assert space.store_dir == build_dir / "store"
