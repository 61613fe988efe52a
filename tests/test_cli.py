"""The command line as a user meets it: bad input gets one clear paragraph,
a non-zero exit and no traceback."""

import pytest

from cpython_wasm import browser
from cpython_wasm.errors import UserError
from cpython_wasm.recipes import host_arch
from tests.helpers import PROJECT_ROOT, invoke
from tests.synthetic import FILES, NAME, pack


def test_the_tasks_are_listed():
    listing = invoke("--list", check=True).stdout
    for task in ("build", "render", "smoke"):
        assert f"\n  {task} " in listing


@pytest.mark.parametrize("args, expected", [
    (["--python", "3.9"], "no recipe for CPython 3.9"),
    (["--python", "3.13", "--sdk", "99"], "not built with WASI SDK 99"),
    (["--python", "3.13", "--sdk", "25", "--provider", "homebrew"], "Provider 'homebrew' is unknown"),
    (["--python", "3.13", "--sdk", "26"], "wasi-libc issue 617"),
    (["--python", "3.13", "--sdk", "25", "--provider", "debian", "--mirror", "https://example.org/m"], "is a URL"),
    (["--python", "3.13", "--sdk", "25", "--provider", "debian", "--debian-mirror", "ftp://example.org/debian"],
     "--debian-mirror: expected an http:// or https:// URL"),
])
def test_bad_build_requests_are_explained(tmp_path, args, expected):
    result = invoke("build", *args, "--dist-dir", str(tmp_path / "dist"), "--lock-dir", str(tmp_path / "locks"),
                    "--build-dir", str(tmp_path / "build"))
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "dist").exists() and not (tmp_path / "locks").exists()
    if "--mirror" not in args and "--debian-mirror" not in args:
        assert "Supported builds" in result.stderr and "invoke matrix" in result.stderr


def test_without_a_docker_engine_the_error_names_the_script(tmp_path):
    result = invoke("build", "--python", "3.13", "--sdk", "25", "--provider", "debian",
                    "--build-dir", str(tmp_path / "build"), "--cache-dir", str(tmp_path / "cache"),
                    env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    assert result.returncode == 2
    assert "No Docker engine answers" in result.stderr and "scripts/ensure-docker" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cache" / "sha256").exists() or not any((tmp_path / "cache" / "sha256").iterdir())


def test_render_prints_the_dockerfile_on_stdout():
    result = invoke("render", "--python", "3.13", "--sdk", "25", "--provider", "debian", check=True)
    golden = PROJECT_ROOT / "tests" / "golden" / "3.13-wasi_sdk-25-debian.toolchain.Dockerfile"
    if host_arch() == "x86_64":  # the golden file is rendered for x86_64; other hosts pin another wheel
        assert result.stdout == golden.read_text()
    assert result.stdout.startswith("# Rendered from containers/wasi-sdk-debian.Dockerfile.j2")
    assert "# image cpython-wasm/wasi-sdk-25-debian:" in result.stderr


def test_render_rejects_an_unknown_image():
    result = invoke("render", "--python", "3.13", "--sdk", "25", "--provider", "debian", "--image", "bogus")
    assert result.returncode == 2 and "choose one of: toolchain, native" in result.stderr


def test_smoke_without_an_artifact_says_how_to_get_one(tmp_path):
    result = invoke("smoke", "--python", "3.13", "--sdk", "25", "--provider", "debian", "--dist-dir", str(tmp_path))
    assert result.returncode == 2
    assert "No artifact at" in result.stderr and "invoke build" in result.stderr


def test_smoke_in_the_browser_is_for_emscripten_artifacts_only(tmp_path):
    pack(tmp_path, FILES)
    result = invoke("smoke", "--artifact", tmp_path / "dist" / f"{NAME}.tar.gz", "--browser")
    assert result.returncode == 2
    assert "--browser runs an Emscripten artifact in Chromium" in result.stderr and "built for WASI" in result.stderr
    assert "Traceback" not in result.stderr


def test_smoke_of_an_emscripten_artifact_needs_its_lockfile(tmp_path):
    artifact = tmp_path / "python-3.13.5-emscripten-3.1.69-debian.tar.gz"
    artifact.write_bytes(b"")
    result = invoke("smoke", "--artifact", artifact, "--lock-dir", tmp_path / "lockfiles")
    assert result.returncode == 2
    assert "python-3.13.5-emscripten-3.1.69-debian.json does not exist" in result.stderr


def test_the_browser_smoke_run_says_when_chromium_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(browser, "CHROMIUM", str(tmp_path / "no-chromium"))
    with pytest.raises(UserError, match="Chromium is not installed at .*apt-get install chromium"):
        browser.run_in_chromium(tmp_path, "pass")
    assert not (tmp_path / "smoke.html").exists()  # nothing written before the check


@pytest.mark.parametrize("option", ["--build-dir", "--dist-dir", "--lock-dir", "--cache-dir"])
def test_a_directory_option_that_names_a_file_is_refused(tmp_path, option):
    occupied = tmp_path / "occupied"
    occupied.write_text("not a directory")
    for value in (occupied, occupied / "below"):
        result = invoke("build", "--python", "3.13", "--sdk", "25", "--provider", "debian", option, value)
        assert result.returncode == 2, result.stderr
        assert f"{option} {value}" in result.stderr and "a file, not a directory" in result.stderr
        assert "Traceback" not in result.stderr
    assert occupied.read_text() == "not a directory"


@pytest.mark.parametrize("task, option, value", [
    ("test", "--jobs", "two"), ("test", "--jobs", "0"), ("bench", "--rounds", "-1"), ("bench", "--values", "1.5"),
    ("bench", "--startup-runs", "many"),
])
def test_counts_are_whole_numbers(tmp_path, task, option, value):
    result = invoke(task, "--python", "3.13", "--sdk", "25", "--provider", "debian", f"{option}={value}",
                    "--build-dir", tmp_path / "build")
    assert result.returncode == 2, result.stderr
    assert f"{option} {value!r} is not a count" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "build").exists()


def test_fetch_refuses_a_mirror_entry_that_is_not_a_file(tmp_path):
    from cpython_wasm.recipes import Recipes

    source = Recipes().resolve("3.13.5", 25, "debian").release.source
    (tmp_path / "mirror" / "sha256" / source.sha256).mkdir(parents=True)
    result = invoke("fetch", "--python", "3.13.5", "--sdk", "25", "--provider", "debian", "--mirror", tmp_path / "mirror")
    assert result.returncode == 2, result.stderr
    assert "exists and is not a regular file" in result.stderr and "Traceback" not in result.stderr
