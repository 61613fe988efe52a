"""Rebuilding: what a rebuild compares and when it refuses to start (the rebuild itself is in tests/e2e)."""

import copy
import hashlib
import io
import json
import shutil
import tarfile
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpython_wasm.errors import UserError
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.plan import Recipes, host_arch
from cpython_wasm.records.lock import profile_path, read_lock
from cpython_wasm.stages import executor, images
from cpython_wasm.targets import toolchain_spec
from cpython_wasm.targets.drivers import check_extra_configure_args
from cpython_wasm.tools.rebuild import (
    MISSING,
    Difference,
    RebuildReport,
    _image_diffoscope,
    compare,
    compare_artifacts,
    flatten,
    image_changes,
    key_path,
    plan_from_lock,
    rebuild,
)
from tests.helpers import COMMITTED_LOCKFILE, PROJECT_ROOT, invoke, setting
from tests.synthetic import FILES, NAME, TAMPERED, pack

COMMITTED_NAME = COMMITTED_LOCKFILE.stem
EXAMPLES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_flatten_names_packages_and_inputs_by_name(lock):
    flat = flatten(lock)
    assert flat["images/toolchain/packages/wasi-libc/version"] == "0.0~git20241209.574b88d-2"
    assert flat["inputs/Python-3.13.5.tar.xz/sha256"] == lock["inputs"][0]["sha256"]
    assert flat["build/configure_host_args"] == ["--with-pymalloc"]


def test_compare_lists_exactly_the_keys_that_differ(lock):
    assert compare(lock, copy.deepcopy(lock)) == []
    rebuilt = copy.deepcopy(lock)
    rebuilt["outputs"]["python.wasm"]["sha256"] = "0" * 64
    next(p for p in rebuilt["images"]["native"]["packages"] if p["name"] == "apt")["version"] = "9.9"
    del rebuilt["outputs"]["manifest.json"]
    assert compare(lock, rebuilt) == [
        Difference("images/native/packages/apt/version", "3.0.4", "9.9"),
        Difference("outputs/manifest.json/sha256", lock["outputs"]["manifest.json"]["sha256"], None),
        Difference("outputs/manifest.json/size", lock["outputs"]["manifest.json"]["size"], None),
        Difference("outputs/python.wasm/sha256", lock["outputs"]["python.wasm"]["sha256"], "0" * 64),
    ]


def test_compare_artifacts_names_each_differing_file_with_both_hashes(tmp_path):
    original = tmp_path / "original"
    original.mkdir()
    pack(original, FILES)
    rebuilt = tmp_path / "rebuilt"
    rebuilt.mkdir()
    pack(rebuilt, {**FILES, "python.wasm": TAMPERED, "extra.py": b""})
    differences = compare_artifacts(original / "dist" / f"{NAME}.tar.gz", rebuilt / "dist" / f"{NAME}.tar.gz")
    assert [d.key for d in differences] == ["extra.py", "manifest.json", "python.wasm"]
    assert differences[0].expected == "(missing)"
    assert len(differences[2].expected) == len(differences[2].actual) == 64
    report = RebuildReport("lockfiles/x.json", "build/rebuilds/x", "now", [Difference("outputs/x", "a", "b")],
                           differences, original_artifact="dist/x.tar.gz")
    assert not report.identical
    assert f"python.wasm: {differences[2].expected} → {differences[2].actual}" in report.as_text()


def test_the_plan_and_extra_configure_arguments_come_from_the_lockfile(lock):
    lock["build"]["configure_host_args"] = ["--with-pymalloc", "--with-pydebug"]  # the recipe's, then the extra one
    request = plan_from_lock(lock, Recipes(), COMMITTED_LOCKFILE, allow_extra_configure_args=True)
    plan = request.plan
    assert (plan.release.version, plan.sdk, plan.provider, plan.artifact_name) == ("3.13.5", 25, "debian", lock["artifact"])
    assert request.configure_args == ("--with-pydebug",)
    assert [(m.key, m.locked, m.allowed_by) for m in request.allowed] == [
        ("build.configure_host_args[1]", "--with-pydebug", "--allow-extra-configure-args")]
    assert plan.base.mirror == lock["base"]["mirror"]


