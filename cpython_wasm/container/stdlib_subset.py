"""A flavour's part of the standard library, packaged (`python3 -m container.stdlib_subset --stdlib NAME ...
PACKAGE-ARGUMENTS`): package.py run with an --exclude for each path of Lib/ the flavour does not ship.

A name of the flavour's stdlib is a module or a package of Lib/: os is Lib/os.py, json all of Lib/json/, and
encodings.utf_8 only Lib/encodings/utf_8.py with the __init__.py of the packages above it. It runs in the
native image beside package.py (standard library only), which it leaves as the stock build runs it.
"""

import argparse
import sys
from pathlib import Path

from . import package


def kept_paths(lib: Path, modules) -> set[Path]:
    """The path in Lib/ of each module or package named (a package's directory where there is one)."""
    kept = set()
    for module in modules:
        path = Path(*module.split("."))
        found = [candidate for candidate in (path, path.with_suffix(".py")) if (lib / candidate).exists()]
        if not found:
            sys.exit(f"stdlib_subset: this release's standard library has no {module} (neither Lib/{path}/ nor "
                     f"Lib/{path}.py). The flavour's stdlib names modules and packages of Lib/.")
        kept.add(found[0])
    return kept


def excluded_paths(lib: Path, modules) -> list[str]:
    """The paths of Lib/ (relative to it) that shipping only `modules` leaves out: each path that is neither a
    kept module or package, nor inside one, nor a package above one or that package's __init__.py; a directory
    left out is named once, not each file in it."""
    kept = kept_paths(lib, modules)
    above = {parent for path in kept for parent in path.parents if parent != Path(".")}
    excluded = []

    def visit(directory: Path) -> None:
        for entry in sorted((lib / directory).iterdir()):
            path = directory / entry.name
            if path in kept or entry.name == "__pycache__":
                continue
            if path in above:
                visit(path)
            elif not (entry.name == "__init__.py" and directory in above):
                excluded.append(path.as_posix())

    visit(Path("."))
    return excluded


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stdlib", action="append", required=True, help="a module or package of Lib/ to ship")
    parser.add_argument("--source", type=Path, required=True, help="the unpacked CPython source (package.py's)")
    args, package_arguments = parser.parse_known_args(argv)
    excludes = [f"--exclude={path}" for path in excluded_paths(args.source / "Lib", args.stdlib)]
    package.main([*package_arguments, "--source", str(args.source), *excludes])


if __name__ == "__main__":
    sys.exit(main())
