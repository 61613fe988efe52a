"""The `release` provider (official WASI SDK tarballs), end to end against a local HTTP server.

github.com is unreachable here, so a stand-in SDK tarball in the official
layout is assembled from the Debian toolchain (tests/e2e/assemble-release-sdk.sh),
served on loopback, pinned by its own hash in a copy of the recipes, and then
downloaded, verified, checked and unpacked into a toolchain image, as an
official one is. zlib's library stage then compiles with its clang, without
network, and a C program linked with it runs under the image's wasmtime.

The rest of a build (configure, make, package, smoke) does not depend on the
provider and is the Debian provider's (test_wasi_build.py), as for the
Emscripten `release` provider (test_release_emsdk.py).
"""

import tarfile
from pathlib import Path

import pytest

from cpython_wasm.build import Build
from cpython_wasm.paths import Workspace
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.plan import Recipes, host_arch
from cpython_wasm.stages.engine import connect
from cpython_wasm.stages.executor import Bind, run_phase
from cpython_wasm.tools.browser import served
from tests.e2e.conftest import SELECTION, build_args, rebuilt_toolchain_is_identical
from tests.helpers import invoke, pinned_recipes, sha256

pytestmark = pytest.mark.e2e

PYTHON, SDK, _ = SELECTION
HELLO = r"""
#include <stdio.h>
#include <zlib.h>
int main(void) { printf("hello from the SDK's clang, zlib %s\n", zlibVersion()); return 0; }
"""
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


def test_an_official_style_tarball_is_downloaded_verified_and_compiles(built, workspace, stand_in_sdk, tmp_path):
    with served(stand_in_sdk.parent) as base_url:
        url = f"{base_url}/{stand_in_sdk.name}"
        plan = Recipes(recipes_pinning(tmp_path, stand_in_sdk, url)).resolve(PYTHON, SDK, "release")
        # The e2e store (base and native images are shared), an empty download cache.
        build = Build(plan, Workspace(tmp_path / "cache", workspace["build"], tmp_path / "dist", tmp_path / "locks"),
                      Reporter())
        files = build.fetch()  # every input, the SDK's members then checked (none absolute, escaping or special)
    assert plan.artifact_name == f"python-{PYTHON}-wasi_sdk-{SDK}"  # official provider: no suffix
    assert set(build.fetcher.origins.values()) - {"cache"} and "cache" not in build.fetcher.origins.values()
    assert sha256(files[plan.sdk_tarball.sha256]) == sha256(stand_in_sdk)
    build.realise_tools()  # the wasmtime CLI the image installs, taken out of its verified archive
    build.ensure_images()
    assert build.toolchain.tag.startswith(f"cpython-wasm/wasi-sdk-{SDK}-release:")
    assert build.native.tag == built["lock"]["images"]["native"]["tag"]  # one native image for both providers
    packages = {p["name"] for p in build.executor.inventory(build.toolchain.tag)}
    assert not any(name.startswith(("clang", "wasi-libc")) for name in packages)  # the toolchain is the tarball's
    rebuilt_toolchain_is_identical(build)

    # zlib's library stage with the unpacked SDK's clang, without network, then a program linked with it, run
    # by the image's wasmtime: what the host stage does with it (the rest of a build is the debian provider's).
    zlib = build.executor.realise(build.stages().libraries["zlib"])
    assert (zlib.path / "lib" / "libz.a").is_file()
    work = tmp_path / "work"
    work.mkdir(mode=0o777)
    work.chmod(0o777)
    (work / "hello.c").write_text(HELLO)
    log = tmp_path / "hello.log"
    run_phase(build.executor.client, build.toolchain.tag, "hello", [
        "sh", "-c", "$WASI_SDK_PATH/bin/clang --target=wasm32-wasip1 -O2 hello.c -I/opt/libraries/zlib/include "
                    "-L/opt/libraries/zlib/lib -lz -o /tmp/hello.wasm && wasmtime run /tmp/hello.wasm"],
        [Bind(work, "/work", writable=True), Bind(zlib.path, "/opt/libraries/zlib")], {}, log, workdir="/work")
    assert "hello from the SDK's clang, zlib 1.3.1" in log.read_text()


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