def test_a_lockfile_from_other_recipes_is_refused(lock):
    lock["recipes"]["recipes/cpython/3.13.toml"] = "0" * 64
    with pytest.raises(UserError, match=r"recipes/cpython/3.13.toml differ.*git log -1"):
        plan_from_lock(lock, Recipes(), COMMITTED_LOCKFILE)


def test_invoke_rebuild_refuses_other_recipes_before_building_anything(lock, tmp_path):
    lock["recipes"]["recipes/toolchains/wasi-sdk/25.toml"] = "0" * 64
    lockfile = tmp_path / "lock.json"
    lockfile.write_text(json.dumps(lock))
    output = tmp_path / "rebuild"
    result = invoke("rebuild", "--check", "--lock", lockfile, "--output", output)
    assert result.returncode == 2, result.stderr
    assert "recipes/toolchains/wasi-sdk/25.toml" in result.stderr and "Traceback" not in result.stderr
    assert not output.exists()


def test_invoke_rebuild_refuses_an_unreadable_lockfile(tmp_path):
    lockfile = tmp_path / "lock.json"
    lockfile.write_text("{not json")
    result = invoke("rebuild", "--lock", lockfile)
    assert result.returncode == 2
    assert "cannot be read as JSON" in result.stderr and "Traceback" not in result.stderr


def test_a_lockfile_from_another_architecture_is_refused(lock):
    lock["build"]["host_arch"] = "riscv64"
    with pytest.raises(UserError, match=r"built on riscv64 \(`build.host_arch`\); this machine is .*Rebuild it on an "
                                        r"riscv64 machine"):
        plan_from_lock(lock, Recipes(), COMMITTED_LOCKFILE)


def test_invoke_rebuild_refuses_a_directory_that_is_not_empty(tmp_path):
    output = tmp_path / "rebuild"
    output.mkdir()
    (output / "kept.txt").write_text("mine")
    result = invoke("rebuild", "--lock", COMMITTED_LOCKFILE, "--output", output)
    assert result.returncode == 2, result.stderr
    assert "is not empty" in result.stderr and "Traceback" not in result.stderr
    assert [path.name for path in output.iterdir()] == ["kept.txt"]


# -- a lockfile is untrusted input: checked against the recipes before anything runs ----------------------------


class NoEngine:
    """A Docker client that fails the test if anything asks it for anything."""

    def __getattr__(self, name):
        pytest.fail(f"the rebuild reached the engine ({name}) before refusing the lockfile")


@pytest.fixture(scope="module")
def recipes():
    return Recipes()


@pytest.fixture
def no_engine(monkeypatch):
    monkeypatch.setattr(executor, "connect", lambda: pytest.fail("the rebuild connected to the engine"))
    return NoEngine()


def refusal(lock: dict, recipes, tmp_path, **options) -> str:
    """rebuild()'s refusal of `lock` (written to a file): its message (the file named LOCKFILE), once it is sure
    nothing was made."""
    lockfile = tmp_path / f"lock-{uuid.uuid4().hex}.json"
    lockfile.write_text(json.dumps(lock))
    output = tmp_path / f"rebuild-{uuid.uuid4().hex}"
    with pytest.raises(UserError) as error:
        rebuild(Reporter(), lockfile, output, cache_dir=tmp_path / "cache", recipes=recipes, client=NoEngine(),
                **options)
    assert not output.exists() and not (tmp_path / "cache").exists()
    message = str(error.value)
    assert "\n" not in message and str(lockfile) in message, message
    return message.replace(str(lockfile), "LOCKFILE")


def names(path: tuple) -> tuple[str, str]:
    """How messages name the key at `path`: as the check does (a[0].b) or as read_lock does (a.0.b)."""
    return key_path(*path), ".".join(map(str, path))


@pytest.mark.parametrize("path", sorted((PROJECT_ROOT / "lockfiles").glob("*.json")), ids=lambda path: path.name)
def test_every_committed_lockfile_is_what_the_recipes_give(path, recipes):
    """Also a guard: a change to the recipes or the Dockerfiles that would change a committed build shows here."""
    request = plan_from_lock(read_lock(path), recipes, path)
    assert request.configure_args == () and request.allowed == ()
    assert request.plan.artifact_name == path.stem


