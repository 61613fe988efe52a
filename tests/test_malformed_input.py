"""Hostile or malformed recipes and lockfiles: whatever the damage, either it is harmless or a UserError names
the file (and the key, when a key was damaged); never any other exception.

Hypothesis damages copies of the real files: a key deleted, a value of another type, an unknown key, a
sha256 that is no sha256, the text truncated, bytes that are not UTF-8. The command line is then run once
per kind of damage, as a user meets it."""

import json
import re
import shutil
import time
import tomllib

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpython_wasm.errors import UserError
from cpython_wasm.paths import display_path
from cpython_wasm.recipes.plan import RECIPES_DIR, TOOL_RECIPES, Recipes
from cpython_wasm.records.lock import read_lock
from cpython_wasm.tools.rebuild import plan_from_lock
from tests.helpers import COMMITTED_LOCKFILE, invoke
from tests.synthetic import FILES, NAME, WASM, pack
from tests.test_verify_artifact import record

RECIPE_FILES = ["cpython/3.13.toml", "toolchains/wasi-sdk/25.toml", "toolchains/emsdk/3.1.69.toml",
                "libraries/zlib.toml", "base/debian-trixie.toml", "tools/wasmtime.toml", "tools/wasmtime-cli.toml",
                "tools/node.toml", "tests.toml"]
SHA256 = re.compile(r"[0-9a-f]{64}")
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# -- damage ------------------------------------------------------------------------------


def paths_in(data, prefix=()):
    """The path (keys and list indices) of every value in nested dicts and lists."""
    for key, value in data.items() if isinstance(data, dict) else enumerate(data):
        yield (*prefix, key)
        if isinstance(value, dict | list):
            yield from paths_in(value, (*prefix, key))


def at(data, path):
    for key in path:
        data = data[key]
    return data


def toml_values():
    scalars = st.one_of(st.integers(-(2**63), 2**63 - 1), st.booleans(), st.floats(), st.text(max_size=20),
                        st.dates(), st.datetimes())
    return st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=8), scalars, max_size=2))


def json_values():
    scalars = st.one_of(st.none(), st.integers(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=20))
    return st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=8), scalars, max_size=2))


@st.composite
def damage(draw, text: str, parse, dump, values):
    """(the damaged file's bytes, the path of the key it damaged or None) for one kind of damage to `text`."""
    data = parse(text)
    paths = list(paths_in(data))
    hashes = [path for path in paths if isinstance(at(data, path), str) and SHA256.fullmatch(at(data, path))]
    kind = draw(st.sampled_from(["delete", "retype", "unknown key", "truncate", "bytes", *(["sha256"] if hashes else [])]))
    if kind in ("truncate", "bytes"):
        raw = text.encode()
        if kind == "truncate":
            return raw[:draw(st.integers(0, len(raw) - 1))], None
        cut = draw(st.integers(0, len(raw)))
        return raw[:cut] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\x00", b"\xed\xa0\x80"])) + raw[cut:], None
    if kind == "delete":
        path = draw(st.sampled_from(paths))
        del at(data, path[:-1])[path[-1]]
        # A list that loses an element may become too short: that error is the list's.
        key = path[:-1] if isinstance(path[-1], int) else path
    elif kind == "retype":
        path = draw(st.sampled_from(paths))
        original = at(data, path)
        at(data, path[:-1])[path[-1]] = draw(values.filter(lambda value: type(value) is not type(original)))
        key = path
    elif kind == "unknown key":
        parent = draw(st.sampled_from([(), *(path for path in paths if isinstance(at(data, path), dict))]))
        name = draw(st.text(min_size=1, max_size=12).filter(lambda name: name not in at(data, parent)))
        at(data, parent)[name] = draw(values)
        key = (*parent, name)
    else:
        path = draw(st.sampled_from(hashes))
        original = at(data, path)
        at(data, path[:-1])[path[-1]] = draw(st.one_of(
            st.integers(0, 63).map(lambda length: original[:length]),  # too short
            st.text(min_size=1, max_size=3).map(lambda extra: original + extra),  # too long
            st.sampled_from(["g", "G", "-", " ", "é"]).map(lambda bad: original[:-1] + bad),  # not hex
            st.just(original.upper()),  # hex, but not as sha256sum writes it
        ))
        key = path
    return dump(data).encode(), key


