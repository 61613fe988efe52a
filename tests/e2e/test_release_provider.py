"""The `release` provider (official WASI SDK tarballs), end to end against a local HTTP server.

github.com is unreachable here, so a stand-in SDK tarball in the official
layout is assembled from the Debian toolchain (tests/e2e/assemble-release-sdk.sh),
served on loopback, pinned by its own hash in a copy of the recipes, and then
downloaded, verified, checked, unpacked and built with, as an official one is.
"""

import tarfile
from pathlib import Path

import pytest

from cpython_wasm.recipes.plan import host_arch
from cpython_wasm.stages.engine import connect
from cpython_wasm.stages.executor import Bind, run_phase
from cpython_wasm.tools.browser import served
from tests.e2e.conftest import SELECTION, build_args
from tests.helpers import invoke, pinned_recipes, sha256

pytestmark = pytest.mark.e2e

PYTHON, SDK, _ = SELECTION
SDK_NAME = f"wasi-sdk-{SDK}.0-{ {'x86_64': 'x86_64', 'aarch64': 'arm64'}[host_arch()] }-linux"


def recipes_pinning(tmp_path: Path, tarball: Path, url: str) -> Path:
    """A copy of recipes/ whose SDK recipe pins `tarball` (at `url`) for this architecture."""
    return pinned_recipes(tmp_path, f"toolchains/wasi-sdk/{SDK}.toml", tarball, url, "tests/e2e/assemble-release-sdk.sh")


@pytest.fixture(scope="module")
def stand_in_sdk(built, tmp_path_factory):
    """The stand-in official tarball, assembled in the Debian SDK image (no network)."""
    directory = tmp_path_factory.mktemp("served")
    run_phase(connect(), built["lock"]["images"]["toolchain"]["tag"], "assemble-release-sdk",
              ["/assemble.sh", SDK_NAME, "19", "/out"],
              [Bind(directory, "/out", writable=True), Bind(Path(__file__).with_name("assemble-release-sdk.sh"), "/assemble.sh")],
              {}, directory.parent / "assemble.log")
    return directory / f"{SDK_NAME}.tar.gz"


def test_an_official_style_tarball_is_downloaded_verified_and_built_with(build, stand_in_sdk, tmp_path):
    with served(stand_in_sdk.parent) as base_url:
        url = f"{base_url}/{stand_in_sdk.name}"
        recipes = recipes_pinning(tmp_path, stand_in_sdk, url)
        release = build(PYTHON, SDK, "release", "--cache-dir", str(tmp_path / "cache"), recipes=recipes)
    log = release["result"].stderr
    assert release["artifact"].name == f"python-{PYTHON}-wasi_sdk-{SDK}.tar.gz"  # official provider: no suffix
    # Every input (the source, the SDK tarball, the libraries' tarballs, the wheel) from the empty cache.
    assert f"0 from the cache, {len(release['lock']['inputs'])} fetched and verified" in log
    assert len(release["lock"]["inputs"]) == 7
    assert f"check {stand_in_sdk.name}" in log and "none absolute, escaping or special" in log
    # Same base and native image as the debian provider: its build python is reused.
    assert "✓ build-python: reused" in log
    assert f"smoke python.wasm under wasmtime: cpython {PYTHON} on wasi" in log
    sdk_input = next(i for i in release["lock"]["inputs"] if i["name"] == stand_in_sdk.name)
    assert (sdk_input["sha256"], sdk_input["urls"]) == (sha256(stand_in_sdk), [url])
    assert release["lock"]["build"]["official_pairing"] is False  # 3.13's official SDK is 24
    assert release["lock"]["images"]["toolchain"]["tag"].startswith(f"cpython-wasm/wasi-sdk-{SDK}-release:")


def test_a_tarball_that_is_not_the_pinned_one_is_refused(workspace, stand_in_sdk, tmp_path):
    recipes = recipes_pinning(tmp_path, stand_in_sdk, "http://placeholder/")
    impostor = tmp_path / "served" / stand_in_sdk.name
    impostor.parent.mkdir()
    impostor.write_bytes(stand_in_sdk.read_bytes()[:-1] + b"\0")
    with served(impostor.parent) as base_url:
        url = f"{base_url}/{stand_in_sdk.name}"
        path = recipes / "toolchains" / "wasi-sdk" / f"{SDK}.toml"
        path.write_text(path.read_text().replace("http://placeholder/", url))
        result = invoke(*build_args(workspace, PYTHON, SDK, "release", "--recipes", str(recipes),
                                    "--cache-dir", str(tmp_path / "cache")))
    assert result.returncode == 3
    assert f"{stand_in_sdk.name} from {url} does not have the pinned content" in result.stderr
    assert sha256(stand_in_sdk) in result.stderr and sha256(impostor) in result.stderr
    assert not (tmp_path / "cache" / "sha256" / sha256(stand_in_sdk)).exists()


def test_a_tarball_with_a_link_leaving_the_tree_is_refused_before_any_image(workspace, stand_in_sdk, tmp_path):
    evil = tmp_path / "served" / stand_in_sdk.name
    evil.parent.mkdir()
    with tarfile.open(evil, "w:gz") as tar:
        for name, kind in ((SDK_NAME, tarfile.DIRTYPE), (f"{SDK_NAME}/bin", tarfile.DIRTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            tar.addfile(info)
        link = tarfile.TarInfo(f"{SDK_NAME}/bin/clang")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../../usr/bin/python3"
        tar.addfile(link)
    with served(evil.parent) as base_url:
        recipes = recipes_pinning(tmp_path, evil, f"{base_url}/{evil.name}")
        result = invoke(*build_args(workspace, PYTHON, SDK, "release", "--recipes", str(recipes),
                                    "--cache-dir", str(tmp_path / "cache")))
    assert result.returncode == 3
    assert "symlink" in result.stderr and "points outside the destination" in result.stderr
    assert "image wasi-sdk" not in result.stderr