def _set(path, value):
    return setting(*path, value)


TARBALL = f"{COMMITTED_NAME}.tar.gz"
SELECTION = "`build.python` '3.13.5', `build.wasi_sdk` 25, `build.provider` 'debian'"


@pytest.mark.parametrize("change, expected", [
    # The case: another build, found out after minutes of building.
    (_set(("build", "configure_host_args"), ["--without-pymalloc"]),
     "`build.configure_host_args[0]` is '--without-pymalloc', the recipes give '--with-pymalloc'"),
    (_set(("build", "configure_host_args"), []), "`build.configure_host_args[0]` is missing, the recipes give "
                                                 "'--with-pymalloc'"),
    (_set(("build", "configure_host_args"), ["--without-pymalloc", "--with-pymalloc"]),
     "`build.configure_host_args[0]` is '--without-pymalloc'"),
    (_set(("build", "source_date_epoch"), 0), "`build.source_date_epoch` is 0, the recipes give 1749600000"),
    (_set(("build", "host_environment", "SOURCE_DATE_EPOCH"), "1"),
     "`build.host_environment.SOURCE_DATE_EPOCH` is '1', the recipes give '1749600000'"),
    (_set(("build", "host_environment", "CC"), "/tmp/cc"), "`build.host_environment.CC` is '/tmp/cc', the recipes give none"),
    (_set(("build", "official_pairing"), True), "`build.official_pairing` is True, the recipes give False"),
    (_set(("build", "target"), "wasm32-wasi"), "`build.target` is 'wasm32-wasi', the recipes give 'wasm32-wasip1'"),
    (_set(("base", "suite"), "sid"), "`base.suite` is 'sid', the recipes give 'trixie'"),
    (_set(("base", "source_date_epoch"), 1), "`base.source_date_epoch` is 1"),
    (_set(("base", "image"), "cpython-wasm/base-debian-trixie:0"), "`base.image` is 'cpython-wasm/base-debian-trixie:0'"),
    (_set(("images", "toolchain", "tag"), "mine:1"), "`images.toolchain.tag` is 'mine:1'"),
    (_set(("images", "native", "context", "dpkg-inventory.py"), "0" * 64),
     '`images.native.context["dpkg-inventory.py"]` is \'' + "0" * 64),
    (_set(("inputs", 0, "sha256"), "0" * 64), "`inputs[0].sha256` is '" + "0" * 64),
    (_set(("inputs", 0, "urls", 0), "https://example.org/Python-3.13.5.tar.xz"),
     "`inputs[0].urls[0]` is 'https://example.org/Python-3.13.5.tar.xz'"),
    (_set(("outputs", "extra.sh"), {"sha256": "0" * 64, "size": 1}),
     "`outputs[\"extra.sh\"]` is {'sha256': '0000"),
    (lambda lock: lock["outputs"].pop("python.wasm"), "`outputs[\"python.wasm\"]` is missing: every build of"),
    (lambda lock: lock.update(artifact="python-3.13.5-other", outputs={
        ("python-3.13.5-other.tar.gz" if name == TARBALL else name): value for name, value in lock["outputs"].items()}),
     f"`artifact` is 'python-3.13.5-other', the recipes give '{COMMITTED_NAME}' for {SELECTION}"),
    (_set(("build", "python"), "3.99.1"), "asks for a build this checkout's recipes do not make "
                                          "(`build.python` '3.99.1', `build.wasi_sdk` 25"),
    (_set(("build", "host_arch"), "riscv64"), "was built on riscv64 (`build.host_arch`)"),
])
def test_a_value_the_recipes_determine_is_compared_before_anything_runs(lock, recipes, tmp_path, no_engine, change,
                                                                       expected):
    change(lock)
    message = refusal(lock, recipes, tmp_path)
    assert expected in message, message
    # No option makes a rebuild use what the recipes determine otherwise.
    assert expected in refusal(lock, recipes, tmp_path, allow_extra_configure_args=True, allow_other_base=True)
    assert "--base-image" not in message and "--debian-mirror" not in message and "--configure-arg" not in message


