"""The names of artifacts: made in one place from a plan's parts, and read back by the parser beside it.

    python-<release>-<toolchain label>-<toolchain release>[-<provider>][+<extension>-<version>...][-<flavour>].tar.gz
                                                                                the artifact
    python-...<same>.debug.tar.gz                                               its debug artifact
    python-...<same>.devkit.tar.gz                                              its devkit (WASI)

The debug artifact and the devkit are companions: each unpacks over the
artifact (the same top directory) and has its own manifest.

The provider is left out for "release", the official toolchain. A custom
interpreter (targets/extensions.py) names its extensions, sorted:
python-3.13.5-wasi_sdk-25-debian+markupsafe-3.0.3+simplejson-4.3.0. A flavour (recipes/flavours/) is named
last: python-3.13.5-wasi_sdk-25-debian-snapshot. Each target's toolchain label is data (recipes/plan.py's
TOOLCHAINS): wasi_sdk-25, emscripten-3.1.69.
"""

import re
from typing import NamedTuple

# Written by scripts/verify_artifact.py too (standard library only, it imports nothing of ours):
# tests/test_artifacts.py keeps the two equal.
DEBUG_SUFFIX = ".debug"
DEVKIT_SUFFIX = ".devkit"
COMPANION_SUFFIXES = (DEBUG_SUFFIX, DEVKIT_SUFFIX)
TARBALL = ".tar.gz"
DEFAULT_PROVIDER = "release"
# A flavour's name ends an artifact's: never a provider's (where the provider is left out, "-snapshot" is not one).
FLAVOURS = ("snapshot", "minimal")


class ArtifactName(NamedTuple):
    release: str  # e.g. 3.13.5
    target: str  # e.g. wasi
    sdk: str  # the toolchain's release, as the name spells it
    provider: str
    extensions: tuple[tuple[str, str], ...] = ()  # (name, version) of each extension, as the name lists them
    flavour: str | None = None


# An extension as the name spells it: its recipe name (check_recipe_name) and its version (check_project_version).
_EXTENSION = r"\+([a-z0-9]+(?:[._-][a-z0-9]+)*)-([0-9][A-Za-z0-9.]*)"


def toolchain_name(label: str, sdk, provider: str) -> str:
    """A toolchain as artifact names spell it (wasi_sdk-25-debian); `label` is its target's (TOOLCHAINS)."""
    name = f"{label}-{sdk}"
    return name if provider == DEFAULT_PROVIDER else f"{name}-{provider}"


def artifact_name(release: str, label: str, sdk, provider: str, extensions=(), flavour: str | None = None) -> str:
    """An artifact's name without .tar.gz; `label` is its target's toolchain label (TOOLCHAINS); `extensions`,
    (name, version) pairs, sorted; `flavour`, one of FLAVOURS or None (the stock interpreter)."""
    return f"python-{release}-{toolchain_name(label, sdk, provider)}" + "".join(
        f"+{name}-{version}" for name, version in extensions) + (f"-{flavour}" if flavour else "")


def parse_artifact_name(name: str, labels: dict[str, str]) -> ArtifactName | None:
    """An artifact's name (with or without .tar.gz, .debug, .devkit) read back; None if it is not one. `labels`: each
    toolchain label's target."""
    name = name.removesuffix(TARBALL)
    for suffix in COMPANION_SUFFIXES:
        name = name.removesuffix(suffix)
    flavours = "|".join(FLAVOURS)
    match = re.fullmatch(rf"python-(\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?)-({'|'.join(map(re.escape, labels))})-"
                         rf"([0-9][0-9.]*)(?:-(?!(?:{flavours})$)([a-z]+))?(?P<extensions>(?:{_EXTENSION})*)"
                         rf"(?:-({flavours}))?", name)
    if match is None:
        return None
    release, label, sdk, provider = match.groups()[:4]
    return ArtifactName(release, labels[label], sdk, provider or DEFAULT_PROVIDER,
                        tuple(re.findall(_EXTENSION, match["extensions"])), match.groups()[-1])


def companion_name(tarball_name: str, suffix: str) -> str:
    """A companion's file name beside an artifact's (both with .tar.gz); `suffix` one of COMPANION_SUFFIXES."""
    return tarball_name.removesuffix(TARBALL) + suffix + TARBALL


def debug_artifact_name(tarball_name: str) -> str:
    """The debug artifact's file name beside an artifact's (both with .tar.gz)."""
    return companion_name(tarball_name, DEBUG_SUFFIX)
