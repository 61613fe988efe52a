"""Image builds as the engine reports them (a stand-in engine that replays a build's stream)."""

from types import SimpleNamespace

import pytest

from cpython_wasm import images
from cpython_wasm.errors import BuildError
from cpython_wasm.recipes import Recipes
from cpython_wasm.store import Store


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
        images.ensure_image(client, spec, store, "http://deb.debian.org/debian")
    log = next((tmp_path / "logs").rglob("docker-build.log")).read_text()
    assert "E: Version '4.4.1-0.gone'" in log and "\x1b" not in log