def test_the_refusal_says_what_to_do(lock, recipes, tmp_path, no_engine):
    lock["build"]["configure_host_args"] = ["--without-pymalloc"]
    message = refusal(lock, recipes, tmp_path)
    assert "Nothing was built" in message and "check out the commit that wrote it (`git log -1 -- " in message
    assert "--allow" not in message  # no option would help


@pytest.mark.parametrize("extra", [["--with-pydebug"], ["--with-lto=thin", "--enable-optimizations"]])
def test_extra_configure_arguments_are_used_only_when_allowed_and_printed_first(lock, recipes, tmp_path, no_engine,
                                                                               extra, capsys):
    lock["build"]["configure_host_args"] += extra
    message = refusal(lock, recipes, tmp_path)
    assert f"`build.configure_host_args[1]` is {extra[0]!r}, the recipes give none (used only with " \
           f"--allow-extra-configure-args)" in message
    assert "pass --allow-extra-configure-args" in message and "git log" not in message
    request = plan_from_lock(lock, recipes, COMMITTED_LOCKFILE, allow_extra_configure_args=True)
    assert request.configure_args == tuple(extra)
    # rebuild() prints them, then builds: here the engine is reached, after the check and the warning.
    with pytest.raises(pytest.fail.Exception, match="reached the engine|connected to the engine"):
        lockfile = tmp_path / "lock.json"
        lockfile.write_text(json.dumps(lock))
        rebuild(Reporter(), lockfile, tmp_path / "rebuild", cache_dir=tmp_path / "cache", recipes=recipes,
                client=NoEngine(), allow_extra_configure_args=True,
                profile=profile_path(COMMITTED_LOCKFILE, lock["build"]["pgo"]["file"]))
    printed = capsys.readouterr().err
    for index, argument in enumerate(extra, 1):
        assert f"using the lockfile's `build.configure_host_args[{index}]` {argument!r}" in " ".join(printed.split())


@pytest.mark.parametrize("argument", [
    "CC=/tmp/evil-cc", "CFLAGS=-O0", "ac_cv_func_dlopen=yes", "--with-pydebug; rm -rf /", "--with-x=$(id)",
    "--with-x=`id`", "--prefix=/a b", "--with-x=a\nb", "-j8", "--", "--With-Pydebug", "--with-x='a'", "",
])
def test_an_extra_configure_argument_of_no_allowed_form_is_refused_even_when_allowed(lock, recipes, tmp_path, no_engine,
                                                                                    argument):
    lock["build"]["configure_host_args"] += [argument]
    message = refusal(lock, recipes, tmp_path, allow_extra_configure_args=True)
    # read_lock refuses what no recipe may hold either (a quote, `$`, a newline...); the check, assignments.
    assert (f"`build.configure_host_args[1]` is {argument!r}: expected an option, --name or --name=value" in message
            or "is malformed: key `build.configure_host_args.1`: expected a configure argument" in message), message
    if "=" in argument and not argument.startswith("-"):
        assert "not an assignment such as CC=... or CFLAGS=..., which configure evaluates in its shell" in message


EMSCRIPTEN_LOCKFILE = PROJECT_ROOT / "lockfiles" / "python-3.13.5-emscripten-3.1.69-debian.json"


@pytest.mark.parametrize("arguments, options, expected", [
    # A lockfile cannot put an assignment where the recipe has an option...
    (lambda args: ["ZLIB_CFLAGS=-I/tmp/evil", *args[1:]], {},
     "`build.configure_host_args[0]` is 'ZLIB_CFLAGS=-I/tmp/evil', the recipes give '--with-emscripten-target=browser'"),
    # ...nor add one, even with the option that allows extra arguments.
    (lambda args: [*args, "CC=/tmp/cc"], {"allow_extra_configure_args": True},
     "`build.configure_host_args[3]` is 'CC=/tmp/cc': expected an option"),
])
def test_an_emscripten_lockfile_cannot_change_or_add_assignments(recipes, tmp_path, no_engine, arguments, options,
                                                                 expected):
    lock = read_lock(EMSCRIPTEN_LOCKFILE)
    assert lock["build"]["configure_host_args"] == ["--with-emscripten-target=browser", "--enable-wasm-dynamic-linking",
                                                    "LDFLAGS=-sEXPORTED_RUNTIME_METHODS=FS -sSTACK_SIZE=5MB"]
    lock["build"]["configure_host_args"] = arguments(lock["build"]["configure_host_args"])
    assert expected in refusal(lock, recipes, tmp_path, **options)


