import os
import stat

import pytest

from cpython_wasm.stages.stage import Phase, Stage, identity
from cpython_wasm.stages.store import Store


def stage(**value) -> Stage:
    """A stage named "thing" whose value differs with `value`."""
    return Stage("thing", "thing", "image", (Phase("make", ("make",), "/"),), tuple(sorted(value.items())), (), "/out", ())


def test_identity_depends_on_content_not_key_order():
    assert identity("x", {"a": 1, "b": [1, 2]}) == identity("x", {"b": [1, 2], "a": 1})
    assert identity("x", {"a": 1}) != identity("x", {"a": 2})
    assert identity("x", {"a": 1}) != identity("y", {"a": 1})


def test_a_product_is_built_once_then_found(tmp_path):
    store = Store(tmp_path / "store", tmp_path / "locks", tmp_path / "logs")
    calls = []

    def builder(directory, log_dir):
        calls.append(directory)
        (directory / "out.txt").write_text("made")

    first = store.realise(stage(v="1"), builder)
    second = store.realise(stage(v="1"), builder)
    assert len(calls) == 1
    assert not first.reused and second.reused
    assert first.path == second.path
    assert (first.path / "out.txt").read_text() == "made"
    assert first.path.name == f"{first.identity}-thing"
    assert first.path.with_name(first.path.name + ".json").is_file()


def test_a_failed_builder_leaves_no_product(tmp_path):
    store = Store(tmp_path / "store", tmp_path / "locks", tmp_path / "logs")

    def failing(directory, log_dir):
        (directory / "half.txt").write_text("half")
        raise RuntimeError("compiler exploded")

    with pytest.raises(RuntimeError):
        store.realise(stage(v="1"), failing)
    assert [p.name for p in (tmp_path / "store").iterdir()] == []


def test_products_are_readable_by_everyone_whatever_the_umask(tmp_path):
    """Containers read products as another user, and modes are reproduced: the umask must leave no trace."""
    store = Store(tmp_path / "store", tmp_path / "locks", tmp_path / "logs")

    def builder(directory, log_dir):
        (directory / "sub").mkdir()
        (directory / "sub" / "data.txt").write_text("data")
        (directory / "tool").write_text("#!/bin/sh\n")
        os.chmod(directory / "tool", 0o700)
        (directory / "link").symlink_to("sub/data.txt")

    previous = os.umask(0o077)
    try:
        product = store.realise(stage(v="1"), builder)
    finally:
        os.umask(previous)
    modes = {path.relative_to(product.path).as_posix(): stat.S_IMODE(path.lstat().st_mode)
             for path in [product.path, *product.path.rglob("*")] if not path.is_symlink()}
    assert modes == {".": 0o755, "sub": 0o755, "sub/data.txt": 0o644, "tool": 0o755}


def test_a_fresh_realisation_replaces_the_product_only_once_it_is_complete(tmp_path):
    store = Store(tmp_path / "store", tmp_path / "locks", tmp_path / "logs")
    first = store.realise(stage(a="1"), lambda directory, log_dir: (directory / "out").write_text("one"))
    with pytest.raises(RuntimeError):
        store.realise(stage(a="1"), lambda directory, log_dir: (_ for _ in ()).throw(RuntimeError("x")), fresh=True)
    assert (first.path / "out").read_text() == "one", "a failed fresh build keeps the old product"
    again = store.realise(stage(a="1"), lambda directory, log_dir: (directory / "out").write_text("two"), fresh=True)
    assert again.path == first.path and not again.reused and (again.path / "out").read_text() == "two"
    assert sorted(path.name for path in (tmp_path / "store").iterdir() if path.name.startswith(".")) == []


def test_what_a_killed_build_left_is_handed_over_before_it_is_removed(tmp_path):
    store = Store(tmp_path / "store", tmp_path / "locks", tmp_path / "logs")
    left = tmp_path / "store" / f".building-{stage(a='1').identity}-thing"
    (left / "half").mkdir(parents=True)
    seen = []
    product = store.realise(stage(a="1"), lambda directory, log_dir: (directory / "out").write_text("x"),
                            abandoned=lambda directory: seen.append((directory, (directory / "half").is_dir())))
    assert seen == [(left, True)] and not left.exists() and (product.path / "out").read_text() == "x"
