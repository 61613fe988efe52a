"""A base image from a registry, pinned by digest, instead of a bootstrapped one.

There is no public registry here, so the test runs Debian's docker-registry
(distribution) on loopback, pushes a base image to it, forgets it locally, and
lets the build pull it back by digest.
"""

import json
import subprocess
import time

import pytest
import requests

from cpython_wasm.errors import BuildError
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.stages import images
from cpython_wasm.stages.engine import connect
from cpython_wasm.stages.store import Store
from tests.e2e.conftest import SELECTION
from tests.helpers import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def registry(tmp_path):
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(json.dumps({  # YAML is a superset of JSON
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "blobs")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }))
    server = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v2/"
    for _ in range(100):
        try:
            if requests.get(url, timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    else:
        server.kill()
        pytest.fail("docker-registry did not start (scripts/setup installs it)")
    yield f"127.0.0.1:{port}"
    server.kill()
    server.wait()


def test_a_base_image_pinned_by_digest_is_pulled_and_used(built, workspace, registry, tmp_path):
    client = connect()
    # A base image that exists nowhere but in the registry: our bootstrapped one, relabelled.
    container = client.containers.create(built["lock"]["base"]["image"], command=["true"])
    repository = f"{registry}/cpython-wasm-test/base"
    try:
        container.commit(repository=repository, tag="probe", changes=['LABEL test="registry base"'])
    finally:
        container.remove(force=True)
    digest = None
    for line in client.images.push(repository, tag="probe", stream=True, decode=True):
        assert "error" not in line, line
        digest = line.get("aux", {}).get("Digest", digest)
    assert digest and digest.startswith("sha256:")
    client.images.remove(f"{repository}:probe", force=True)

    reference = f"{repository}@{digest}"
    plan = Recipes().resolve(*SELECTION).with_base_image(reference)
    store = Store(tmp_path / "store", tmp_path / "locks", tmp_path / "logs")
    pulled = images.ensure_base(client, plan, store)
    assert (pulled.tag, pulled.rootfs_sha256, pulled.reused) == (reference, None, False)
    assert images.ensure_base(client, plan, store).reused
    assert f"FROM {reference}\n" in images.native_spec(plan).dockerfile
    os_release = client.containers.run(reference, ["cat", "/etc/os-release"], remove=True, network_mode="none")
    assert b"trixie" in os_release
    assert not list((tmp_path / "store").iterdir()), "nothing was bootstrapped"

    missing = plan.with_base_image(f"{repository}@sha256:{'0' * 64}")
    with pytest.raises(BuildError, match="Pulling the base image"):
        images.ensure_base(client, missing, store)
    client.images.remove(reference, force=True)
