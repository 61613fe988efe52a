"""The JavaScript of CPython's REPL pages shipped beside them (cpython_wasm/container/web_assets.py)."""

import io
import json
import tarfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cpython_wasm.container.web_assets import REMOTE_ASSET, parse_web_package, ship_web_packages
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
    assert [w.name for w in recipes.resolve("3.14.6", "6.0.5", "debian", "emscripten").web_packages] == [
        "xterm", "ace-builds"]
    assert recipes.resolve("3.13.5", 25, "debian").web_packages == ()  # WASI has no page
