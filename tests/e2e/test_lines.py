"""Other CPython lines, SDKs and bases, end to end: each driven by its own upstream helper."""

import pytest

from cpython_wasm.recipes.plan import Recipes

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("python, sdk, provider", [
    ("3.11.2", 25, "debian"),  # Tools/wasm/wasm_build.py
    # Platforms/WASI, with Debian sid's clang 22 and wasi-libc 161b319 (= WASI SDK 33). (3.13.15 × SDK 33,
    # the same toolchain with Tools/wasm/wasi.py, which 3.13.5 × 25 runs here, is built and locked, not in CI.)
    ("3.15.0rc2", 33, "debian"),
])
def test_the_line_builds_and_its_python_wasm_runs(build, python, sdk, provider):
    result = build(python, sdk, provider)
    plan = Recipes().resolve(python, sdk, provider)
    assert (f"smoke python.wasm under wasmtime: cpython {python} on wasi, zlib 1.3.1; used zlib, bz2, sqlite3, lzma"
            in result["result"].stderr)
    assert result["lock"]["build"]["python"] == python
    packages = {p["name"]: p["version"] for p in result["lock"]["images"]["toolchain"]["packages"]}
    for name, version in plan.toolchain.packages.items():
        assert packages[name] == version
    assert result["lock"]["base"]["suite"] == plan.base.suite