def test_a_lockfile_cannot_point_configure_at_another_library(recipes, tmp_path, no_engine):
    """Where configure finds each library is the recipes' to say (build.host_environment), not the lockfile's."""
    lock = read_lock(EMSCRIPTEN_LOCKFILE)
    assert lock["build"]["host_environment"]["ZLIB_CFLAGS"] == "-I/opt/libraries/zlib/include"
    lock["build"]["host_environment"]["ZLIB_CFLAGS"] = "-I/tmp/evil"
    message = refusal(lock, recipes, tmp_path)
    assert "build.host_environment" in message and "ZLIB_CFLAGS" in message and "/tmp/evil" in message, message


@EXAMPLES
@given(argument=st.text(max_size=40) | st.from_regex(r"--[a-z][a-z0-9-]{0,10}(=[A-Za-z0-9_./:,+-]{0,10})?", fullmatch=True))
def test_build_and_rebuild_refuse_the_same_extra_configure_arguments(lock, recipes, tmp_path, argument):
    """One grammar for `invoke build --configure-arg` and a lockfile's extra arguments, and no assignment passes it."""
    lock = copy.deepcopy(lock)
    lock["build"]["configure_host_args"] = ["--with-pymalloc", argument]
    try:
        check_extra_configure_args([argument])
        build_refuses = False
    except UserError as error:
        build_refuses = True
        assert "--configure-arg: expected an option" in str(error) and "\n" not in str(error)
    try:
        request = plan_from_lock(lock, recipes, COMMITTED_LOCKFILE, allow_extra_configure_args=True)
        assert request.configure_args == (argument,)
        rebuild_refuses = False
    except UserError as error:
        rebuild_refuses = True
        assert "`build.configure_host_args[1]`" in str(error) and "\n" not in str(error)
    assert build_refuses == rebuild_refuses
    if not argument.startswith("--") or any(character in argument for character in " \t\n;&|$`'\"\\()<>*?[]{}~#!"):
        assert build_refuses