def assert_names(error: UserError, path, key: tuple | None):
    """A single paragraph naming the file, and the damaged key (when a key was damaged) as messages show
    keys: dotted, a part that is not printable text by its repr."""
    message = str(error)
    assert display_path(path) in message, message
    if key is not None:
        shown = ".".join(str(part) if str(part).isprintable() else repr(part) for part in key)
        assert shown in message, (shown, message)
    assert "\n" not in message and "Traceback" not in message, message


# -- recipes -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recipes_root(tmp_path_factory):
    """A copy of recipes/ that each example damages one file of, and restores."""
    root = tmp_path_factory.mktemp("recipes") / "recipes"
    shutil.copytree(RECIPES_DIR, root)
    return root


def load_all(root):
    """Everything a build or `invoke test` reads from the recipes."""
    recipes = Recipes(root)
    recipes.tests  # noqa: B018 (a property: tests.toml is read when asked for)
    for name in TOOL_RECIPES:  # each read when asked for too (the CLI by a WASI plan, Node by `invoke bench`)
        recipes.tool(name)
    return recipes


def resolve_all(recipes):
    recipes.resolve("3.13.5", 25, "debian")
    recipes.resolve("3.13.5", "3.1.69", "debian", target="emscripten")


def test_the_recipes_round_trip_unchanged(recipes_root):
    """The damage is done through tomllib and tomli_w: undamaged, their output loads and resolves."""
    for name in RECIPE_FILES:
        path = recipes_root / name
        original = path.read_text()
        path.write_text(tomli_w.dumps(tomllib.loads(original)))
        try:
            resolve_all(load_all(recipes_root))
        finally:
            path.write_text(original)


@pytest.mark.parametrize("name", RECIPE_FILES)
@EXAMPLES
@given(data=st.data())
def test_a_damaged_recipe_is_harmless_or_named(recipes_root, name, data):
    path = recipes_root / name
    original = path.read_text()
    content, key = data.draw(damage(original, tomllib.loads, tomli_w.dumps, toml_values()), label="damage")
    path.write_bytes(content)
    try:
        try:
            recipes = load_all(recipes_root)
        except UserError as error:
            assert_names(error, path, key)
            return
        try:
            resolve_all(recipes)
        except UserError as error:  # what the request resolves to changed: said in terms of the request
            assert "\n" not in str(error)
    finally:
        path.write_text(original)


def test_deeply_nested_toml_is_named(recipes_root):
    path = recipes_root / "tests.toml"
    original = path.read_text()
    path.write_text("suites = " + "[" * 100_000)
    try:
        with pytest.raises(UserError, match=f"Recipe {re.escape(display_path(path))} is not valid TOML"):
            load_all(recipes_root)
    finally:
        path.write_text(original)


def test_a_recipe_naming_another_release_than_its_file_names_the_key(recipes_root):
    path = recipes_root / "toolchains/wasi-sdk/25.toml"
    original = path.read_text()
    path.write_text(original.replace("sdk = 25", "sdk = 26", 1))
    try:
        with pytest.raises(UserError, match=r"25.toml declares `sdk` = 26; its file name says '25'"):
            load_all(recipes_root)
    finally:
        path.write_text(original)


# -- lockfiles -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recipes():
    return Recipes()


@EXAMPLES
@given(data=st.data())
def test_a_damaged_lockfile_is_harmless_or_named(tmp_path, recipes, data):
    text = COMMITTED_LOCKFILE.read_text()
    content, key = data.draw(damage(text, json.loads, lambda lock: json.dumps(lock, indent=1), json_values()),
                             label="damage")
    path = tmp_path / COMMITTED_LOCKFILE.name
    path.write_bytes(content)
    try:
        lock = read_lock(path)
    except UserError as error:
        assert_names(error, path, key)
        return
    # Accepted: then its readers find what they index, or refuse it in words.
    try:
        plan_from_lock(lock, recipes, path)
    except UserError as error:
        assert "\n" not in str(error)


# -- the command line, once per kind of damage ------------------------------------------


