"""The directory options (--cache-dir, --build-dir, --dist-dir, --lock-dir): printable paths that are not
option-like, none inside another, and a warning saying where a symbolic link leads before anything is
written there. The layouts the project itself uses (defaults, the e2e tests', `invoke rebuild`'s) pass."""

import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from cpython_wasm.errors import UserError
from cpython_wasm.paths import PROJECT_ROOT, Workspace, default_cache_dir
from cpython_wasm.progress import Reporter
from tests.helpers import COMMITTED_LOCKFILE, invoke

OPTIONS = {"cache_dir": "--cache-dir", "build_dir": "--build-dir", "dist_dir": "--dist-dir", "lock_dir": "--lock-dir"}


def recording_reporter():
    return Reporter(Console(file=io.StringIO(), width=10_000, highlight=False, soft_wrap=True))


def apart(tmp_path):
    """Four directories apart from one another, as keyword arguments of Workspace.from_options."""
    return {field: str(tmp_path / field) for field in OPTIONS}


def pairwise_apart(workspace: Workspace) -> bool:
    paths = [os.path.realpath(getattr(workspace, field)) for field in OPTIONS]
    return not any(a == b or a.startswith(b + os.sep) for a in paths for b in paths if a is not b)


# Values a user may mistype or an attacker may craft: control characters, escape sequences, option-likes,
# links, "..", "~", very long names, and plain ones.
TRICKY_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40).map(lambda text: "-" + text),
    st.sampled_from(["", "-rf", "--lock-dir", "a\nb", "a\rb", "\x1b[31mred", "dist\x00", "~", "..", ".", "/", "build",
                     "build/store/dist", "dist/../build", "x" * 300, "/".join(["y" * 200] * 30), "a\u202eb", "a\udcffb"]),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(option=st.sampled_from(sorted(OPTIONS)), value=TRICKY_TEXT)
def test_any_directory_option_is_refused_in_one_printable_paragraph_or_accepted_apart(tmp_path, option, value):
    options = {**apart(tmp_path), option: value}
    try:
        workspace = Workspace.from_options(**options, reporter=recording_reporter())
    except UserError as error:
        message = str(error)
        assert message.isprintable() and OPTIONS[option] in message
        return
    # Accepted: a value without a character that is not printable, not option-like, and apart from the others.
    assert value and value.isprintable() and not value.startswith("-")
    chosen = getattr(workspace, option)
    assert chosen.is_absolute() and chosen == chosen.resolve() and str(chosen).isprintable()
    assert pairwise_apart(workspace)


@pytest.mark.parametrize("value, expected", [
    ("dist\nrm -rf ~", "contains a control character (U+000A)"),
    ("\x1b[2Jdist", "contains a control character (U+001B)"),
    ("dist\u202etxt", "contains RIGHT-TO-LEFT OVERRIDE (U+202E)"),
    ("-rf", "starts with '-', like an option"),
    ("--lock-dir", "starts with '-', like an option"),
    ("", "is empty"),
])
@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_control_characters_and_option_like_values_are_refused(tmp_path, option, value, expected):
    with pytest.raises(UserError) as error:
        Workspace.from_options(**{**apart(tmp_path), option: value})
    assert f"{OPTIONS[option]} {value!r}" in str(error.value) or f"{OPTIONS[option]} is empty" in str(error.value)
    assert expected in str(error.value)
    assert not any(tmp_path.iterdir())  # nothing was made


def test_a_leading_dash_is_accepted_when_written_as_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workspace = Workspace.from_options(**{**apart(tmp_path), "dist_dir": "./-rf"})
    assert workspace.dist_dir == tmp_path / "-rf"


@pytest.mark.parametrize("inner, outer, place", [
    ("dist_dir", "build_dir", "store/dist"),  # the artifacts inside the store
    ("lock_dir", "dist_dir", "lockfiles"),
    ("cache_dir", "build_dir", "cache"),
    ("build_dir", "cache_dir", "build"),
    ("dist_dir", "lock_dir", ""),  # the same directory
])
def test_overlapping_directories_are_refused(tmp_path, inner, outer, place):
    options = apart(tmp_path)
    options[inner] = os.path.join(options[outer], place) if place else options[outer]
    with pytest.raises(UserError) as error:
        Workspace.from_options(**options)
    message = str(error.value)
    relation = "inside" if place else "the same directory as"
    assert f"{OPTIONS[inner]} {options[inner]} is {relation} {OPTIONS[outer]} {options[outer]}" in message or \
        f"{OPTIONS[outer]} {options[outer]} is {relation} {OPTIONS[inner]} {options[inner]}" in message
    assert "each need a directory of their own" in message
    assert not any(tmp_path.iterdir())


def test_an_overlap_through_a_symbolic_link_is_refused_and_the_link_named(tmp_path):
    options = apart(tmp_path)
    (tmp_path / "build_dir" / "store").mkdir(parents=True)
    (tmp_path / "innocent").symlink_to(tmp_path / "build_dir" / "store", target_is_directory=True)
    options["dist_dir"] = str(tmp_path / "innocent")
    reporter = recording_reporter()
    with pytest.raises(UserError, match="--dist-dir .*build_dir/store is inside --build-dir"):
        Workspace.from_options(**options, reporter=reporter)
    assert f"--dist-dir {tmp_path / 'innocent'} goes through a symbolic link: it is {tmp_path / 'build_dir' / 'store'}" \
        in reporter.console.file.getvalue()