def test_invoke_build_refuses_an_assignment_as_configure_argument_before_the_engine(tmp_path):
    result = invoke("build", "--python", "3.13.5", "--sdk", "25", "--provider", "debian", "--configure-arg=CC=/tmp/cc",
                    "--build-dir", tmp_path / "build", "--dist-dir", tmp_path / "dist", "--lock-dir", tmp_path / "locks",
                    env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"}, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "--configure-arg: expected an option" in result.stderr and "Traceback" not in result.stderr
    assert "No Docker engine" not in result.stderr
    assert not (tmp_path / "build").exists() and not (tmp_path / "dist").exists()


def relocked(lock: dict, plan) -> dict:
    """`lock` as a build of `plan` would have written it: its base's and images' identities those of the plan."""
    lock["base"]["image"] = images.base_tag(plan)
    for name, spec in (("native", images.native_spec(plan)),
                       ("toolchain", toolchain_spec(plan, lambda pin: Path(pin.sha256)))):
        lock["images"][name]["tag"] = spec.tag
        lock["images"][name]["dockerfile_sha256"] = hashlib.sha256(spec.dockerfile.encode()).hexdigest()
    return lock


SNAPSHOT = "http://snapshot.debian.org/archive/debian/20251201T000000Z/"
REGISTRY_IMAGE = "registry.example.org/debian:trixie@sha256:" + "a" * 64


def test_another_debian_mirror_is_used_only_when_allowed(lock, recipes, tmp_path, no_engine):
    plan = recipes.resolve("3.13.5", 25, "debian", arch=host_arch())
    lock["base"]["mirror"] = SNAPSHOT
    relocked(lock, plan.with_debian_mirror(SNAPSHOT))
    message = refusal(lock, recipes, tmp_path)
    assert (f"`base.mirror` is {SNAPSHOT!r}, the recipes give 'http://deb.debian.org/debian' (used only with "
            f"--allow-other-base)") in message
    assert "pass --allow-other-base" in message and "images" not in message  # its identities are the mirror's
    request = plan_from_lock(lock, recipes, COMMITTED_LOCKFILE, allow_other_base=True)
    assert request.plan.base.mirror == SNAPSHOT and [m.key for m in request.allowed] == ["base.mirror"]


def test_an_allowed_mirror_is_named_when_the_identities_it_gives_differ(lock, recipes, tmp_path, no_engine):
    lock["base"]["mirror"] = SNAPSHOT  # the image tags left as they were: not what that mirror gives
    message = refusal(lock, recipes, tmp_path, allow_other_base=True)
    assert (f"give for {COMMITTED_NAME} (given the lockfile's `base.mirror`, as --allow-other-base allows): "
            f"`base.image` is 'cpython-wasm/base-debian-trixie:0494bbc965090d90a885a650c4799f93'") in message


def test_a_registry_image_is_used_only_when_allowed(lock, recipes, tmp_path, no_engine):
    plan = recipes.resolve("3.13.5", 25, "debian", arch=host_arch())
    lock["base"]["rootfs_sha256"] = None
    relocked(lock, plan.with_base_image(REGISTRY_IMAGE))
    lock["base"]["image"] = REGISTRY_IMAGE
    message = refusal(lock, recipes, tmp_path)
    assert f"`base.image` is {REGISTRY_IMAGE!r}, the recipes give no registry image (the base is bootstrapped" in message
    assert "(used only with --allow-other-base)" in message
    request = plan_from_lock(lock, recipes, COMMITTED_LOCKFILE, allow_other_base=True)
    assert request.plan.base.image == REGISTRY_IMAGE


@pytest.mark.parametrize("image", ["evil", "registry.example.org/debian:trixie", "debian@sha256:" + "a" * 63,
                                   "Debian@sha256:" + "a" * 64, "debian@sha256:" + "a" * 64 + " --privileged"])
def test_a_registry_image_not_pinned_by_digest_is_refused_even_when_allowed(lock, recipes, tmp_path, no_engine, image):
    lock["base"]["rootfs_sha256"] = None
    lock["base"]["image"] = image
    message = refusal(lock, recipes, tmp_path, allow_other_base=True)
    assert f"`base.image` is {image!r}: `base.rootfs_sha256` is null, so the base is a registry image: expected an " \
           f"image pinned by digest" in message
    assert "--base-image" not in message


@pytest.mark.parametrize("mirror, key", [
    ("file:///etc", "base.mirror"), ("http://deb.debian.org/debian\ndeb [trusted=yes] http://evil/ x main", "base.mirror"),
    ("http://deb.debian.org/debian extra", "base.mirror"), ("-", "base.mirror"),
])
def test_a_mirror_that_is_no_plain_url_is_refused_naming_the_key(lock, recipes, tmp_path, no_engine, mirror, key):
    lock["base"]["mirror"] = mirror
    message = refusal(lock, recipes, tmp_path, allow_other_base=True)
    assert f"key `{key}`: expected an http:// or https:// URL" in message
    assert "--debian-mirror" not in message


# Every key whose value the recipes determine, as a path into the committed lockfile (not what a build measures:
# packages installed, the root filesystem's sha256, products' identities, outputs' hashes).
def determined_paths(lock: dict) -> list[tuple]:
    def leaves(value, path):
        if isinstance(value, dict):
            return [leaf for key, item in value.items() for leaf in leaves(item, (*path, key))]
        if isinstance(value, list):
            return [leaf for index, item in enumerate(value) for leaf in leaves(item, (*path, index))]
        return [path]
    images_part = [(*path, key) for path in (("images", "native"), ("images", "toolchain")) for key in ("tag",
                   "dockerfile_sha256")] + [leaf for name in ("native", "toolchain")
                                            for leaf in leaves(lock["images"][name]["context"], ("images", name, "context"))]
    # Not build.pgo: training made the profile, no recipe gives it (test_pgo.py: a profile not the locked one is refused).
    build = {key: value for key, value in lock["build"].items() if key != "pgo"}
    return [*leaves(build, ("build",)), *[("base", key) for key in lock["base"] if key != "rootfs_sha256"],
            *images_part, *leaves(lock["inputs"], ("inputs",))]


def other_value(original):
    if isinstance(original, bool):
        return st.just(not original)
    if isinstance(original, int):
        return st.one_of(st.integers(-(2**64), 2**64), st.sampled_from([0, 1, 2**32 - 1, 2**32])).filter(
            lambda value: value != original)
    return st.one_of(st.text(max_size=30), st.sampled_from([
        original + "x", original[:-1], original.upper(), original + "\n", "--with-pydebug", "CC=/tmp/cc",
        SNAPSHOT, REGISTRY_IMAGE])).filter(lambda value: value != original)


@EXAMPLES
@given(data=st.data())
def test_any_tampered_value_the_recipes_determine_is_refused_naming_its_key(lock, recipes, tmp_path, data):
    """Whatever determined value is changed (or deleted), to whatever: refused in words naming that key, with or
    without the options, before anything is made (read_lock refuses what is of no valid form, the check the rest)."""
    lock = copy.deepcopy(lock)  # the fixture's, the same for every example
    original = json.loads(json.dumps(lock))
    path = data.draw(st.sampled_from(determined_paths(original)), label="key")
    parent = lock
    for key in path[:-1]:
        parent = parent[key]
    delete = data.draw(st.booleans(), label="delete") if isinstance(parent, dict) else False
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(other_value(parent[path[-1]]), label="value")
    options = data.draw(st.fixed_dictionaries({"allow_extra_configure_args": st.booleans(),
                                               "allow_other_base": st.booleans()}), label="options")
    lockfile = tmp_path / "tampered.json"
    lockfile.write_text(json.dumps(lock))
    output = tmp_path / "rebuild"
    with pytest.raises(UserError) as error:
        rebuild(Reporter(), lockfile, output, cache_dir=tmp_path / "cache", recipes=recipes, client=NoEngine(),
                **options)
    message = str(error.value)
    assert "\n" not in message and not output.exists()
    assert any(name in message for name in names(path)), (path, message)


# -- the command line: refused in words, exit 2, before the engine ---------------------------------------------

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}  # an engine reached would say "No Docker engine"