def _edit(path, value=None):
    """A damage to a lockfile's text: the value at `path` set to `value`, or deleted (None)."""
    def damage(text: str) -> bytes:
        lock = json.loads(text)
        if value is None:
            del at(lock, path[:-1])[path[-1]]
        else:
            at(lock, path[:-1])[path[-1]] = value
        return json.dumps(lock, indent=1).encode()
    return damage


DAMAGES = {  # name: (the lockfile's text -> its damaged bytes, what the message must say)
    "deleted key": (_edit(("outputs", "python.wasm", "sha256")), "missing key `outputs.python.wasm.sha256`"),
    "wrong type": (_edit(("build", "wasi_sdk"), "25"), "key `build.wasi_sdk`: input should be a valid integer"),
    "unknown key": (_edit(("build", "sdk"), 25), "unknown key `build.sdk`"),
    "not a sha256": (_edit(("outputs", "manifest.json", "sha256"), "z" * 64),
                     "key `outputs.manifest.json.sha256`: expected a sha256"),
    "not an object": (lambda text: b"[]", "has lockfile_version None"),
    "truncated": (lambda text: text[: len(text) // 2].encode(), "cannot be read as JSON"),
    "not UTF-8": (lambda text: b"\xff" + text.encode(), "cannot be read as JSON"),
}


def damaged(tmp_path, lock: dict, name: str):
    """The lockfile `lock`, damaged the way DAMAGES[name] says, in tmp_path; and what its error must say."""
    damage, expected = DAMAGES[name]
    path = tmp_path / "damaged.json"
    path.write_bytes(damage(json.dumps(lock, indent=1)))
    return path, expected


def assert_refused_in_words(result, lockfile, expected):
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    assert str(lockfile) in result.stderr and expected in result.stderr, result.stderr


@pytest.fixture
def synthetic_lock(tmp_path, lock):
    """The committed lockfile, its outputs those of a synthetic artifact of the same name in tmp_path/dist/."""
    root = pack(tmp_path, FILES)
    tarball = tmp_path / "dist" / f"{NAME}.tar.gz"
    lock["outputs"] = {tarball.name: record(tarball.read_bytes()), "python.wasm": record(WASM),
                       "manifest.json": record((root / "manifest.json").read_bytes())}
    return tarball, lock


def test_invoke_verify_accepts_the_undamaged_lockfile(tmp_path, synthetic_lock):
    tarball, lock = synthetic_lock
    lockfile = tmp_path / "lock.json"
    lockfile.write_text(json.dumps(lock))
    result = invoke("verify", tarball, "--lock", lockfile, timeout=120)
    assert result.returncode == 0 and "verified:" in result.stdout, result


@pytest.mark.parametrize("name", DAMAGES)
def test_invoke_verify_refuses_a_damaged_lockfile_in_words(tmp_path, synthetic_lock, name):
    tarball, lock = synthetic_lock
    lockfile, expected = damaged(tmp_path, lock, name)
    assert_refused_in_words(invoke("verify", tarball, "--lock", lockfile, timeout=120), lockfile, expected)


@pytest.mark.parametrize("name", DAMAGES)
def test_invoke_rebuild_refuses_a_damaged_lockfile_before_building_anything(tmp_path, lock, name):
    lockfile, expected = damaged(tmp_path, lock, name)
    output = tmp_path / "rebuild"
    start = time.monotonic()
    result = invoke("rebuild", "--check", "--lock", lockfile, "--output", output, timeout=120)
    assert_refused_in_words(result, lockfile, expected)
    assert time.monotonic() - start < 30
    assert not output.exists()


def test_invoke_rebuild_refuses_a_lockfile_of_outputs_only(tmp_path, lock):
    """Such a lockfile is enough to verify an artifact (read_lock accepts it), not to build one again."""
    lockfile = tmp_path / "outputs-only.json"
    lockfile.write_text(json.dumps({key: lock[key] for key in ("lockfile_version", "artifact", "outputs")}))
    result = invoke("rebuild", "--check", "--lock", lockfile, "--output", tmp_path / "rebuild", timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "records the outputs of" in result.stderr and "not how it was built" in result.stderr
    assert not (tmp_path / "rebuild").exists()
