"""Profile-guided optimisation, its pure logic: which plans are guided, the stage graph, the profile's substitution in
a rebuild and the refusals of a profile that is not the locked one (the build itself is tests/e2e/test_pgo.py)."""

import copy
import hashlib
import io
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from rich.console import Console

from cpython_wasm.errors import UserError
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.recipes.schema import ProfileRuntime
from cpython_wasm.records.lock import describe_profile, profile_name, profile_path
from cpython_wasm.stages.stage import ProductInput
from cpython_wasm.targets import pgo
from cpython_wasm.tools.rebuild import plan_from_lock, published_profile
from tests.helpers import COMMITTED_LOCKFILE
from tests.test_orchestration import identities, recorded_build

EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LOCKED_IMAGES = {"native": "sha256:" + "1" * 64, "toolchain": "sha256:" + "2" * 64}
RECIPES = Recipes()
PLAN = RECIPES.resolve("3.13.5", 25, "debian", arch="x86_64")  # the default build: profile-guided


def stages_of(plan, tmp_path):
    return recorded_build(plan, tmp_path, locked_images=LOCKED_IMAGES).stages()


def test_pgo_is_on_where_the_line_asks_and_the_toolchain_can():
    assert RECIPES.resolve("3.13.5", 25, "debian").pgo
    assert RECIPES.resolve("3.13.5", 25, "debian", extensions=["markupsafe"]).pgo  # the stock host build's
    assert RECIPES.resolve("3.13.5", 25, "debian", flavour="snapshot").pgo
    # No profile runtime pinned for the toolchain (SDK 33: clang 22; the official SDK 25 tarball).
    assert not RECIPES.resolve("3.13.15", 33, "debian").pgo
    assert not RECIPES.resolve("3.13.5", 25, "release", arch="x86_64").pgo
    assert not RECIPES.resolve("3.11.2", 25, "debian").pgo  # its line's recipe does not ask
    assert not RECIPES.resolve("3.13.5", "3.1.69", "debian", target="emscripten").pgo
    # A flavour with its own host build is not guided (its own training would skip most of the task).
    assert not RECIPES.resolve("3.13.5", 25, "debian", flavour="minimal").pgo


def test_the_profile_is_made_before_the_host_build_which_mounts_it(tmp_path):
    stages = stages_of(PLAN, tmp_path)
    keys = list(stages.by_key())
    assert keys.index("profile-runtime") < keys.index("host-instrumented") < keys.index("profile") < keys.index("host")
    runtime, instrumented, profile = (stages.training[key] for key in pgo.MADE_FOR_THE_PROFILE + (pgo.PROFILE_KEY,))
    assert ProductInput(pgo.PROFILE_RUNTIME_DIR, runtime) in instrumented.inputs
    assert ProductInput(instrumented.output, instrumented) in profile.inputs
    assert ProductInput(pgo.PROFILE_DIR, profile) in stages.host.inputs
    assert ProductInput(pgo.PROFILE_DIR, profile) in stages.devkit.inputs  # its install may run make again
    # The same helper phases, configure given the instrumenting or the optimising flags after the recipe's.
    configure = {stage.kind: stage.phases[0].command for stage in (instrumented, stages.host)}
    assert configure["host-instrumented"][-3:] == ("--with-pymalloc", *pgo.instrumenting_args())
    assert configure["host"][-2:] == ("--with-pymalloc", *pgo.optimising_args())
    assert [phase.command for phase in instrumented.phases[1:]] == [phase.command for phase in stages.host.phases[1:]]
    assert instrumented.environment == stages.host.environment == profile.environment


def test_without_pgo_the_host_build_is_the_unguided_one(tmp_path):
    guided = identities(recorded_build(PLAN, tmp_path / "guided", locked_images=LOCKED_IMAGES))
    unguided = recorded_build(PLAN.without_pgo(), tmp_path / "unguided", locked_images=LOCKED_IMAGES)
    stages = unguided.stages()
    assert not stages.training and "llvm-toolchain-19_19.1.7.orig.tar.xz" not in {pin.file for pin in unguided.plan.inputs}
    assert not any("profile" in argument for argument in stages.host.phases[0].command)
    unguided_identities = identities(unguided)
    assert unguided_identities["build-python"] == guided["build-python"]
    assert unguided_identities["host"] != guided["host"]


def test_the_runtime_is_one_product_for_every_release_of_the_toolchain(tmp_path):
    runtimes = {identities(recorded_build(RECIPES.resolve(release, 25, "debian", arch="x86_64"), tmp_path / release,
                                          locked_images=LOCKED_IMAGES))["profile-runtime"]
                for release in ("3.13.5", "3.13.16")}
    assert len(runtimes) == 1


def test_a_published_profile_is_substituted_and_only_what_follows_it_runs(tmp_path):
    profile = tmp_path / "published.profdata"
    profile.write_bytes(b"\xfflprofi\x81" + bytes(range(256)))
    locked = describe_profile(PLAN, profile)
    build = recorded_build(PLAN, tmp_path / "rebuild", locked_images=LOCKED_IMAGES)
    build.published_profile = pgo.PublishedProfile(profile, locked.sha256, locked.size)
    reporter = build.reporter = build.executor.reporter = Reporter(Console(file=io.StringIO(), soft_wrap=True))
    realised, locked_identities = build.realise_stages()
    stages = build.stages()
    # Substituted, then not realised again: no stage reports itself "reused" in a rebuild's fresh store.
    printed = reporter.console.file.getvalue()
    assert "✓ profile substituted from" in printed and "profile: reused" not in printed
    assert (realised[pgo.PROFILE_KEY].path / pgo.PROFILE_NAME).read_bytes() == profile.read_bytes()
    ran = {call.name for call in build.executor.calls if call.action == "run"}
    assert {"profile-runtime", "configure-host", "make-host", "package"} - ran == {"profile-runtime"}
    assert "profile" not in ran
    assert not set(pgo.MADE_FOR_THE_PROFILE) & realised.keys()
    # The lockfile still names every stage, those that were not needed too.
    assert locked_identities == {key: stage.identity for key, stage in stages.by_key().items() if key != "source"}


