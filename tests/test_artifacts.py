"""Artifact names: made in one place (recipes/artifacts.py) and read back by the parser beside it."""

from hypothesis import given
from hypothesis import strategies as st

from cpython_wasm.container import devkit, package
from cpython_wasm.recipes.artifacts import (
    COMPANION_SUFFIXES,
    DEBUG_SUFFIX,
    DEVKIT_SUFFIX,
    FLAVOURS,
    ArtifactName,
    artifact_name,
    companion_name,
    debug_artifact_name,
)
from cpython_wasm.recipes.plan import TOOLCHAINS, Recipes, parse_artifact
from cpython_wasm.records.verify import verifier

RELEASES = st.from_regex(r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}((a|b|rc)[0-9])?", fullmatch=True)
SDKS = st.integers(1, 999).map(str) | st.from_regex(r"[0-9]\.[0-9]{1,2}\.[0-9]{1,3}", fullmatch=True)


def test_every_supported_build_is_named_and_read_back(tmp_path):
    for combination in Recipes().combinations():
        plan = Recipes().resolve(combination.version, combination.sdk, combination.provider, combination.target,
                                 arch="x86_64")
        assert parse_artifact(plan.artifact_name) == ArtifactName(
            plan.release.version, plan.target, str(plan.sdk), plan.provider)


@given(RELEASES, st.sampled_from(sorted(TOOLCHAINS)), SDKS, st.sampled_from(["release", "debian"]))
def test_a_name_reads_back_as_what_made_it_with_or_without_its_suffixes(release, target, sdk, provider):
    name = artifact_name(release, TOOLCHAINS[target].artifact_label, sdk, provider)
    expected = ArtifactName(release, target, sdk, provider)
    companions = [companion_name(f"{name}.tar.gz", suffix) for suffix in COMPANION_SUFFIXES]
    for spelled in (name, f"{name}.tar.gz", *companions):
        assert parse_artifact(spelled) == expected


@given(RELEASES, st.sampled_from(sorted(TOOLCHAINS)), SDKS, st.sampled_from(["release", "debian"]),
       st.lists(st.tuples(st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True),
                          st.from_regex(r"[0-9](\.[0-9]{1,2}){0,2}", fullmatch=True)), max_size=2),
       st.sampled_from([None, *FLAVOURS]))
def test_extensions_and_a_flavour_read_back_whatever_the_provider(release, target, sdk, provider, extensions, flavour):
    """A flavour ends the name and is never read as a provider, even where the provider ("release") is left out."""
    name = artifact_name(release, TOOLCHAINS[target].artifact_label, sdk, provider, extensions, flavour)
    assert parse_artifact(name) == ArtifactName(release, target, sdk, provider, tuple(extensions), flavour)
    assert parse_artifact(f"{name}.devkit.tar.gz") == parse_artifact(name)


def test_a_flavours_plan_is_named_after_the_stock_build():
    plan = Recipes().resolve("3.13.5", 25, "debian", flavour="snapshot", arch="x86_64")
    assert plan.artifact_name == "python-3.13.5-wasi_sdk-25-debian-snapshot"
    assert plan.stock_artifact_name == "python-3.13.5-wasi_sdk-25-debian"
    assert parse_artifact(plan.artifact_name).flavour == "snapshot"


@given(st.text(max_size=60))
def test_anything_else_is_no_artifact_name(text):
    parsed = parse_artifact(text)
    if parsed is not None:  # then it is one, spelled as artifact_name spells it
        assert text.startswith(f"python-{parsed.release}-")


def test_the_companions_are_the_verifiers():
    assert COMPANION_SUFFIXES == tuple(verifier.COMPANIONS)
    assert debug_artifact_name("python-3.13.5-wasi_sdk-25.tar.gz") == "python-3.13.5-wasi_sdk-25.debug.tar.gz"
    assert {suffix: manifest for suffix, manifest in verifier.COMPANIONS.items()} == {
        DEBUG_SUFFIX: package.DEBUG_MANIFEST, DEVKIT_SUFFIX: devkit.DEVKIT_MANIFEST}