def invoke_rebuild(lockfile, tmp_path, *options):
    output = tmp_path / "rebuild"
    result = invoke("rebuild", "--check", "--lock", lockfile, "--output", output, "--cache-dir", tmp_path / "cache",
                    *options, env=NO_DOCKER, timeout=120)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr and "No Docker engine" not in result.stderr, result.stderr
    assert not output.exists() and not (tmp_path / "cache").exists()
    return " ".join(result.stderr.split())


@pytest.mark.parametrize("arguments, options, expected", [
    (["--without-pymalloc"], [], "`build.configure_host_args[0]` is '--without-pymalloc', the recipes give "
                                 "'--with-pymalloc'"),
    (["--with-pymalloc", "CFLAGS=-O0"], ["--allow-extra-configure-args"],
     "`build.configure_host_args[1]` is 'CFLAGS=-O0': expected an option, --name or --name=value"),
    (["--with-pymalloc", "--with-pydebug"], ["--allow-other-base"],
     "`build.configure_host_args[1]` is '--with-pydebug', the recipes give none (used only with "
     "--allow-extra-configure-args)"),
])
def test_invoke_rebuild_refuses_locked_configure_arguments_before_the_engine(lock, tmp_path, arguments, options,
                                                                             expected):
    lock["build"]["configure_host_args"] = arguments
    lockfile = tmp_path / "lock.json"
    lockfile.write_text(json.dumps(lock))
    stderr = invoke_rebuild(lockfile, tmp_path, *options)
    assert expected in stderr and "Nothing was built" in stderr, stderr


def test_invoke_rebuild_names_the_mirror_key_not_an_option_never_given(lock, tmp_path):
    lock["base"]["mirror"] = "ftp://deb.debian.org/debian"
    lockfile = tmp_path / "lock.json"
    lockfile.write_text(json.dumps(lock))
    stderr = invoke_rebuild(lockfile, tmp_path, "--allow-other-base")
    assert "key `base.mirror`: expected an http:// or https:// URL" in stderr and "--debian-mirror" not in stderr


