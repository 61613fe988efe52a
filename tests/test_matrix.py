import json

from cpython_wasm.fetch import Fetcher
from cpython_wasm.matrix import matrix_rows
from cpython_wasm.pins import PinnedFile
from cpython_wasm.recipes import Recipes
from tests.helpers import invoke

OFFICIAL = {"3.11": "21", "3.12": "21", "3.13": "24", "3.14": "24", "3.15": "33"}  # PEP 11, as recorded under PEP 816
# CPython's own Platforms/emscripten/config.toml; 3.11-3.13 have no supported Emscripten pairing.
OFFICIAL_EMSDK = {"3.14": "4.0.12", "3.15": "4.0.19"}


def test_every_line_is_listed_with_its_official_pairing():
    rows = matrix_rows(Recipes(), "x86_64", fetcher=None)
    for line, sdk in OFFICIAL.items():
        official = [r for r in rows if r["line"] == line and r["official"] and r["target"] == "wasi"]
        assert official and {(r["sdk"], r["provider"]) for r in official} == {(sdk, "release")}
        assert any(r["latest"] for r in official)
    assert all(r["buildable"] is None for r in rows if r["target"] == "wasi")  # not checked without a fetcher
    assert not any(r["sdk"] in ("26", "27") for r in rows)


def test_emscripten_pairings_are_listed_and_say_which_are_buildable():
    rows = [r for r in matrix_rows(Recipes(), "x86_64", fetcher=None) if r["target"] == "emscripten"]
    official = {(r["line"], r["sdk"]) for r in rows if r["official"]}
    assert official == set(OFFICIAL_EMSDK.items())
    debian = [r for r in rows if r["line"] == "3.13" and r["provider"] == "debian"]
    assert debian and all(r["sdk"] == "3.1.69" and r["buildable"] is None for r in debian)  # availability not checked
    assert debian[0]["artifact"] == f"python-{debian[0]['python']}-emscripten-3.1.69-debian"
    # A helper no driver runs yet is not buildable, whatever its inputs, and the row says why.
    for row in (r for r in rows if r["line"] in OFFICIAL_EMSDK):
        assert row["buildable"] is False and row["missing"] == ["Platforms/emscripten is not driven yet"]


def test_an_architecture_without_an_official_tarball_is_listed_as_not_buildable():
    rows = matrix_rows(Recipes(), "aarch64", fetcher=None)
    sdk21 = [r for r in rows if r["sdk"] == "21" and r["provider"] == "release"]
    assert sdk21 and all(r["buildable"] is False and "no official tarball for aarch64" in r["missing"][0] for r in sdk21)


def test_locate_says_where_a_pin_can_be_had(tmp_path, httpserver):
    httpserver.expect_request("/there", method="HEAD").respond_with_data("")
    httpserver.expect_request("/gone", method="HEAD").respond_with_data("", status=404)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "in-mirror.tar.gz").write_bytes(b"x")
    fetcher = Fetcher(tmp_path / "cache", [mirror])

    def pin(name, *urls):
        return PinnedFile(file=name, sha256="a" * 64, urls=urls)

    assert fetcher.locate(pin("in-mirror.tar.gz")) == str(mirror / "in-mirror.tar.gz")
    assert fetcher.locate(pin("x", httpserver.url_for("/gone"), httpserver.url_for("/there"))) == httpserver.url_for("/there")
    assert fetcher.locate(pin("x", httpserver.url_for("/gone"), "http://no-such-host.invalid/x")) is None
    (tmp_path / "cache" / "sha256" / ("a" * 64)).write_bytes(b"x")
    assert fetcher.locate(pin("x")) == "cache"


def test_matrix_json_is_a_build_matrix_for_ci():
    rows = json.loads(invoke("matrix", "--json", "--no-check", check=True).stdout)
    assert rows == matrix_rows(Recipes(), rows[0]["arch"], fetcher=None)
    for row in rows:
        assert {"python", "sdk", "provider", "target"} <= set(row)
