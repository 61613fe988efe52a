"""The Emscripten target's runs: how Node runs each layout, and regrtest's options from a release's config.toml."""

import io
import zipfile
from types import SimpleNamespace

import pytest
import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from cpython_wasm.errors import BuildError
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.targets import TARGETS
from cpython_wasm.tools.browser import module_stdlib
from cpython_wasm.tools.smoke import node_command, stdlib_zip

EMSCRIPTEN = TARGETS["emscripten"]


def test_node_runs_python_js_of_3_13_and_node_entry_of_3_14(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    (old / "python.js").write_text("")
    assert node_command("/artifact", None) == (["node", "/artifact/python.js"], {})
    for name in ("python.mjs", "node_entry.mjs", "python3.14.zip"):
        (new / name).write_text("")
    assert stdlib_zip(new).name == "python3.14.zip"
    assert node_command("/a", "python3.14.zip") == (["node", "/a/node_entry.mjs", "--this-program=/a/python"],
                                                    {"PYTHONHOME": "/a", "PYTHONPATH": "/a/python3.14.zip"})
    # The page writes the zip where CPython's own worker does.
    assert module_stdlib(new) == {"url": "python3.14.zip", "path": "/lib/python314.zip",
                                  "dynload": "/lib/python3.14/lib-dynload"}
    assert module_stdlib(old) is None
    (new / "python3.15.zip").write_text("")
    with pytest.raises(BuildError, match="not one python3.X.zip"):
        stdlib_zip(new)


def test_the_benchmark_and_the_test_workers_run_each_layout_as_a_python():
    helper = Recipes().resolve("3.14.6", "6.0.5", "debian", "emscripten")
    runtimes = EMSCRIPTEN.bench_runtimes(helper, "/w")
    assert list(runtimes) == ["node", "node-turbofan"] and EMSCRIPTEN.bench_config(helper, "/w") == {}
    assert runtimes["node"].command == (
        "env", "PYTHONHOME=/w/artifact", "PYTHONPATH=/w/artifact/python3.14.zip",
        "node", "/w/artifact/node_entry.mjs", "--this-program=/w/artifact/python")
    assert runtimes["node-turbofan"].command[3:5] == ("node", "--no-liftoff")  # Node's own option, before the script
    assert not any(runtime.prepare for runtime in runtimes.values())
    assert EMSCRIPTEN.node_interpreter(helper, "/w/artifact", "/w/tests")[2] == (
        "PYTHONPATH=/w/artifact/python3.14.zip:/w/tests")
    browser_flavour = Recipes().resolve("3.13.5", "3.1.69", "debian", "emscripten")
    assert EMSCRIPTEN.bench_runtimes(browser_flavour, "/w")["node"].command == ("env", "node", "/w/artifact/python.js")


def config(tmp_path, text: str):
    path = tmp_path / "Platforms" / "emscripten" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return tmp_path


HELPER = Recipes().resolve("3.14.6", "6.0.5", "debian", "emscripten")
BROWSER_FLAVOUR = Recipes().resolve("3.13.5", "3.1.69", "debian", "emscripten")


def test_regrtest_runs_with_the_releases_own_test_args(tmp_path):
    source = config(tmp_path, 'test-args = ["-m", "test", "-v", "-uall", "--rerun", "--single-process", "-W"]\n')
    # One worker per core instead of --single-process (the workers run the artifact under Node).
    assert EMSCRIPTEN.regrtest_options(HELPER, source, 2) == ["-v", "-uall", "--rerun", "-W", "-j", "2"]
    # 3.13 names none: make test's, as for WASI.
    assert EMSCRIPTEN.regrtest_options(BROWSER_FLAVOUR, tmp_path / "no-such-source", 2) == ["--fast-ci", "-j", "2"]


def test_a_browser_flavour_worker_mounts_the_work_directory_through_the_runner():
    worker = EMSCRIPTEN.test_worker(BROWSER_FLAVOUR, "/work")
    assert worker == ["node", "--stack-size=4000", "/opt/cpython-wasm/run-python-js.cjs", "/work/artifact", "/work",
                      "/usr/local/lib/python3.13", "/work/tests"]
    (runner,) = EMSCRIPTEN.runner_inputs(SimpleNamespace(plan=BROWSER_FLAVOUR))
    assert runner.container == worker[2] and EMSCRIPTEN.runner_inputs(SimpleNamespace(plan=HELPER)) == ()
    assert EMSCRIPTEN.test_worker(HELPER, "/work") == [
        "env", "PYTHONHOME=/work/artifact", "PYTHONPATH=/work/artifact/python3.14.zip:/work/tests",
        "node", "/work/artifact/node_entry.mjs", "--this-program=/work/artifact/python"]


@given(st.text(max_size=30).filter(lambda argument: not argument.startswith("-")
                                    or any(not (c.isascii() and (c.isalnum() or c in "=,-")) for c in argument)),
       st.integers(min_value=0, max_value=3))
def test_test_args_that_are_not_plain_options_are_refused(tmp_path_factory, argument, position):
    # Anything a shell, Node or regrtest could read as more than an option: a space, a quote, `;`, `$(...)`,
    # a path, a test name (only our suites name tests), a non-ASCII letter.
    arguments = ["-v", "-uall", "--rerun", "-W"]
    arguments.insert(position, argument)
    source = config(tmp_path_factory.mktemp("release"), tomli_w.dumps({"test-args": ["-m", "test", *arguments]}))
    with pytest.raises(BuildError, match="not `-m test` followed by regrtest options"):
        EMSCRIPTEN.regrtest_options(HELPER, source, 2)


def test_a_config_without_test_args_is_refused(tmp_path):
    with pytest.raises(BuildError, match="test-args"):
        EMSCRIPTEN.regrtest_options(HELPER, config(tmp_path, 'emscripten-version = "4.0.12"\n'), 2)


def test_the_served_page_is_also_the_servers_root_with_the_isolation_headers(tmp_path):
    import functools
    import urllib.request

    from cpython_wasm.tools.browser import IsolatedHandler, repl_page, served

    (tmp_path / "index.html").write_text("web example")
    (tmp_path / "pyrepl.html").write_text("pyrepl")
    page = repl_page(tmp_path, "pyrepl.html")
    with served(tmp_path, functools.partial(IsolatedHandler, index=page)) as base_url:
        for path, body in (("/", "pyrepl"), ("/?from=test", "pyrepl"), ("/index.html", "web example")):
            with urllib.request.urlopen(base_url + path) as response:
                assert response.read().decode() == body
                assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
                assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert repl_page(tmp_path) == "index.html"


@pytest.mark.parametrize("page", ["python.html", "../index.html", "nothing.html", ""])
def test_a_page_the_artifact_lacks_is_refused_naming_those_it_has(tmp_path, page):
    from cpython_wasm.errors import UserError
    from cpython_wasm.tools.browser import repl_page

    (tmp_path / "index.html").write_text("")
    (tmp_path / "pyrepl.html").write_text("")
    with pytest.raises(UserError, match=r"whose pages are index\.html, pyrepl\.html\. Pass one of them"):
        repl_page(tmp_path, page)


def test_a_python_js_without_fs_is_refused_before_the_test_run_in_one_paragraph(tmp_path):
    """3.11's browser flavour exports no FS (nor did 3.13's before its recipe asked): its test worker could not
    mount Lib/test, so add_tests says so, and what to do, before anything runs; one that exports it is taken."""
    from cpython_wasm.errors import UserError

    plan = Recipes().resolve("3.11.2", "3.1.69", "debian", "emscripten")
    (tmp_path / "artifact").mkdir()
    (tmp_path / "artifact" / "python.js").write_text('var Module = {}; Module["callMain"] = callMain;')
    source = tmp_path / "source"
    (source / "Lib").mkdir(parents=True)
    with pytest.raises(UserError) as refused:
        EMSCRIPTEN.add_tests(plan, tmp_path / "artifact.tar.gz", source, tmp_path)
    message = str(refused.value)
    assert "python.js does not export Emscripten's FS" in message and "\n" not in message
    assert "invoke test --python 3.11.2" in message
    assert not (tmp_path / "tests").exists()
    # Exported: Lib/ beside the preloaded zip, but for what the zip carries.
    stdlib = io.BytesIO()
    with zipfile.ZipFile(stdlib, "w") as archive:
        archive.writestr("json/__init__.pyc", b"")
    (tmp_path / "artifact" / "python.data").write_bytes(stdlib.getvalue())
    (tmp_path / "artifact" / "python.js").write_text(
        f'Module["FS"] = FS; {{"filename": "/lib/python311.zip", "start": 0, "end": {len(stdlib.getvalue())}}}')
    for package in ("json", "http"):
        (source / "Lib" / package).mkdir()
    EMSCRIPTEN.add_tests(plan, tmp_path / "artifact.tar.gz", source, tmp_path)
    assert sorted(path.name for path in (tmp_path / "tests").iterdir()) == ["http"]