def test_invoke_rebuild_refuses_an_endless_lockfile(tmp_path):
    stderr = invoke_rebuild("/dev/zero", tmp_path)
    assert "Lockfile /dev/zero is not a regular file" in stderr


def tar_of(files: dict[str, bytes], mtime: int = 1) -> bytes:
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), mtime
            tar.addfile(info, io.BytesIO(data))
    return output.getvalue()


def exporting_engine(exports: dict[str, bytes]) -> SimpleNamespace:
    """A stand-in engine whose containers, created from an image, export the tar given for it."""
    return SimpleNamespace(containers=SimpleNamespace(create=lambda image, **options: SimpleNamespace(
        export=lambda chunk_size: iter([exports[image][:100], exports[image][100:]]), remove=lambda force: None)))


def test_two_images_are_compared_file_by_file():
    """`invoke rebuild` on an image ID that differs: each file of the two file systems that differs, with what
    differs (a stand-in engine whose containers export the tars made here)."""
    engine = exporting_engine({"old": tar_of({"etc/a": b"same", "etc/b": b"old", "etc/gone": b""}),
                               "new": tar_of({"etc/a": b"same", "etc/b": b"new", "etc/added": b""})})
    differences = image_changes(engine, "old", "new")
    assert set(differences) == {"etc/b", "etc/gone", "etc/added"}
    assert differences["etc/gone"][1] == differences["etc/added"][0] == MISSING
    old, new = differences["etc/b"]
    assert old.sha256 == hashlib.sha256(b"old").hexdigest() and new.sha256 == hashlib.sha256(b"new").hexdigest()


@pytest.mark.skipif(shutil.which("diffoscope") is None, reason="diffoscope is not installed (scripts/setup installs it)")
def test_diffoscope_reports_only_the_image_files_whose_contents_differ(tmp_path):
    """diffoscope (real) on the files taken out of both images: those whose contents differ, no others (a file
    only in one image, or differing in its mtime only, is listed by the comparison, not taken out); a name that
    would leave the directory is not written."""
    engine = exporting_engine({
        "old": tar_of({"etc/a": b"same", "etc/conf": b"answer = 41\n", "etc/gone": b"x", "../escape": b"old"}, 1),
        "new": tar_of({"etc/a": b"same", "etc/conf": b"answer = 42\n", "etc/added": b"y", "../escape": b"new"}, 2)})
    changes = image_changes(engine, "old", "new")
    assert set(changes) == {"etc/a", "etc/conf", "etc/gone", "etc/added", "../escape"}  # etc/a: its mtime
    report = _image_diffoscope(engine, "toolchain", "old", "new", changes, tmp_path)
    assert report is not None
    taken = sorted(str(path.relative_to(tmp_path / "images")) for path in tmp_path.rglob("*") if path.is_file()
                   and "images" in path.parts)
    assert taken == ["toolchain/locked/etc/conf", "toolchain/rebuilt/etc/conf"]
    assert not (tmp_path / "escape").exists() and not (tmp_path / "images" / "toolchain" / "escape").exists()
    text = (tmp_path / "diffoscope-image-toolchain.txt").read_text()
    assert "-answer = 41" in text and "+answer = 42" in text


def test_the_report_names_image_files_that_differ_and_images_it_could_not_compare():
    report = RebuildReport("lockfiles/x.json", "build/rebuilds/x", "2026-12-04T00:00:00+00:00",
                           [Difference("images/toolchain/id", "sha256:" + "1" * 64, "sha256:" + "2" * 64)],
                           image_differences=[Difference("toolchain: etc/b", ("0", "0o644"), ("0", "0o600"))],
                           images_not_compared=["native"],
                           image_diffoscope={"toolchain": "build/rebuilds/x/diffoscope-image-toolchain.txt"})
    text = report.as_text()
    assert not report.identical and "files of the images that differ" in text and "toolchain: etc/b" in text
    assert "no per-file comparison of image native" in text and "invoke image-import" in text
    assert "files of image toolchain that differ: build/rebuilds/x/diffoscope-image-toolchain.txt" in text
    assert report.as_dict()["image_differences"][0]["key"] == "toolchain: etc/b"
