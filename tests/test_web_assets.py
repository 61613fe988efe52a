"""The JavaScript of CPython's REPL pages shipped beside them (cpython_wasm/container/web_assets.py)."""

import io
import json
import tarfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cpython_wasm.container.emscripten_data import point_pyrepl_page
from cpython_wasm.container.web_assets import REMOTE_ASSET, REMOTE_IMPORT, parse_web_package, ship_web_packages
from cpython_wasm.recipes.plan import Recipes

PAGE = """<html><head>
<link rel="stylesheet" href="https://unpkg.com/xterm@4.18.0/css/xterm.css" crossorigin integrity="sha384-x"/>
<script src="https://unpkg.com/xterm@4.18.0/lib/xterm.js" crossorigin integrity="sha384-y"></script>
</head><body><a href="https://github.com/python/cpython">docs</a></body></html>
"""


def npm_tarball(path, members: dict):
    """An npm-style .tgz: name -> bytes (a regular file), or a tarfile.TarInfo to add as it is."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            if isinstance(data, tarfile.TarInfo):
                archive.addfile(data)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def xterm(tmp_path, members=None):
    tarball = npm_tarball(tmp_path / "xterm.tgz", members or {
        "package/lib/xterm.js": b"window.Terminal = 1;", "package/css/xterm.css": b".xterm {}",
        "package/package.json": b"{}"})
    return {"tarball": str(tarball), "directory": "vendor/xterm-4.18.0", "files": [
        {"path": "lib/xterm.js", "url": "https://unpkg.com/xterm@4.18.0/lib/xterm.js"},
        {"path": "css/xterm.css", "url": "https://unpkg.com/xterm@4.18.0/css/xterm.css"}]}


def test_the_files_go_beside_the_page_which_then_loads_them_from_there(tmp_path):
    root = tmp_path / "artifact"
    root.mkdir()
    (root / "python.html").write_text(PAGE)
    assert ship_web_packages(root, [xterm(tmp_path)]) == ["python.html"]
    page = (root / "python.html").read_text()
    assert 'src="vendor/xterm-4.18.0/lib/xterm.js" crossorigin integrity="sha384-y"' in page  # integrity kept
    assert 'href="vendor/xterm-4.18.0/css/xterm.css"' in page
    assert 'href="https://github.com/python/cpython"' in page  # a link is not something the page loads
    assert (root / "vendor/xterm-4.18.0/lib/xterm.js").read_bytes() == b"window.Terminal = 1;"
    assert sorted(p.name for p in (root / "vendor/xterm-4.18.0").rglob("*") if p.is_file()) == ["xterm.css", "xterm.js"]


def test_a_page_that_still_loads_a_script_from_the_network_is_refused(tmp_path):
    root = tmp_path / "artifact"
    root.mkdir()
    (root / "index.html").write_text(PAGE + '<script src="https://cdnjs.cloudflare.com/ajax/libs/ace/1.43.1/ace.js">')
    with pytest.raises(ValueError, match="loads https://cdnjs.cloudflare.com/ajax/libs/ace/1.43.1/ace.js from the network"):
        ship_web_packages(root, [xterm(tmp_path)])


@pytest.mark.parametrize("member", ["symlink", "directory", "huge"])
def test_a_hostile_tarball_gives_no_file(tmp_path, member):
    info = tarfile.TarInfo("package/lib/xterm.js")
    if member == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif member == "directory":
        info.type = tarfile.DIRTYPE
    else:
        info.size = 1 << 30  # declared, not present: refused before any read
    package = xterm(tmp_path, {"package/css/xterm.css": b"", "package/lib/xterm.js": info})
    root = tmp_path / "artifact"
    root.mkdir()
    with pytest.raises((ValueError, tarfile.TarError)):
        ship_web_packages(root, [package])
    assert not (root / "vendor/xterm-4.18.0/lib/xterm.js").exists()


# CPython 3.14.6's web_example_pyrepl_jspi/, as its package stage ships it (the page points at pyrepl.mjs).
PYREPL_PAGE = '<link rel="stylesheet" href="https://unpkg.com/xterm@4.18.0/css/xterm.css"/>\n' \
              '<div id="terminal"></div><script type="module" src="src.mjs"></script>\n'
PYREPL_MODULE = 'import createEmscriptenModule from "./python.mjs";\n' \
                'import { openpty } from "https://unpkg.com/xterm-pty/index.mjs";\n' \
                'import "https://unpkg.com/@xterm/xterm/lib/xterm.js";\n' \
                'const resp = await fetch(`python${major}.${minor}.zip`);\n'


def pyrepl(tmp_path):
    """An artifact with the PyREPL page and its module, and the packages they load."""
    root = tmp_path / "artifact"
    root.mkdir()
    (root / "pyrepl.html").write_text(PYREPL_PAGE)
    (root / "pyrepl.mjs").write_text(PYREPL_MODULE)
    point_pyrepl_page(root / "pyrepl.html")
    pty = npm_tarball(tmp_path / "pty.tgz", {"package/index.mjs": b"export const openpty = 1;"})
    scoped = npm_tarball(tmp_path / "scoped.tgz", {"package/lib/xterm.js": b"globalThis.Terminal = 1;"})
    packages = [xterm(tmp_path),
                {"tarball": str(pty), "directory": "vendor/xterm-pty-0.12.0",
                 "files": [{"path": "index.mjs", "url": "https://unpkg.com/xterm-pty/index.mjs"}]},
                {"tarball": str(scoped), "directory": "vendor/xterm-xterm-6.0.0",
                 "files": [{"path": "lib/xterm.js", "url": "https://unpkg.com/@xterm/xterm/lib/xterm.js"}]}]
    return root, packages


def test_the_modules_a_page_loads_import_the_shipped_files_by_relative_url(tmp_path):
    root, packages = pyrepl(tmp_path)
    assert ship_web_packages(root, packages) == ["pyrepl.html", "pyrepl.mjs"]
    assert 'src="pyrepl.mjs"' in (root / "pyrepl.html").read_text()
    assert 'href="vendor/xterm-4.18.0/css/xterm.css"' in (root / "pyrepl.html").read_text()
    module = (root / "pyrepl.mjs").read_text()
    # An import's relative URL must start with ./ (a bare "vendor/..." is a package name to the browser).
    assert 'import { openpty } from "./vendor/xterm-pty-0.12.0/index.mjs";' in module
    assert 'import "./vendor/xterm-xterm-6.0.0/lib/xterm.js";' in module
    assert 'from "./python.mjs"' in module and "fetch(`python${major}.${minor}.zip`)" in module  # untouched
    assert (root / "vendor/xterm-pty-0.12.0/index.mjs").read_bytes() == b"export const openpty = 1;"


def test_a_module_that_still_imports_from_the_network_is_refused(tmp_path):
    root, packages = pyrepl(tmp_path)
    with pytest.raises(ValueError, match="pyrepl.mjs loads https://unpkg.com/xterm-pty/index.mjs from the network"):
        ship_web_packages(root, packages[:1] + packages[2:])


def test_the_pyrepl_page_must_name_its_module_once(tmp_path):
    page = tmp_path / "pyrepl.html"
    page.write_text(PYREPL_PAGE * 2)
    with pytest.raises(ValueError, match="found 2"):
        point_pyrepl_page(page)


@given(st.sampled_from(["https", "http"]), st.text(alphabet="abcdefghijklmnopqrstuvwxyz/@.-", min_size=1, max_size=30),
       st.sampled_from(['"', "'"]), st.sampled_from(["", "x from ", "{ a, b } from ", "* as m from ", "(", "( "]))
def test_every_remote_import_is_seen(scheme, rest, quote, form):
    url = f"{scheme}://{rest}"
    assert REMOTE_IMPORT.findall(f"import {form}{quote}{url}{quote}{')' if '(' in form else ''};") == [url]
    assert REMOTE_IMPORT.findall(f"import x from {quote}./vendor/{rest}{quote};") == []


def test_a_missing_file_is_an_error(tmp_path):
    package = xterm(tmp_path, {"package/lib/xterm.js": b""})
    with pytest.raises(KeyError, match="css/xterm.css"):
        ship_web_packages(tmp_path, [package])


@given(st.sampled_from(["script", "SCRIPT", "link"]), st.sampled_from(["src", "href", "SRC"]),
       st.sampled_from(['"', "'"]), st.sampled_from(["http", "https"]),
       st.text(alphabet=st.characters(codec="ascii", exclude_characters="\"'<> \t\r\n"), min_size=1, max_size=40),
       st.text(alphabet=" \t\nabc=\"'", max_size=10))
def test_every_remote_script_or_stylesheet_is_seen(tag, attribute, quote, scheme, rest, between):
    between = between.replace(">", "")
    url = f"{scheme}://{rest}"
    html = f"<{tag} {between.replace(quote, '')} {attribute}={quote}{url}{quote}>"
    assert REMOTE_ASSET.findall(html) == [url]


def test_the_package_argument_is_what_the_package_stage_reads():
    from cpython_wasm.targets.target import web_package_argument

    web = Recipes().web_packages["xterm"][1]
    package = parse_web_package(web_package_argument(web))
    assert package["directory"] == "vendor/xterm-4.18.0" and package["tarball"] == "/inputs/xterm-4.18.0.tgz"
    with pytest.raises(ValueError):
        parse_web_package(json.dumps({"tarball": "x"}))


def test_each_line_ships_what_its_page_names():
    recipes = Recipes()
    assert [w.name for w in recipes.resolve("3.13.5", "3.1.69", "debian", "emscripten").web_packages] == ["xterm"]
    for python, emsdk in (("3.14.6", "6.0.5"), ("3.15.0rc2", "6.0.5")):
        assert [w.name for w in recipes.resolve(python, emsdk, "debian", "emscripten").web_packages] == [
            "xterm", "ace-builds", "xterm-pty", "xterm-xterm"]
    assert recipes.resolve("3.13.5", 25, "debian").web_packages == ()  # WASI has no page


@given(st.from_regex(r"(?:@[a-z0-9][a-z0-9._-]{0,20}/)?[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True))
def test_an_npm_name_is_its_purl_once_parsed_back(npm_name):
    from packageurl import PackageURL

    web = Recipes().web_packages["xterm-xterm"][1].model_copy(update={"npm_name": npm_name})
    parsed = PackageURL.from_string(str(web.package_url))
    assert (f"{parsed.namespace}/{parsed.name}" if parsed.namespace else parsed.name) == npm_name
    assert parsed.type == "npm" and parsed.version == "6.0.0"


@pytest.mark.parametrize("npm_name", ["@xterm/xterm/lib", "../xterm", "Xterm", "@/xterm", "xterm@6", "-x", ""])
def test_a_name_npm_would_not_publish_is_refused(npm_name):
    from cpython_wasm.recipes.grammar import check_npm_name

    with pytest.raises(ValueError, match="an npm package name"):
        check_npm_name(npm_name)


def test_the_scoped_package_is_named_by_its_npm_name_in_the_sbom():
    packages = {web.name: web for web in Recipes().resolve("3.14.6", "6.0.5", "debian", "emscripten").web_packages}
    assert str(packages["xterm-xterm"].package_url) == "pkg:npm/%40xterm/xterm@6.0.0"
    assert str(packages["xterm-pty"].package_url) == "pkg:npm/xterm-pty@0.12.0"
