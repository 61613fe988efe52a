"""Extension modules linked into python.wasm: compiled from an sdist against the devkit, then linked in.

WASI has no dlopen, so a C extension module works only as a built-in module
of the interpreter, the way CPython links its own (Modules/Setup, makesetup,
config.c). Both steps run in the toolchain image that built the interpreter,
with its devkit (devkit.py) mounted read-only, and no network:

    compile   one sdist: its C sources compiled with the interpreter's compiler and flags (the devkit's
              sysconfig CC and CFLAGS, its headers); each module's PyInit_<name> renamed after its full
              dotted name, so two projects' `_speedups` can both be linked; its pure-Python packages
              copied. Writes OUTPUT/modules.json, OUTPUT/objects/, OUTPUT/lib/.
    link      python.wasm again from the devkit: the build's own python.o and libpython3.X.a, a config.c
              that is the build's own with each extension module added to the inittab (makesetup's
              markers), every extension's objects, and the link flags DEVKIT.md gives embedders.

Standard library only: it runs on the image's Debian python3, as package.py does.
"""

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from .devkit import embed_flags, sysconfig_variables

MODULES_JSON = "modules.json"
SDIST_DIR = Path("/tmp/sdist")  # where the sdist is unpacked: a fixed path, so debug info names the same files
# What of a package directory is not Python: the C sources (compiled here) and any build product in the sdist.
NOT_INSTALLED = ("*.c", "*.h", "*.pyx", "*.o", "*.a", "*.so", "*.pyd", "__pycache__")
MARKER_DECLARATIONS = "/* -- ADDMODULE MARKER 1 -- */"
MARKER_INITTAB = "/* -- ADDMODULE MARKER 2 -- */"


def init_symbol(module: str) -> str:
    """The init function a module is linked by: PyInit_ and its dotted name, every character that is not a
    letter or digit escaped (so two names never give one symbol)."""
    return "PyInit_" + "".join(c if c.isascii() and c.isalnum() else f"_{ord(c):02x}" for c in module)


def unpack_sdist(sdist: Path) -> Path:
    """The sdist unpacked under SDIST_DIR (tarfile's data filter: no link, device or path out of it); its top
    directory."""
    with tarfile.open(sdist) as archive:
        tops = {Path(member.name).parts[0] for member in archive.getmembers()}
        if len(tops) != 1:
            raise SystemExit(f"{sdist.name}: expected one top directory, found {sorted(tops)[:5]}")
        archive.extractall(SDIST_DIR, filter="data")
    return SDIST_DIR / tops.pop()


def compiler(variables: dict, devkit: Path) -> list[str]:
    """How the interpreter's build compiles C code that is not CPython's own (what setuptools reads)."""
    return [*shlex.split(variables["CC"]), *shlex.split(variables["CFLAGS"]), *shlex.split(variables["CCSHARED"]),
            f"-I{devkit}/include/python{variables['VERSION']}"]


def compile_sdist(args) -> None:
    spec = json.loads(args.spec)
    variables = sysconfig_variables(args.devkit)
    top = unpack_sdist(args.sdist)
    modules = []
    for module in spec["modules"]:
        objects = args.output / "objects" / module["name"]
        objects.mkdir(parents=True)
        init = init_symbol(module["name"])
        short = "PyInit_" + module["name"].rsplit(".", 1)[-1]
        for index, source in enumerate(module["sources"]):
            command = [*compiler(variables, args.devkit), *module["cflags"], f"-D{short}={init}",
                       "-c", source, "-o", str(objects / f"{index}-{Path(source).stem}.o")]
            print("+", shlex.join(command), flush=True)
            subprocess.run(command, cwd=top, check=True)
        modules.append({"name": module["name"], "init": init})
    for package in spec["packages"]:
        shutil.copytree(top / package, args.output / "lib" / Path(package).name,
                        ignore=shutil.ignore_patterns(*NOT_INSTALLED))
    (args.output / "lib").mkdir(exist_ok=True)
    (args.output / MODULES_JSON).write_text(json.dumps(modules, indent=1) + "\n", encoding="utf-8")


def config_c(template: str, modules: list[dict]) -> str:
    """The build's config.c with each module added to the inittab where makesetup adds its own."""
    if template.count(MARKER_DECLARATIONS) != 1 or template.count(MARKER_INITTAB) != 1:
        raise SystemExit("config.c has not makesetup's two ADDMODULE markers once each")
    declarations = "".join(f"extern PyObject* {module['init']}(void);\n" for module in modules)
    entries = "".join(f'    {{"{module["name"]}", {module["init"]}}},\n' for module in modules)
    return (template.replace(MARKER_DECLARATIONS, declarations + MARKER_DECLARATIONS)
            .replace(MARKER_INITTAB, entries + MARKER_INITTAB))


def link(args) -> None:
    variables = sysconfig_variables(args.devkit)
    (config_dir,) = args.devkit.glob("lib/python*/config-*")
    modules, objects = [], []
    for extension in args.extension:
        modules += json.loads((extension / MODULES_JSON).read_text(encoding="utf-8"))
        objects += sorted(str(path) for path in (extension / "objects").rglob("*.o"))
    args.output.mkdir(parents=True, exist_ok=True)
    config = args.output / "config.c"
    config.write_text(config_c((config_dir / "config.c").read_text(encoding="utf-8"), modules), encoding="utf-8")
    run([*compiler(variables, args.devkit), "-c", str(config), "-o", str(args.output / "config.o")])
    _, link_flags = embed_flags(variables, args.devkit)
    run([*shlex.split(variables["LINKCC"]), *shlex.split(variables["LDFLAGS"]),
         *shlex.split(variables["LINKFORSHARED"]), "-o", str(args.output / "python.wasm"),
         str(config_dir / "python.o"), str(args.output / "config.o"), *objects, *link_flags])


def run(command: list[str]) -> None:
    print("+", shlex.join(command), flush=True)
    subprocess.run(command, check=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    compile_step = steps.add_parser("compile", help="compile one sdist's extension modules")
    compile_step.add_argument("--sdist", type=Path, required=True)
    compile_step.add_argument("--spec", required=True,
                              help='JSON: {"modules": [{"name", "sources", "cflags"}], "packages": [...]}')
    link_step = steps.add_parser("link", help="link python.wasm with the compiled extensions")
    link_step.add_argument("--extension", type=Path, action="append", default=[],
                           help="a compile step's output (repeatable)")
    for step in (compile_step, link_step):
        step.add_argument("--devkit", type=Path, required=True)
        step.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        {"compile": compile_sdist, "link": link}[args.step](args)
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"{shlex.join(error.cmd)} exited with status {error.returncode}") from None


if __name__ == "__main__":
    sys.exit(main())
