"""Image builds as the engine reports them (a stand-in engine that replays a build's stream)."""

import hashlib
import io
import tarfile
from types import SimpleNamespace

import pytest

from cpython_wasm.errors import BuildError
from cpython_wasm.paths import CONTAINERS_DIR, PROJECT_ROOT
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.stages import images
from cpython_wasm.stages.store import Store
from cpython_wasm.targets import toolchain_spec


def test_a_missing_version_is_recognised_when_the_engine_splits_and_colours_apts_error(tmp_path):
    # What the engine sent in a real run: apt's stderr in pieces, each wrapped in colour codes.
    stream = [{"stream": "Reading package lists...\n"},
              {"stream": "\x1b[91mE:\x1b[0m\x1b[91m \x1b[0m\x1b[91mVersion '4.4.1-0.gone' for 'make' was not found\x1b[0m\n"},
              {"error": "The command '/bin/sh -eu -c apt-get update ...' returned a non-zero code: 100"}]
    client = SimpleNamespace(api=SimpleNamespace(build=lambda **options: iter(stream)),
                             images=SimpleNamespace(get=lambda tag: (_ for _ in ()).throw(images.docker.errors.ImageNotFound(tag))))
    spec = images.native_spec(Recipes().resolve("3.13.5", 25, "debian", arch="x86_64"))
    store = Store(tmp_path / "store", tmp_path / "locks", tmp_path / "logs")
    with pytest.raises(BuildError, match="no longer serves make 4.4.1-0.gone"):
        images.ensure_image(client, spec, store, "http://deb.debian.org/debian", 1735689600)
    log = next((tmp_path / "logs").rglob("docker-build.log")).read_text()
    assert "E: Version '4.4.1-0.gone'" in log and "\x1b" not in log


def context_names(spec) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(images.build_context(spec))) as tar:
        return sorted(member.name for member in tar.getmembers())


def test_the_build_context_holds_the_declared_files_and_nothing_else(tmp_path):
    plan = Recipes().resolve("3.13.5", 25, "debian", arch="x86_64")
    cached = tmp_path / "cache"
    cached.mkdir()
    for pin in plan.inputs:  # stand-ins where the cache would hold the pinned inputs
        (cached / pin.sha256).write_bytes(pin.file.encode())
    tools = tmp_path / "store" / "wasmtime-cli"  # where the store would hold the wasmtime CLI taken out
    tools.mkdir(parents=True)
    (tools / "wasmtime").write_bytes(b"a stand-in for the wasmtime CLI")
    spec = toolchain_spec(plan, lambda pin: cached / pin.sha256, SimpleNamespace(path=lambda tool: tools))
    spec = images.ImageSpec(spec.name, spec.dockerfile, tuple((name, hashlib.sha256(path.read_bytes()).hexdigest()
                                                               if path.parent in (cached, tools) else sha256, path)
                                                              for name, sha256, path in spec.files))
    # Stray files beside the declared ones: in containers/files/, in the cache, in the checkout.
    strays = [CONTAINERS_DIR / "files" / "stray-secret.txt", cached / "stray", PROJECT_ROOT / "stray-secret.txt"]
    try:
        for stray in strays:
            stray.write_text("must never reach an engine")
        names = context_names(spec)
    finally:
        for stray in strays:
            stray.unlink(missing_ok=True)
    assert names == sorted(["Dockerfile", *(name for name, _, _ in spec.files)])
    assert "assemble-debian-wasi-sdk.sh" in names and "wasmtime-50.0.1-py3-none-manylinux1_x86_64.whl" in names
    assert "wasmtime" in names


def test_a_context_file_changed_since_it_was_verified_is_refused(tmp_path):
    plan = Recipes().resolve("3.13.5", 25, "debian", arch="x86_64")
    spec = images.native_spec(plan)
    changed = tmp_path / "dpkg-inventory.py"
    changed.write_text("print('not the reviewed script')\n")
    name, sha256, _ = spec.files[0]
    tampered = images.ImageSpec(spec.name, spec.dockerfile, ((name, sha256, changed),))
    with pytest.raises(BuildError, match="changed on disk") as error:
        images.build_context(tampered)
    assert str(changed) in str(error.value) and sha256 in str(error.value)


def test_an_export_the_rules_cannot_normalise_is_one_paragraph_and_loads_nothing(tmp_path):
    """A stand-in engine whose export streams its members out of walk order: the build stops with a BuildError
    (no traceback), and nothing is loaded."""
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w") as tar:
        for name in ("usr", "etc"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
    loaded = []
    container = SimpleNamespace(export=lambda chunk_size: iter([stream.getvalue()]), remove=lambda force: None)
    client = SimpleNamespace(
        api=SimpleNamespace(inspect_image=lambda tag: {"Id": "sha256:" + "1" * 64, "Architecture": "amd64", "Os": "linux"}),
        containers=SimpleNamespace(create=lambda image, **options: container),
        images=SimpleNamespace(load=loaded.append))
    store = Store(tmp_path / "store", tmp_path / "locks", tmp_path / "logs")
    with pytest.raises(BuildError, match="not in walk order at 'etc'") as error:
        images._normalise(client, "cpython-wasm/x:1", 1735689600, store, tmp_path / "logs" / "x")
    assert "docker version" in str(error.value) and "\n" not in str(error.value)
    assert loaded == [] and list(store.store_dir.parent.glob(".image-*")) == []


def test_docker_build_tags_what_it_makes_apart_from_the_tag_of_the_normalised_image(tmp_path):
    """The tag names only a normalised image: a fresh build in another store (a rebuild's) never leaves it naming an
    image a concurrent build would find not normalised (ensure_image then normalises raw_tag into the tag)."""
    calls = []
    client = SimpleNamespace(api=SimpleNamespace(build=lambda **options: calls.append(options) or iter([])))
    spec = images.native_spec(Recipes().resolve("3.13.5", 25, "debian", arch="x86_64"))
    images._docker_build(client, spec, "http://deb.debian.org/debian", tmp_path / "docker-build.log", True)
    assert calls[0]["tag"] == images.raw_tag(spec.tag) and calls[0]["tag"] != spec.tag and calls[0]["nocache"] is True
