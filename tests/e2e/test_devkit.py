"""End to end: the default WASI build's devkit verifies, and a C program that embeds Python builds from it alone.

The program (embed.c, shown in the README) and the C module of an extension
it uses (MarkupSafe's, from its sdist) are compiled and linked in the build's
toolchain image (`invoke shell`), without network, as an unprivileged user,
against the unpacked devkit only (no host build tree), with the flags its
DEVKIT.md gives; then it runs under wasmtime with the artifact's standard
library and the extension's pure-Python package.
"""

import shutil
from pathlib import Path

import pytest

from cpython_wasm.container.devkit import DEVKIT_README, embed_flags, sysconfig_variables
from cpython_wasm.inputs.archives import safe_extract
from tests.e2e.conftest import ARTIFACT, SELECTION, sdist
from tests.helpers import invoke

pytestmark = pytest.mark.e2e

PROGRAM = Path(__file__).with_name("embed.c")
PYTHON, SDK, PROVIDER = SELECTION


@pytest.fixture(scope="module")
def devkit(built):
    return built["artifact"].with_name(f"{ARTIFACT}.devkit.tar.gz")


def test_the_devkit_is_published_locked_and_verifies(built, devkit):
    assert built["lock"]["outputs"][devkit.name]["size"] == devkit.stat().st_size
    assert "devkit" in built["lock"]["products"]
    result = invoke("verify", devkit, "--lock", built["lockfile"], check=True)
    assert "every file matches its manifest" in result.stdout
    sums = (devkit.parent / "SHA256SUMS").read_text()
    assert f"  {devkit.name}\n" in sums


def test_a_program_embedding_python_builds_from_the_devkit_alone_and_runs(built, devkit, workspace, tmp_path):
    """As DEVKIT.md tells a user: `invoke shell` opens the build's toolchain image, the artifact and its devkit
    (nothing of the host build) at $DEVKIT; the program, and MarkupSafe's C module from its sdist (as an
    extension author's own build would compile it), are compiled, linked and run there, without network."""
    unpacked = tmp_path / "devkit"
    safe_extract(devkit, unpacked)
    root = unpacked / ARTIFACT
    assert {path.name for path in (root / "lib").glob("*.a")} >= {"libpython3.13.a", "libmpdec.a", "libz.a",
                                                                   "libsqlite3.a"}
    assert (root / "include" / "python3.13" / "pyconfig.h").is_file()
    assert (root / "lib" / "python3.13" / "config-3.13-wasm32-wasi" / "config.c.in").is_file()
    variables = sysconfig_variables(root)
    compile_flags, link_flags = embed_flags(variables, root, "$DEVKIT")
    readme = (root / DEVKIT_README).read_text()
    assert " ".join(compile_flags) in readme and " ".join(link_flags) in readme  # what the devkit tells users
    assert variables["CFLAGS"] in readme
    work = tmp_path / "work"
    safe_extract(sdist("markupsafe"), work / "markupsafe", strip_components=1)
    shutil.copy(PROGRAM, work / "embed.c")
    work.chmod(0o777)  # the container's user writes the objects
    compile_c = f"{variables['CC']} {variables['CFLAGS']} {' '.join(compile_flags)}"
    script = " && ".join([
        f"{compile_c} -c markupsafe/src/markupsafe/_speedups.c -o /tmp/speedups.o",
        f"{compile_c} -c embed.c -o /tmp/embed.o",
        f"{variables['CC']} /tmp/embed.o /tmp/speedups.o {' '.join(link_flags)} -o /tmp/embed.wasm",
        "wasmtime run --dir $DEVKIT::/ --dir markupsafe/src::/src --env PYTHONHOME=/ --env PYTHONPATH=/src "
        "/tmp/embed.wasm",
    ])
    result = invoke("shell", "--python", PYTHON, "--sdk", SDK, "--provider", PROVIDER, "--workdir", work,
                    "--build-dir", workspace["build"], "--dist-dir", workspace["dist"], "--lock-dir", workspace["locks"],
                    "--command", script)
    assert result.returncode == 0, result.stderr
    assert "embedded python 3.13.5" in result.stdout
    assert "computed 42, escaped &lt;b&gt;42&lt;/b&gt;" in result.stdout


def test_the_shell_has_no_network_and_cannot_write_the_devkit(built, workspace, tmp_path):
    result = invoke("shell", "--python", PYTHON, "--sdk", SDK, "--provider", PROVIDER, "--workdir", tmp_path,
                    "--build-dir", workspace["build"], "--dist-dir", workspace["dist"], "--lock-dir", workspace["locks"],
                    "--command", "id -u; touch $DEVKIT/x || echo read-only; getent hosts deb.debian.org || echo offline")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] != "0" and "read-only" in result.stdout and "offline" in result.stdout
