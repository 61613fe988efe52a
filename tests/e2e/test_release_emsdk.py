"""The `release` provider of Emscripten (emsdk's prebuilt archive), against a local HTTP server, for the
official pairing of CPython 3.14 (emsdk 4.0.12, Platforms/emscripten/config.toml).

storage.googleapis.com is unreachable here, so a stand-in archive with the
layout of emsdk's wasm-binaries archive is assembled from Debian trixie's
emscripten (tests/e2e/assemble-release-emsdk.sh), served on loopback, pinned
by its own hash in a copy of the recipes in place of 4.0.12's archive for this
machine, and then downloaded, verified, checked and unpacked into the toolchain
image 4.0.12's recipe describes, as the official one is. zlib's library stage
then compiles with its emcc, without network, and a C program linked with it
runs under the image's Node. (The stand-in's compiler is 3.1.69's: what is
tested is the provider, the recipe and the stages, not emscripten 4.0.12.)

The rest of a build (configure, make, package, smoke) does not depend on the
provider and is the Debian provider's (test_emscripten_build.py).
"""

import shutil
from pathlib import Path

import pytest

from cpython_wasm.build import Build
from cpython_wasm.paths import Workspace
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.plan import Recipes, host_arch
from cpython_wasm.stages.engine import connect
from cpython_wasm.stages.executor import Bind, run_phase
from cpython_wasm.tools.browser import served
from tests.e2e.conftest import EMSCRIPTEN_SELECTION, rebuilt_toolchain_is_identical
from tests.helpers import pinned_recipes, sha256

pytestmark = pytest.mark.e2e

PYTHON, EMSDK = "3.14.6", "4.0.12"  # CPython 3.14's own pairing

ARCHIVE = f"emscripten-{EMSDK}-wasm-binaries-{host_arch()}.tar.xz"
HELLO = r"""
#include <stdio.h>
#include <zlib.h>
int main(void) { printf("hello from emcc, zlib %s\n", zlibVersion()); return 0; }
"""


@pytest.fixture(scope="module")
def stand_in_emsdk(build, tmp_path_factory):
    """The stand-in archive, assembled in the Debian emscripten image (no network)."""
    debian = build(*EMSCRIPTEN_SELECTION[:3], target=EMSCRIPTEN_SELECTION[3])
    directory = tmp_path_factory.mktemp("served-emsdk")
    run_phase(connect(), debian["lock"]["images"]["toolchain"]["tag"], "assemble-release-emsdk",
              ["/assemble.sh", "19", f"/out/{ARCHIVE}"],
              [Bind(directory, "/out", writable=True),
               Bind(Path(__file__).with_name("assemble-release-emsdk.sh"), "/assemble.sh")],
              {}, directory.parent / "assemble-emsdk.log")
    return directory / ARCHIVE


def test_an_emsdk_style_archive_is_downloaded_verified_unpacked_and_compiles(stand_in_emsdk, workspace, tmp_path):
    with served(stand_in_emsdk.parent) as base_url:
        url = f"{base_url}/{stand_in_emsdk.name}"
        recipes = pinned_recipes(tmp_path, f"toolchains/emsdk/{EMSDK}.toml", stand_in_emsdk, url,
                                 "tests/e2e/assemble-release-emsdk.sh")
        plan = Recipes(recipes).resolve(PYTHON, EMSDK, "release", "emscripten")
        # The e2e store (base and native images are shared), an empty download cache.
        build = Build(plan, Workspace(tmp_path / "cache", workspace["build"], tmp_path / "dist", tmp_path / "locks"),
                      Reporter())
        # What the toolchain and zlib's stage need: the official pairing's other inputs include libffi 3.4.6,
        # which nothing here serves (`invoke matrix`: not buildable here).
        zlib_recipe = next(library for library in plan.libraries if library.name == "zlib")
        files = build.fetch([plan.sdk_tarball, zlib_recipe.source])
    assert build.fetcher.origins[plan.sdk_tarball.sha256] != "cache"
    assert sha256(files[plan.sdk_tarball.sha256]) == sha256(stand_in_emsdk)
    build.ensure_images()
    assert build.toolchain.tag.startswith(f"cpython-wasm/emsdk-{EMSDK}-release:")
    packages = {p["name"] for p in build.executor.inventory(build.toolchain.tag)}
    assert "nodejs" in packages and "emscripten" not in packages  # the toolchain is the archive's
    rebuilt_toolchain_is_identical(build)

    # zlib's library stage with the unpacked emcc, without network: emcc builds the system libraries (none
    # ships in the archive, and the image is never written) once, in the toolchain cache stage, and the
    # library stage starts its own cache, in its own output, from that one.
    stages = build.stages()
    cache = build.executor.realise(stages.toolchain_cache)
    assert (cache.path / "sysroot" / "lib" / "wasm32-emscripten" / "libc.a").is_file()
    zlib = build.executor.realise(stages.libraries["zlib"])
    assert (zlib.path / "lib" / "libz.a").is_file() and (zlib.path / "emscripten-cache" / "sysroot").is_dir()
    # A program linked with it (that cache copied, not built again), run by the image's Node.
    work = tmp_path / "work"
    shutil.copytree(zlib.path / "emscripten-cache", work / "emscripten-cache")
    for path in [work, *work.rglob("*")]:  # the sealed product is read-only; emcc locks and writes its cache
        path.chmod(0o777 if path.is_dir() else 0o666)
    (work / "hello.c").write_text(HELLO)
    log = tmp_path / "hello.log"
    run_phase(build.executor.client, build.toolchain.tag, "hello", [
        "sh", "-c", "emcc -O2 hello.c -I/opt/libraries/zlib/include -L/opt/libraries/zlib/lib -lz -o hello.js"
                    " && node hello.js"],
        [Bind(work, "/work", writable=True), Bind(zlib.path, "/opt/libraries/zlib")],
        {"EM_CACHE": "/work/emscripten-cache"}, log, workdir="/work")
    assert "hello from emcc, zlib 1.3.1" in log.read_text()
    assert (work / "emscripten-cache" / "sysroot").is_dir()
