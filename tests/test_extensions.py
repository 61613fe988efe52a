"""Custom interpreters, their pure logic: extension recipes, names, the stage graph, the refusals (the builds
themselves are in tests/e2e/test_extensions.py)."""

import io
import json
import re
import shutil
import tarfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cpython_wasm.container.extension import config_c, init_symbol
from cpython_wasm.errors import UserError
from cpython_wasm.recipes.artifacts import artifact_name, parse_artifact_name
from cpython_wasm.recipes.grammar import check_module_name, check_project_version, check_recipe_name
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.recipes.schema import ExtensionRecipe
from cpython_wasm.records.lock import describe_build
from cpython_wasm.targets.extensions import check_names, check_target, stdlib_module_names
from cpython_wasm.tools.smoke import check_report, smoke_arguments
from tests.helpers import PROJECT_ROOT, invoke
from tests.test_orchestration import identities, recorded_build

MODULE_NAMES = st.from_regex(check_module_name.pattern, fullmatch=True).filter(lambda name: len(name) <= 128)
LABELS = {"wasi_sdk": "wasi", "emscripten": "emscripten"}


@pytest.fixture(scope="module")
def recipes():
    return Recipes()


@pytest.fixture(scope="module")
def custom(recipes):
    return recipes.resolve("3.13.5", 25, "debian", arch="x86_64", extensions=["simplejson", "markupsafe"])


@given(st.lists(MODULE_NAMES, min_size=2, max_size=2, unique=True))
def test_two_module_names_never_give_one_init_symbol_and_each_is_a_c_identifier(names):
    first, second = map(init_symbol, names)
    assert first != second
    assert re.fullmatch(r"PyInit_[A-Za-z0-9_]+", first)


@given(st.lists(st.tuples(st.from_regex(check_recipe_name.pattern, fullmatch=True),
                          st.from_regex(check_project_version.pattern, fullmatch=True)), max_size=3),
       st.sampled_from(["release", "debian"]))
def test_an_artifact_name_with_extensions_reads_back(extensions, provider):
    name = artifact_name("3.13.5", "wasi_sdk", 25, provider, extensions)
    parsed = parse_artifact_name(f"{name}.devkit.tar.gz", LABELS)
    assert parsed is not None and parsed.extensions == tuple(extensions)
    assert (parsed.release, parsed.target, parsed.sdk, parsed.provider) == ("3.13.5", "wasi", "25", provider)


def test_the_custom_interpreter_is_named_for_its_extensions_sorted_and_fetches_their_sdists(custom):
    assert custom.artifact_name == "python-3.13.5-wasi_sdk-25-debian+markupsafe-3.0.3+simplejson-4.3.0"
    assert custom.stock_artifact_name == "python-3.13.5-wasi_sdk-25-debian"
    assert {"markupsafe-3.0.3.tar.gz", "simplejson-4.3.0.tar.gz"} <= {pin.file for pin in custom.inputs}
    assert {"extension:markupsafe", "extension:simplejson"} <= custom.recipe_paths.keys()
    assert describe_build(custom, [], {}).extensions == ["markupsafe", "simplejson"]
    stock = Recipes().resolve("3.13.5", 25, "debian", arch="x86_64")
    assert "extensions" not in describe_build(stock, [], {}).model_dump(exclude_unset=True)


def test_the_extensions_reuse_every_stage_of_the_stock_build(recipes, custom, tmp_path):
    stock = identities(recorded_build(recipes.resolve("3.13.5", 25, "debian", arch="x86_64"), tmp_path))
    extended = identities(recorded_build(custom, tmp_path / "custom"))
    assert {key: extended[key] for key in stock if key != "package"} == {k: v for k, v in stock.items() if k != "package"}
    assert list(extended)[-4:] == ["extension:markupsafe", "extension:simplejson", "interpreter", "package"]
    stages = recorded_build(custom, tmp_path / "again").stages()
    mounted = {mount.container for mount in stages.package.inputs}
    assert {"/interpreter", "/extensions/markupsafe", "/extensions/simplejson", "/devkit"} <= mounted
    assert "--python-wasm" in stages.package.phases[0].command
    for stage in stages.extensions.values():  # compiled in the toolchain image, against the devkit only
        assert stage.image == stages.host.image and {m.container for m in stage.inputs} >= {"/devkit"}
        assert not any(mount.container.startswith("/cpython") for mount in stage.inputs)


@pytest.mark.parametrize(("names", "expected"), [
    (["nope"], "has no recipe under"),
    (["markupsafe", "markupsafe"], "more than once"),
])
def test_an_unknown_or_repeated_extension_is_refused(recipes, names, expected):
    with pytest.raises(UserError, match=expected):
        recipes.resolve("3.13.5", 25, "debian", extensions=names)