@EXAMPLES
@given(content=st.binary(max_size=512))
def test_any_other_profile_is_refused_before_anything_runs(tmp_path, content):
    locked = b"the profile the lockfile names"
    path = tmp_path / "given.profdata"
    path.write_bytes(content)
    published = pgo.PublishedProfile(path, hashlib.sha256(locked).hexdigest(), len(locked))
    build = recorded_build(PLAN, tmp_path / "rebuild", locked_images=LOCKED_IMAGES)
    build.published_profile = published
    if content == locked:
        published.check()
        return
    with pytest.raises(UserError, match=r"`build\.pgo\.(size|sha256)` says: it is not the profile this lockfile was "
                                        r"built with\. Pass the profile"):
        build.realise_stages()
    assert not build.executor.calls


def locked_pgo_lock(tmp_path, content: bytes) -> tuple[dict, object]:
    """The committed default lockfile, copied into tmp_path with a profile of `content` named by its build.pgo."""
    lock = json.loads(COMMITTED_LOCKFILE.read_text())
    sha256 = hashlib.sha256(content).hexdigest()
    lock["build"]["pgo"] = {"file": profile_name(lock["artifact"], sha256), "sha256": sha256, "size": len(content)}
    lockfile = tmp_path / "lockfiles" / COMMITTED_LOCKFILE.name
    lockfile.parent.mkdir(parents=True)
    lockfile.write_text(json.dumps(lock))
    return lock, lockfile


def test_a_rebuild_finds_the_profile_beside_the_lockfile_or_the_artifact_or_as_given(tmp_path):
    content = b"\xfflprofi\x81 counts"
    lock, lockfile = locked_pgo_lock(tmp_path, content)
    name = lock["build"]["pgo"]["file"]
    with pytest.raises(UserError, match=rf"Pass the profile published with the artifact, {name}, as --profile\."):
        published_profile(lock, lockfile)
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / name).write_bytes(content)
    assert published_profile(lock, lockfile).path == tmp_path / "dist" / name
    profile_path(lockfile, name).parent.mkdir()
    profile_path(lockfile, name).write_bytes(content)
    assert published_profile(lock, lockfile).path == profile_path(lockfile, name)
    given = tmp_path / "elsewhere.profdata"
    given.write_bytes(content + b" and more")
    with pytest.raises(UserError, match="bytes, not the 15 the lockfile's `build.pgo.size` says"):
        published_profile(lock, lockfile, given)
    given.write_bytes(content.upper())
    with pytest.raises(UserError, match="has sha256 [0-9a-f]{64}, not the [0-9a-f]{64} the lockfile's `build.pgo.sha256`"):
        published_profile(lock, lockfile, given)


def test_the_lockfile_says_whether_the_rebuild_is_guided(tmp_path):
    lock, lockfile = locked_pgo_lock(tmp_path, b"counts")
    assert plan_from_lock(lock, RECIPES, lockfile).plan.pgo
    unguided = copy.deepcopy(lock)
    del unguided["build"]["pgo"]
    # Without its profile, the lockfile still names the runtime's source among its inputs: not a --no-pgo build's.
    with pytest.raises(UserError, match=r"`inputs\[7\]` is \{'name': 'llvm-toolchain-19_19\.1\.7\.orig\.tar\.xz'"):
        plan_from_lock(unguided, RECIPES, lockfile)
    unguided["inputs"] = [entry for entry in unguided["inputs"] if not entry["name"].startswith("llvm-toolchain-")]
    assert not plan_from_lock(unguided, RECIPES, lockfile).plan.pgo  # as `invoke build --no-pgo` writes it
    other = json.loads((COMMITTED_LOCKFILE.parent / "python-3.13.15-wasi_sdk-33-debian.json").read_text())
    other["build"]["pgo"] = lock["build"]["pgo"]
    with pytest.raises(UserError, match=r"`build.pgo` is .*: the recipes give no profile-guided optimisation"):
        plan_from_lock(other, RECIPES, tmp_path / "other.json")


PROFILE_RUNTIME_NAMES = ("directory", "patch", "sources")


@given(field=st.sampled_from(PROFILE_RUNTIME_NAMES),
       name=st.text(max_size=80).filter(lambda text: re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+~-]*", text) is None
                                        or len(text) > 255))
@settings(max_examples=200, deadline=None)
def test_a_profile_runtime_name_that_is_not_a_plain_file_name_is_refused(field, name):
    """The recipe's names reach a shell script's arguments and a tar member list (build-profile-runtime.sh): a
    path, an option, a glob or a control character is refused when the recipe is read, naming the key."""
    recipe = Recipes().resolve("3.13.5", "25", "debian", "wasi").profile_runtime
    data = recipe.model_dump(mode="json")
    data[field] = [name] if field == "sources" else name
    with pytest.raises(ValidationError) as refused:
        ProfileRuntime.model_validate(data)
    assert refused.value.errors()[0]["loc"][0] == field
