"""Rendered Dockerfiles against golden files. After an intended change to a
template, a recipe or a helper file, regenerate them with
`UPDATE_GOLDEN=1 pytest tests/test_render.py` and review the diff."""

import dataclasses
import os
from pathlib import Path

import jinja2
import pytest

from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.recipes.schema import ToolArchive
from cpython_wasm.stages import images
from cpython_wasm.stages.render import render
from cpython_wasm.targets import toolchain_spec

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def plan():
    return Recipes().resolve("3.13", 25, "debian", arch="x86_64")


def cached(pin):
    return Path("/cache/sha256") / pin.sha256


@pytest.mark.parametrize("image", ["native", "toolchain"])
def test_rendered_dockerfiles_match_the_golden_files(plan, image):
    spec = images.native_spec(plan) if image == "native" else toolchain_spec(plan, cached)
    golden = GOLDEN / f"3.13-wasi_sdk-25-debian.{image}.Dockerfile"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(spec.dockerfile)
    assert spec.dockerfile == golden.read_text()


@pytest.mark.parametrize("provider", ["debian", "release"])
def test_rendered_emscripten_dockerfiles_match_the_golden_files(provider):
    plan = Recipes().resolve("3.13.5", "3.1.69", provider, "emscripten", arch="x86_64")
    spec = toolchain_spec(plan, cached)
    golden = GOLDEN / f"3.13-emscripten-3.1.69-{provider}.toolchain.Dockerfile"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(spec.dockerfile)
    assert spec.dockerfile == golden.read_text()
    assert spec.tag.startswith(f"cpython-wasm/emsdk-3.1.69-{provider}:")
    names = [name for name, _, _ in spec.files]
    archive = ["emscripten-3.1.69-wasm-binaries-x86_64.tar.xz"] if provider == "release" else []
    assert names == archive  # the C libraries are stages of their own, not parts of the image
    # Debian's prebuilt cache is frozen: never written, not even while the image is built.
    assert ("ENV EM_FROZEN_CACHE=1" in spec.dockerfile) == (provider == "debian")


def test_image_tags_chain_through_from_lines(plan):
    native = images.native_spec(plan)
    toolchain = toolchain_spec(plan, cached)
    assert f"FROM {images.base_tag(plan)}\n" in native.dockerfile
    assert f"FROM {native.tag}\n" in toolchain.dockerfile
    assert toolchain.tag == f"cpython-wasm/wasi-sdk-25-debian:{toolchain.identity}"


def test_the_context_holds_only_declared_files(plan):
    toolchain = toolchain_spec(plan, cached)
    names = [name for name, _, _ in toolchain.files]
    assert names == ["assemble-debian-wasi-sdk.sh", "wasmtime", "wasmtime-50.0.1-py3-none-manylinux1_x86_64.whl"]
    # The wasmtime CLI is the executable, named by its own pinned sha256 (checked again as the image is built).
    cli = dict((name, sha256) for name, sha256, _ in toolchain.files)["wasmtime"]
    assert cli == plan.wasmtime_cli.executables["x86_64"] and f"printf '%s  %s\\n' {cli} /tmp/wasmtime" in toolchain.dockerfile
    pinned = {pin.file: pin.sha256 for pin in plan.inputs}
    for name, sha256, path in toolchain.files:
        if name in pinned:
            assert sha256 == pinned[name] and path == cached(next(p for p in plan.inputs if p.file == name))


def test_the_image_is_the_same_whichever_archive_carried_the_wasmtime_cli(plan):
    """The official tarball and PyPI's wheel carry the same executable: the image, and every stage in it, is the
    same from either provider (the lockfile still says which archive was fetched, as an input)."""
    release = ToolArchive(file="wasmtime-v49.0.3-x86_64-linux.tar.xz", sha256="1" * 64, size=1,
                          member="wasmtime-v49.0.3-x86_64-linux/wasmtime", urls=["https://example.org/w.tar.xz"],
                          sha256_sources=["a test"])
    cli = plan.wasmtime_cli.model_copy(update={"provider": "release", "providers": {"release": {"x86_64": release}}})
    other = dataclasses.replace(plan, wasmtime_cli=cli)
    assert release in other.inputs and other.inputs != plan.inputs
    assert toolchain_spec(other, cached).tag == toolchain_spec(plan, cached).tag


def test_a_changed_pin_changes_the_image_tag(plan):
    other = plan.toolchain.model_copy(update={"packages": {**plan.toolchain.packages, "clang-19": "1:19.1.7-4"}})
    changed = dataclasses.replace(plan, toolchain=other)
    assert toolchain_spec(changed, cached).tag != toolchain_spec(plan, cached).tag


def test_a_missing_template_value_is_an_error_not_an_empty_string():
    with pytest.raises(jinja2.UndefinedError):
        render("native.Dockerfile.j2", base_image="x")
