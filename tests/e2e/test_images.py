"""Images against Debian's real archive and a real engine: a vanished pin explained, and the normalised images
published (`invoke image-export`), loaded on a fresh engine (`invoke image-import`) and built with offline.

That two builds of an image give the same image ID is tested where each kind is built: the native and WASI SDK
(debian) images by the from-nothing rebuild (test_reproducibility.py), the others by their provider's tests
(test_release_provider.py, test_emscripten_helper.py, test_release_emsdk.py), with rebuilt_toolchain_is_identical.
"""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import time

import docker
import pytest

from cpython_wasm.errors import BuildError
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.stages import images
from cpython_wasm.stages.engine import connect, engine_answers
from cpython_wasm.stages.store import Store
from tests.e2e.conftest import ARTIFACT, SELECTION
from tests.helpers import invoke, run, sha256

pytestmark = pytest.mark.e2e


def test_a_pin_the_archive_no_longer_serves_is_explained(built, tmp_path):
    plan = Recipes().resolve(*SELECTION)
    gone = dataclasses.replace(plan, base=plan.base.model_copy(
        update={"packages": {**plan.base.packages, "make": "4.4.1-0.gone"}}))
    store = Store(tmp_path / "store", tmp_path / "locks", tmp_path / "logs")
    with pytest.raises(BuildError) as error:
        images.ensure_image(connect(), images.native_spec(gone), store, plan.base.mirror, plan.base.source_date_epoch)
    message = str(error.value)
    assert "no longer serves make 4.4.1-0.gone" in message
    assert "--debian-mirror" in message and "snapshot.debian.org" in message
    assert not images.image_exists(connect(), images.native_spec(gone).tag)


@pytest.fixture
def fresh_engine(tmp_path_factory):
    """A second Docker engine, empty, beside the session's: its own data root, socket and bridge (made here with
    ip(8): a daemon told --bridge=none deletes the first engine's docker0), and no NAT or iptables rules, so its
    containers reach nothing beyond the bridge. Its URL, for DOCKER_HOST."""
    root = tmp_path_factory.mktemp("engine")
    bridge, socket = f"cwrtest{os.getpid() % 100000}", root / "docker.sock"
    run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    try:
        run(["ip", "addr", "add", "10.213.0.1/24", "dev", bridge], check=True)
        run(["ip", "link", "set", bridge, "up"], check=True)
        log = open(root / "dockerd.log", "w")
        daemon = subprocess.Popen(["dockerd", "--data-root", root / "data", "--exec-root", root / "exec", "--pidfile",
                                   root / "docker.pid", "-H", f"unix://{socket}", f"--bridge={bridge}",
                                   "--iptables=false", "--ip-masq=false"], stdout=log, stderr=subprocess.STDOUT)
        url = f"unix://{socket}"
        deadline = time.monotonic() + 60
        while not (socket.exists() and engine_answers(docker.DockerClient(base_url=url, timeout=5))):
            assert daemon.poll() is None and time.monotonic() < deadline, (root / "dockerd.log").read_text()[-3000:]
            time.sleep(0.5)
        yield url
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        log.close()
        shutil.rmtree(root / "data", ignore_errors=True)
    finally:
        run(["ip", "link", "delete", bridge])


def test_exported_images_load_on_a_fresh_engine_and_build_the_default_artifact_offline(built, workspace, fresh_engine,
                                                                                     tmp_path):
    python, sdk, provider = SELECTION
    selection = ["--python", python, "--sdk", str(sdk), "--provider", provider]
    exported = invoke("image-export", *selection, "--dist-dir", tmp_path / "dist", "--lock-dir", workspace["locks"])
    assert exported.returncode == 0, exported.stderr[-3000:]
    lock = built["lock"]
    archives = sorted((tmp_path / "dist").glob("image-*.tar.gz"))
    assert [archive.name for archive in archives] == sorted(
        f"image-{lock['images'][key]['tag'].split('/')[1].replace(':', '-')}.tar.gz" for key in ("native", "toolchain"))
    checked = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path / "dist", capture_output=True, text=True)
    assert checked.returncode == 0 and checked.stdout.count(": OK") == 2, checked.stdout + checked.stderr

    # A damaged archive is refused before the engine sees it (exit 3, as for any unsafe archive).
    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes(archives[0].read_bytes()[: archives[0].stat().st_size // 2])
    on_fresh = {"DOCKER_HOST": fresh_engine}
    refused = invoke("image-import", damaged, "--lock-dir", workspace["locks"], env=on_fresh)
    assert refused.returncode == 3 and "Traceback" not in refused.stderr, refused.stderr
    engine = docker.DockerClient(base_url=fresh_engine)
    assert engine.images.list(all=True) == []

    for archive in archives:
        loaded = invoke("image-import", archive, "--lock-dir", workspace["locks"], env=on_fresh)
        assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert {image.id: image.tags for image in engine.images.list(all=True)} == {
        lock["images"][key]["id"]: [lock["images"][key]["tag"]] for key in ("native", "toolchain")}

    # A store as a machine that built the earlier stages would have it (hard links of the session's products), but
    # for the devkit and the package: those two stages run in the imported images, on the fresh engine, which has
    # no base image and no network.
    store = tmp_path / "build" / "store"
    store.parent.mkdir()
    run(["cp", "-al", workspace["build"] / "store", store], check=True)
    for key in ("devkit", "package"):
        for path in store.glob(f"{lock['products'][key]}-*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    result = invoke("build", *selection, "--build-dir", tmp_path / "build", "--dist-dir", tmp_path / "out",
                    "--lock-dir", tmp_path / "locks", env=on_fresh)
    assert result.returncode == 0, result.stderr[-6000:]
    done = [line for line in result.stderr.splitlines() if line.startswith("✓ ")]
    assert "✓ image base Debian trixie from http://deb.debian.org/debian: not needed" in result.stderr
    assert [line.split(" (")[0] for line in done if line.startswith("✓ image native") or line.startswith(
        "✓ image wasi")] == [f"✓ image {key}: reused {lock['images'][image]['tag']}"
                             for key, image in (("native-debian-trixie", "native"), ("wasi-sdk-25-debian", "toolchain"))]
    assert any(line.startswith("✓ host: reused") for line in done)
    for stage in ("devkit", "package"):  # run now, in the imported images
        assert any(line.startswith(f"✓ {stage} (") for line in done), (stage, done)
    assert sha256(tmp_path / "out" / f"{ARTIFACT}.tar.gz") == sha256(built["artifact"])
    rebuilt = json.loads((tmp_path / "locks" / f"{ARTIFACT}.json").read_text())
    assert rebuilt["images"] == lock["images"] and rebuilt["outputs"] == lock["outputs"]
    assert {image.id for image in engine.images.list(all=True)} == {lock["images"][key]["id"]
                                                                   for key in ("native", "toolchain")}