def test_an_overlap_with_a_default_names_the_default(tmp_path):
    with pytest.raises(UserError, match=f"--dist-dir {PROJECT_ROOT / 'build' / 'store' / 'x'} is inside the default "
                                        f"--build-dir {PROJECT_ROOT / 'build'}"):
        Workspace.from_options(cache_dir=str(tmp_path / "cache"), dist_dir=str(PROJECT_ROOT / "build" / "store" / "x"))


def test_a_path_through_a_symbolic_link_is_named_with_where_it_leads(tmp_path):
    (tmp_path / "system").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "system", target_is_directory=True)
    reporter = recording_reporter()
    workspace = Workspace.from_options(**{**apart(tmp_path), "lock_dir": str(tmp_path / "link" / "lockfiles")},
                                       reporter=reporter)
    assert workspace.lock_dir == tmp_path / "system" / "lockfiles"
    assert (f"--lock-dir {tmp_path / 'link' / 'lockfiles'} goes through a symbolic link: it is "
            f"{tmp_path / 'system' / 'lockfiles'}, and that is where files are written") in reporter.console.file.getvalue()


def test_a_plain_path_warns_of_nothing(tmp_path):
    reporter = recording_reporter()
    Workspace.from_options(**apart(tmp_path), reporter=reporter)
    assert reporter.console.file.getvalue() == ""


# The layouts the project itself uses must keep working.

def test_the_defaults_pass(monkeypatch):
    monkeypatch.delenv("CPYTHON_WASM_BUILD_DIR", raising=False)
    assert Workspace.from_options() == Workspace(default_cache_dir(), PROJECT_ROOT / "build", PROJECT_ROOT / "dist",
                                                 PROJECT_ROOT / "lockfiles")


def test_the_e2e_layout_passes(tmp_path, monkeypatch):
    """tests/e2e/conftest.py: a build directory of its own (or the checkout's build/, shared), dist and lockfiles in
    a temporary root; the workflow test sets CPYTHON_WASM_BUILD_DIR and uses the clone's dist/ and lockfiles/."""
    for build in (tmp_path / "e2e" / "build", PROJECT_ROOT / "build"):
        workspace = Workspace.from_options(build_dir=str(build), dist_dir=str(tmp_path / "e2e" / "dist"),
                                           lock_dir=str(tmp_path / "e2e" / "lockfiles"))
        assert workspace.build_dir == build
    monkeypatch.setenv("CPYTHON_WASM_BUILD_DIR", str(tmp_path / "e2e" / "build"))
    assert Workspace.from_options().build_dir == tmp_path / "e2e" / "build"


def test_an_empty_build_dir_variable_means_the_default(monkeypatch):
    monkeypatch.setenv("CPYTHON_WASM_BUILD_DIR", "")
    assert Workspace.from_options().build_dir == PROJECT_ROOT / "build"


def test_a_bad_build_dir_variable_is_named(monkeypatch):
    monkeypatch.setenv("CPYTHON_WASM_BUILD_DIR", "store\n")
    with pytest.raises(UserError, match="CPYTHON_WASM_BUILD_DIR 'store\\\\n' contains a control character"):
        Workspace.from_options()


@pytest.mark.parametrize("output", [None, "elsewhere"])
def test_the_rebuild_layout_passes(tmp_path, output, monkeypatch):
    """cpython_wasm/tools/rebuild.py: a workspace of its own under build/rebuilds/<artifact>-<time>/ (or --output), whose
    store, dist and lockfiles are siblings: inside the default build/, which is not one of its directories."""
    monkeypatch.delenv("CPYTHON_WASM_BUILD_DIR", raising=False)
    rebuild_dir = (Workspace.from_options().build_dir / "rebuilds" / "python-3.13.5-wasi_sdk-25-debian-20250101T000000Z"
                   if output is None else tmp_path / output)
    workspace = Workspace.from_options(None, rebuild_dir / "build", rebuild_dir / "dist", rebuild_dir / "lockfiles")
    assert workspace.store_dir == rebuild_dir / "build" / "store" and workspace.dist_dir == rebuild_dir / "dist"
    assert not rebuild_dir.exists()  # nothing made while checking


@pytest.mark.parametrize("args, expected", [
    (["--dist-dir", "build/store/dist"], "is inside the default --build-dir"),
    (["--lock-dir", "locks\nx"], "contains a control character (U+000A)"),
    (["--build-dir=-rf"], "starts with '-', like an option"),
])
def test_the_command_line_refuses_them_in_one_paragraph(tmp_path, args, expected):
    result = invoke("build", "--python", "3.13", "--sdk", "25", "--provider", "debian", "--cache-dir", tmp_path / "cache",
                    *args)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "cache").exists() and not (PROJECT_ROOT / "build" / "store" / "dist").exists()
    assert not (PROJECT_ROOT / "-rf").exists()


@pytest.mark.parametrize("task, args", [
    ("bench", ["--python", "3.13", "--sdk", "25", "--provider", "debian"]),
    ("rebuild", ["--lock", str(COMMITTED_LOCKFILE)]),
])
@pytest.mark.parametrize("output, expected", [
    ("results\nx", "contains a control character (U+000A)"),
    ("-out", "starts with '-', like an option"),
])
def test_an_output_directory_option_is_checked_like_the_others(tmp_path, task, args, output, expected):
    result = invoke(task, *args, f"--output={output}", env={"DOCKER_HOST": "unix:///nonexistent"})
    assert result.returncode == 2, result.stderr
    assert f"--output {output!r} {expected}" in result.stderr and "Traceback" not in result.stderr
    assert not (PROJECT_ROOT / "-out").exists()
