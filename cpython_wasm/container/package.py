"""Packaging: the built interpreter and its standard library as deterministic tarballs.

The artifact `<name>.tar.gz` unpacks to one directory. For WASI it is what a
runtime needs and nothing more:

    <name>/python.wasm              without its DWARF (function names kept, for backtraces); an
                                    external_debug_info section names python.debug.wasm
    <name>/lib/python3.X/...        the standard library, compiled: unchecked-hash .pyc where
                                    each .py was (CPython imports them without the sources); a
                                    custom interpreter's extensions' pure-Python packages with it
    <name>/manifest.json            sha256 and size of every other file

Run with PYTHONHOME pointing at `<name>/` as the guest's `/`. What debugging
needs is the debug artifact `<name>.debug.tar.gz`, which unpacks over it:

    <name>/python.debug.wasm        python.wasm as linked, DWARF included
    <name>/lib/python3.X/...        the standard library's .py sources (tracebacks show
                                    source lines again)
    <name>/debug-manifest.json      sha256 and size of every other file in it

A WASI build's devkit `<name>.devkit.tar.gz` (devkit.py) unpacks over it too.

For Emscripten, 3.11-3.13 (Tools/wasm's "browser" flavour):

    <name>/python.js                the loader: `node python.js -c ...`, or a page's <script>
    <name>/python.wasm
    <name>/python.data              the standard library, preloaded into Emscripten's file system
    <name>/python.html, python.worker.js    CPython's own browser REPL page
    <name>/vendor/<package>-<version>/...   the JavaScript the page would load from CDNs (web_assets.py)
    <name>/manifest.json

3.14+ (what Platforms/emscripten builds: its web example and Node entry):

    <name>/python.mjs, python.wasm  the ES module and its wasm
    <name>/python3.X.zip            the standard library, which the page's worker fetches
    <name>/index.html, python.worker.mjs, server.py    CPython's REPL page, its worker and server
    <name>/node_entry.mjs, streams.mjs     Node's entry: PYTHONHOME=<name> PYTHONPATH=<name>/python3.X.zip
                                    node node_entry.mjs --this-program=<name>/python -c ...
    <name>/vendor/<package>-<version>/...   the JavaScript the page would load from CDNs
    <name>/manifest.json

This script runs inside the native image (`python3 -m container.package ...`
in /opt/cpython-wasm, with Debian's python3 from the pinned image, so the
gzip and tar bytes do not depend on the host), with its siblings tarball.py,
wasm.py and emscripten_data.py: standard library only, nothing of the host
side. Determinism: see tarball.py; .pyc files are hash-based, not mtime-based.
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from .devkit import DEVKIT_MANIFEST, DEVKIT_README, readme
from .emscripten_data import EMSCRIPTEN_FILES, HELPER_FILES, normalise_preloaded_zips, normalise_zip_file, point_pyrepl_page
from .tarball import MANIFEST, manifest_of, tree_entries, write_tar_gz
from .wasm import split_debug_info
from .web_assets import parse_web_package, ship_web_packages

DEBUG_MANIFEST = "debug-manifest.json"
DEBUG_WASM = "python.debug.wasm"
# Files in Lib/ that are not valid Python on purpose (the same list as CPython's
# Makefile gives compileall).
COMPILEALL_EXCLUDE = r"bad_coding|badsyntax|site-packages|lib2to3/tests/data"


def stage_emscripten(args) -> Path:
    """Lay out the Emscripten build's files under <output>/<artifact>/: the standard library in python.data
    (3.11-3.13), or in the zip beside python.mjs (Platforms/emscripten, 3.14+)."""
    root = args.output / args.artifact
    root.mkdir(parents=True)
    if (args.host_build / "python.mjs").is_file():
        for built, shipped in HELPER_FILES.items():
            shutil.copy2(args.host_build / built.format(line=args.line), root / shipped.format(line=args.line))
        normalise_zip_file(root / f"python{args.line}.zip", args.mtime)
        point_pyrepl_page(root / "pyrepl.html")
    else:
        for name in EMSCRIPTEN_FILES:
            shutil.copy2(args.host_build / name, root / name)
        normalise_preloaded_zips(root / "python.js", root / "python.data", args.mtime)
    ship_web_packages(root, [parse_web_package(argument) for argument in args.web_package])
    return root


def stage(args) -> tuple[Path, Path | None]:
    """Lay out python.wasm and the compiled standard library under <output>/<artifact>/, and what debugging
    needs (python.debug.wasm, the .py sources) under <output>/debug/<artifact>/."""
    root = args.output / args.artifact
    debug = args.output / "debug" / args.artifact
    lib = root / "lib" / f"python{args.line}"
    lib.parent.mkdir(parents=True)
    debug.mkdir(parents=True)
    linked = args.python_wasm or args.host_build / "python.wasm"
    has_debug_info = split_debug_info(linked, root / "python.wasm", debug / DEBUG_WASM)
    excluded = {Path(name) for name in args.exclude}  # relative to Lib/, e.g. "test", "lib2to3/tests"

    def ignore(directory, names):
        here = Path(directory).relative_to(args.source / "Lib")
        return [n for n in names if n == "__pycache__" or here / n in excluded]

    shutil.copytree(args.source / "Lib", lib, ignore=ignore)
    for site in args.site:  # the extensions' pure-Python packages (the build refused names the stdlib has)
        shutil.copytree(site, lib, dirs_exist_ok=True)
    # The sysconfig data of the wasm build (and build-details.json where the
    # version writes one) lives in the build tree, not in Lib/.
    build_lib = args.host_build / (args.host_build / "pybuilddir.txt").read_text().strip()
    for generated in sorted(build_lib.glob("*")):
        if generated.suffix in (".py", ".json"):
            shutil.copy2(generated, lib / generated.name)
    # Compiled with the build python (the same version, so the same bytecode
    # magic); unchecked-hash .pyc carry no source mtime, and the names recorded
    # in them are the guest's paths (/lib/python3.X/...), where the debug
    # artifact puts the sources. -b: each .pyc where its .py was, so that
    # CPython imports it without the source.
    subprocess.run(
        [str(args.build_python), "-I", "-m", "compileall", "-q", "-b", "-j", "0",
         "--invalidation-mode", "unchecked-hash", "-s", str(root), "-p", "/",
         "-x", COMPILEALL_EXCLUDE, str(lib)],
        check=True,
    )
    for source in sorted(lib.rglob("*.py")):
        if source.with_suffix(".pyc").is_file():  # files compileall leaves alone stay as they are
            target = debug / source.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            source.rename(target)
    return root, debug if has_debug_info else None


def write_manifest(root: Path, name: str, artifact: str) -> None:
    manifest = {"artifact": artifact, "files": manifest_of(root, name)}
    (root / name).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")


# How each target's files are laid out: (the artifact's tree, the debug artifact's tree or None).
LAYOUTS = {"wasi": stage, "emscripten": lambda args: (stage_emscripten(args), None)}


def package(args) -> None:
    root, debug = LAYOUTS[args.target](args)
    write_manifest(root, MANIFEST, args.artifact)
    shutil.copy2(root / MANIFEST, args.output / MANIFEST)
    write_tar_gz(args.output / f"{args.artifact}.tar.gz", tree_entries(root, args.artifact), args.mtime)
    if debug is not None:
        write_manifest(debug, DEBUG_MANIFEST, args.artifact)
        write_tar_gz(args.output / f"{args.artifact}.debug.tar.gz", tree_entries(debug, args.artifact), args.mtime)
    if args.devkit is not None:
        devkit = args.output / "devkit" / args.artifact
        shutil.copytree(args.devkit, devkit)
        (devkit / DEVKIT_README).write_text(readme(devkit, args.artifact, args.builtin), encoding="utf-8")
        write_manifest(devkit, DEVKIT_MANIFEST, args.artifact)
        write_tar_gz(args.output / f"{args.artifact}.devkit.tar.gz", tree_entries(devkit, args.artifact), args.mtime)
    shutil.rmtree(root)
    for companion in ("debug", "devkit"):  # the trees the companions were made from
        shutil.rmtree(args.output / companion, ignore_errors=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--line", required=True, help="CPython X.Y")
    parser.add_argument("--target", choices=tuple(LAYOUTS), default="wasi")
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--host-build", type=Path, required=True)
    parser.add_argument("--build-python", type=Path, required=True)
    parser.add_argument("--exclude", action="append", default=[], help="a path in Lib/ to leave out (repeatable)")
    parser.add_argument("--mtime", type=int, required=True, help="SOURCE_DATE_EPOCH")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--devkit", type=Path, help="the devkit stage's tree, to package as <artifact>.devkit.tar.gz")
    parser.add_argument("--python-wasm", type=Path, help="python.wasm linked with extensions (default: the host "
                        "build's)")
    parser.add_argument("--site", type=Path, action="append", default=[],
                        help="a tree of pure-Python packages to install beside the standard library (repeatable)")
    parser.add_argument("--builtin", action="append", default=[],
                        help="an extension module linked into python.wasm but not into the devkit's libpython "
                             "(repeatable; DEVKIT.md lists them)")
    parser.add_argument("--web-package", action="append", default=[],
                        help="an npm package the Emscripten page loads, to ship beside it (JSON; repeatable)")
    package(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
