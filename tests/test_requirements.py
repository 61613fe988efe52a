"""The tool's own environment is locked: requirements/*.txt pin every package pyproject.toml asks for, each to
one version with the sha256 of its files. scripts/lock-requirements writes them; scripts/setup installs
requirements/test.txt with --require-hashes, which refuses anything unpinned or unhashed. A dependency added to
pyproject.toml, or a range changed, without running scripts/lock-requirements fails here."""

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.helpers import PROJECT_ROOT

LOCKS = PROJECT_ROOT / "requirements"
PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
RELOCK = "pyproject.toml and the lock disagree: run scripts/lock-requirements (README, Tests) and commit requirements/"


def read_lock(name: str) -> dict[str, tuple[Version, tuple[str, ...]]]:
    """Package name → (pinned version, sha256 hashes), from a pip-compile --generate-hashes file."""
    locked, logical = {}, ""
    for line in (LOCKS / name).read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):  # comments: "# via ..."
            continue
        logical += " " + stripped.removesuffix("\\")
        if stripped.endswith("\\"):  # continued: the hashes
            continue
        requirement_text, _, _ = logical.strip().partition(" --hash=")
        requirement = Requirement(requirement_text)
        pins = [spec for spec in requirement.specifier if spec.operator == "=="]
        assert len(pins) == 1 and len(requirement.specifier) == 1, f"{name}: {requirement} is not pinned to one version"
        hashes = tuple(re.findall(r"--hash=sha256:([0-9a-f]{64})(?=\s|$)", logical))
        assert hashes and logical.count("--hash=") == len(hashes), f"{name}: {requirement.name} has no sha256 hash"
        locked[canonicalize_name(requirement.name)] = (Version(pins[0].version), hashes)
        logical = ""
    assert not logical.strip(), f"{name} ends in a continued line"
    return locked


def assert_pinned(requirements: list[str], locked: dict, lock_name: str) -> None:
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} (pyproject.toml) is not in requirements/{lock_name}. {RELOCK}"
        version = locked[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/{lock_name} pins {requirement.name} {version}, outside pyproject.toml's {text!r}. {RELOCK}")


@pytest.mark.parametrize("lock_name, extras", [("runtime.txt", []), ("test.txt", ["test"])])
def test_the_lock_pins_every_dependency_with_hashes(lock_name, extras):
    locked = read_lock(lock_name)
    wanted = PYPROJECT["project"]["dependencies"] + PYPROJECT["build-system"]["requires"]
    for extra in extras:
        wanted = wanted + PYPROJECT["project"]["optional-dependencies"][extra]
    assert_pinned(wanted, locked, lock_name)


def test_the_runtime_lock_is_the_test_lock_less_the_test_extra():
    runtime, test = read_lock("runtime.txt"), read_lock("test.txt")
    assert {name: runtime[name] for name in runtime} == {name: test[name] for name in runtime}
    assert canonicalize_name("pytest") in test and canonicalize_name("pytest") not in runtime


def test_the_lock_tool_is_locked_too():
    locked = read_lock("lock-tools.txt")
    assert_pinned([line for line in (LOCKS / "lock-tools.in").read_text().splitlines()
                   if line.strip() and not line.startswith("#")], locked, "lock-tools.txt")


def test_a_dependency_missing_from_the_lock_is_noticed():
    locked = read_lock("test.txt")
    with pytest.raises(AssertionError, match="not-a-dependency .* is not in requirements/test.txt. pyproject.toml and"):
        assert_pinned(["not-a-dependency>=2"], locked, "test.txt")
    with pytest.raises(AssertionError, match="outside pyproject.toml's 'wasmtime==1.0'"):
        assert_pinned(["wasmtime==1.0"], locked, "test.txt")