def test_two_extensions_defining_one_name_are_refused_before_building(tmp_path):
    root = tmp_path / "recipes"
    shutil.copytree(PROJECT_ROOT / "recipes", root)
    text = (root / "extensions" / "markupsafe.toml").read_text().replace('name = "markupsafe"\n', 'name = "other"\n', 1)
    (root / "extensions" / "other.toml").write_text(text)
    with pytest.raises(UserError, match="Extensions markupsafe and other both define `markupsafe`"):
        Recipes(root).resolve("3.13.5", 25, "debian", extensions=["other", "markupsafe"])


def test_an_extension_is_refused_on_a_target_without_a_devkit(recipes):
    plan = recipes.resolve("3.13.5", "3.1.69", "debian", "emscripten", extensions=["markupsafe"])
    with pytest.raises(UserError, match="WASI builds only for now"):
        check_target(plan, has_devkit=False)
    result = invoke("build", "--python", "3.13.5", "--target", "emscripten", "--sdk", "3.1.69", "--provider",
                    "debian", "--extension", "markupsafe", "--dry-run")
    assert result.returncode == 2 and "WASI builds only for now" in result.stderr and "Traceback" not in result.stderr


def source_tarball(tmp_path, names) -> str:
    header = "".join(f'"{name}",\n' for name in names).encode()
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "Python-3.13.5.tar.xz"
    with tarfile.open(path, "w:xz") as archive:
        member = tarfile.TarInfo("Python-3.13.5/Python/stdlib_module_names.h")
        member.size = len(header)
        archive.addfile(member, io.BytesIO(header))
    return path


def test_the_standard_library_names_come_from_the_release_and_a_shadowing_extension_is_refused(custom, tmp_path):
    tarball = source_tarball(tmp_path, ["json", "os", "markupsafe"])
    assert stdlib_module_names(tarball) == {"json", "os", "markupsafe"}
    with pytest.raises(UserError, match=r"Extension markupsafe defines `markupsafe`.*would shadow it"):
        check_names(custom, tarball)
    check_names(custom, source_tarball(tmp_path / "other", ["json", "os"]))  # no clash: nothing raised


def extension(**changes) -> dict:
    recipe = {"name": "demo", "version": "1.0", "packages": ["src/demo"], "smoke": "pass",
              "modules": [{"name": "demo._speedups", "sources": ["src/demo/_speedups.c"]}],
              "source": {"file": "demo-1.0.tar.gz", "sha256": "0" * 64}}
    return {**recipe, **changes}


@pytest.mark.parametrize("changes", [
    {"modules": [{"name": "other._c", "sources": ["c.c"]}]},  # in a package it does not list
    {"modules": [{"name": "demo._c", "sources": []}]},
    {"modules": []},
    {"packages": ["src/not-a-package"]},
    {"modules": [{"name": "demo._c", "sources": ["../escape.c"]}]},
    {"modules": [{"name": "demo;rm", "sources": ["c.c"]}]},
    {"version": "1.0-1"},  # would not read back from the artifact's name
])
def test_a_malformed_extension_recipe_is_refused(changes):
    with pytest.raises(ValueError):
        ExtensionRecipe.model_validate(extension(**changes))


@given(st.text(min_size=1, max_size=40))
def test_a_module_name_is_a_dotted_python_identifier_or_refused(name):
    try:
        check_module_name(name)
    except ValueError:
        return
    assert all(part.isidentifier() and part.isascii() for part in name.split("."))


def test_config_c_names_each_module_where_makesetup_adds_its_own():
    template = "#include \"Python.h\"\n/* -- ADDMODULE MARKER 1 -- */\nstruct _inittab _PyImport_Inittab[] = {\n" \
               "/* -- ADDMODULE MARKER 2 -- */\n    {0, 0}\n};\n"
    text = config_c(template, [{"name": "demo._c", "init": init_symbol("demo._c")}])
    assert "extern PyObject* PyInit_demo_2e_5fc(void);\n/* -- ADDMODULE MARKER 1 -- */" in text
    assert '    {"demo._c", PyInit_demo_2e_5fc},\n/* -- ADDMODULE MARKER 2 -- */' in text
    with pytest.raises(SystemExit):
        config_c("no markers", [])


def test_the_smoke_run_checks_each_extension_is_built_in_and_its_c_code_runs(custom):
    arguments = smoke_arguments(["zlib"], custom.extensions)
    request = json.loads(arguments[-1])
    assert request["modules"] == ["zlib"]
    assert request["extensions"]["markupsafe"][0] == ["markupsafe._speedups"]
    report = {"platform": "wasi", "version": "3.13.5", "zlib_roundtrip": True, "json_roundtrip": True,
              "modules": {"zlib": True, "markupsafe": True, "simplejson": "markupsafe._x is not a built-in module"}}
    assert check_report(report, "3.13.5", "wasi", ["zlib", "markupsafe", "simplejson"]) == [
        "simplejson: markupsafe._x is not a built-in module"]
