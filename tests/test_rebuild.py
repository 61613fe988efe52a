"""Rebuilding: what a rebuild compares and when it refuses to start (the rebuild itself is in tests/e2e)."""

import copy
import json

import pytest

from cpython_wasm.errors import UserError
from cpython_wasm.rebuild import Difference, RebuildReport, compare, compare_artifacts, flatten, plan_from_lock
from cpython_wasm.recipes import Recipes
from tests.helpers import COMMITTED_LOCKFILE, invoke
from tests.synthetic import FILES, NAME, TAMPERED, pack


def test_flatten_names_packages_and_inputs_by_name(lock):
    flat = flatten(lock)
    assert flat["images/toolchain/packages/wasi-libc/version"] == "0.0~git20241209.574b88d-2"
    assert flat["inputs/Python-3.13.5.tar.xz/sha256"] == lock["inputs"][0]["sha256"]
    assert flat["build/configure_host_args"] == ["--with-pymalloc"]


def test_compare_lists_exactly_the_keys_that_differ(lock):
    assert compare(lock, copy.deepcopy(lock)) == []
    rebuilt = copy.deepcopy(lock)
    rebuilt["outputs"]["python.wasm"]["sha256"] = "0" * 64
    next(p for p in rebuilt["images"]["native"]["packages"] if p["name"] == "apt")["version"] = "9.9"
    del rebuilt["outputs"]["manifest.json"]
    assert compare(lock, rebuilt) == [
        Difference("images/native/packages/apt/version", "3.0.4", "9.9"),
        Difference("outputs/manifest.json/sha256", lock["outputs"]["manifest.json"]["sha256"], None),
        Difference("outputs/manifest.json/size", lock["outputs"]["manifest.json"]["size"], None),
        Difference("outputs/python.wasm/sha256", lock["outputs"]["python.wasm"]["sha256"], "0" * 64),
    ]


def test_compare_artifacts_names_each_differing_file_with_both_hashes(tmp_path):
    original = tmp_path / "original"
    original.mkdir()
    pack(original, FILES)
    rebuilt = tmp_path / "rebuilt"
    rebuilt.mkdir()
    pack(rebuilt, {**FILES, "python.wasm": TAMPERED, "extra.py": b""})
    differences = compare_artifacts(original / "dist" / f"{NAME}.tar.gz", rebuilt / "dist" / f"{NAME}.tar.gz")
    assert [d.key for d in differences] == ["extra.py", "manifest.json", "python.wasm"]
    assert differences[0].expected == "(missing)"
    assert len(differences[2].expected) == len(differences[2].actual) == 64
    report = RebuildReport("lockfiles/x.json", "build/rebuilds/x", "now", [Difference("outputs/x", "a", "b")],
                           differences, original_artifact="dist/x.tar.gz")
    assert not report.identical
    assert f"python.wasm: {differences[2].expected} → {differences[2].actual}" in report.as_text()


def test_the_plan_and_extra_configure_arguments_come_from_the_lockfile(lock):
    lock["build"]["configure_host_args"] = ["--with-pymalloc", "--with-pydebug"]  # the recipe's, then the extra one
    plan, extra = plan_from_lock(lock, Recipes(), COMMITTED_LOCKFILE)
    assert (plan.release.version, plan.sdk, plan.provider, plan.artifact_name) == ("3.13.5", 25, "debian", lock["artifact"])
    assert extra == ["--with-pydebug"]
    assert plan.base.mirror == lock["base"]["mirror"]


def test_a_lockfile_from_other_recipes_is_refused(lock):
    lock["recipes"]["recipes/cpython/3.13.toml"] = "0" * 64
    with pytest.raises(UserError, match=r"recipes/cpython/3.13.toml differ.*git log -1"):
        plan_from_lock(lock, Recipes(), COMMITTED_LOCKFILE)


def test_invoke_rebuild_refuses_other_recipes_before_building_anything(lock, tmp_path):
    lock["recipes"]["recipes/toolchains/wasi-sdk/25.toml"] = "0" * 64
    lockfile = tmp_path / "lock.json"
    lockfile.write_text(json.dumps(lock))
    output = tmp_path / "rebuild"
    result = invoke("rebuild", "--check", "--lock", lockfile, "--output", output)
    assert result.returncode == 2, result.stderr
    assert "recipes/toolchains/wasi-sdk/25.toml" in result.stderr and "Traceback" not in result.stderr
    assert not output.exists()


def test_invoke_rebuild_refuses_an_unreadable_lockfile(tmp_path):
    lockfile = tmp_path / "lock.json"
    lockfile.write_text("{not json")
    result = invoke("rebuild", "--lock", lockfile)
    assert result.returncode == 2
    assert "cannot be read as JSON" in result.stderr and "Traceback" not in result.stderr


def test_a_lockfile_from_another_architecture_is_refused(lock):
    lock["build"]["host_arch"] = "riscv64"
    with pytest.raises(UserError, match=r"built on riscv64; this machine is .*Rebuild it on an riscv64 machine"):
        plan_from_lock(lock, Recipes(), COMMITTED_LOCKFILE)


def test_invoke_rebuild_refuses_a_directory_that_is_not_empty(tmp_path):
    output = tmp_path / "rebuild"
    output.mkdir()
    (output / "kept.txt").write_text("mine")
    result = invoke("rebuild", "--lock", COMMITTED_LOCKFILE, "--output", output)
    assert result.returncode == 2, result.stderr
    assert "is not empty" in result.stderr and "Traceback" not in result.stderr
    assert [path.name for path in output.iterdir()] == ["kept.txt"]
