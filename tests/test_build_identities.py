"""Which changes rebuild which stage: the identities of the build's products."""

import dataclasses

import pytest

from cpython_wasm.build import Build
from cpython_wasm.paths import Workspace
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes import Recipes

NO_ENGINE = object()  # identities are computed before anything talks to Docker


@pytest.fixture
def plan():
    return Recipes().resolve("3.13.5", 25, "debian", arch="x86_64")


def build_of(plan, tmp_path, configure_args=()):
    workspace = Workspace.from_options(tmp_path / "cache", tmp_path / "build", tmp_path / "dist", tmp_path / "locks")
    return Build(plan, workspace, Reporter(), configure_args=configure_args, client=NO_ENGINE)


def test_the_build_python_is_shared_by_every_sdk(plan, tmp_path):
    other_sdk = dataclasses.replace(plan, sdk=99, toolchain=plan.toolchain.model_copy(
        update={"packages": {**plan.toolchain.packages, "clang-19": "1:19.1.7-9"}}))
    one, two = build_of(plan, tmp_path), build_of(other_sdk, tmp_path)
    assert one.toolchain.tag != two.toolchain.tag
    assert one.build_python_inputs() == two.build_python_inputs()
    assert one.host_inputs("same-build-python") != two.host_inputs("same-build-python")


def test_configure_arguments_change_the_host_but_not_the_build_python(plan, tmp_path):
    plain, custom = build_of(plan, tmp_path), build_of(plan, tmp_path, ["--with-pydebug"])
    assert plain.build_python_inputs() == custom.build_python_inputs()
    assert plain.host_inputs("b") != custom.host_inputs("b")
    # The recipe's own arguments, then the extra ones.
    assert custom.configure_host_args == ["--with-pymalloc", "--with-pydebug"]
    assert custom.host_commands()["configure-host"][-3:] == ["--", "--with-pymalloc", "--with-pydebug"]


def test_the_source_date_epoch_comes_from_the_recipe(plan, tmp_path):
    assert build_of(plan, tmp_path).environment == {"SOURCE_DATE_EPOCH": "1749600000"}
