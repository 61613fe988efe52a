"""The devkit: what compiling and linking C code against one WASI python.wasm takes, as a companion tarball.

`<name>.devkit.tar.gz` unpacks over the artifact (the same top directory), so
that the two make the prefix `make install` would have made:

    <name>/include/python3.X/       CPython's headers and pyconfig.h
    <name>/lib/libpython3.X.a       the interpreter, its built-in modules included
    <name>/lib/lib*.a               what python.wasm links besides: CPython's own archives (libmpdec,
                                    expat, HACL) and the recipe's C libraries (zlib, ...)
    <name>/lib/python3.X/_sysconfigdata_*.py    the build's sysconfig data
    <name>/lib/python3.X/config-3.X-wasm32-wasi/  Makefile, Setup*, config.c.in, python.o: to relink
                                    python.wasm with more built-in modules
    <name>/lib/pkgconfig/, bin/python3.X-config
    <name>/DEVKIT.md                how it was built, and the commands that compile and link with it
    <name>/devkit-manifest.json     sha256 and size of every other file in it

The tree is the devkit stage's (containers/files/build-devkit.sh: CPython's
own install targets); this module writes DEVKIT.md from the sysconfig data in
it. Standard library only: it runs in the native image with package.py.
"""

import ast
from pathlib import Path

DEVKIT_MANIFEST = "devkit-manifest.json"
DEVKIT_README = "DEVKIT.md"


def sysconfig_variables(root: Path) -> dict:
    """The build's sysconfig variables, read from the devkit's _sysconfigdata module without running it."""
    (path,) = root.glob("lib/python*/_sysconfigdata_*.py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "build_time_vars" for t in node.targets):
            return ast.literal_eval(node.value)
    raise ValueError(f"{path}: no build_time_vars")


def link_archives(root: Path, version: str) -> list[str]:
    """-l options for libpython and every archive beside it (wasm-ld resolves archives in any order)."""
    names = sorted(path.name.removeprefix("lib").removesuffix(".a") for path in (root / "lib").glob("lib*.a"))
    python = f"python{version}"
    return [f"-l{python}", *(f"-l{name}" for name in names if name != python)]


def embed_flags(variables: dict, root: Path, shown: str | None = None) -> tuple[list[str], list[str]]:
    """(compile flags, link flags) of a C program that embeds this interpreter, with the devkit at `root` (spelt
    `shown` if given), as CPython's own build links python.wasm: its system libraries and its stack size."""
    version, prefix = variables["VERSION"], shown or str(root)
    compile_flags = [f"-I{prefix}/include/python{version}"]
    link = [f"-L{prefix}/lib", *link_archives(root, version),
            *variables["LIBS"].split(), *variables["SYSLIBS"].split(), *variables["CONFIGURE_LDFLAGS_NODIST"].split()]
    return compile_flags, link


def readme(root: Path, artifact: str, builtins=()) -> str:
    variables = sysconfig_variables(root)
    compile_flags, link = embed_flags(variables, root, "$DEVKIT")
    version = variables["VERSION"]
    extensions = (f"""
`python.wasm` of {artifact} is linked with extension modules that this
devkit's libpython does not hold: {", ".join(builtins)}. Their objects
are products of its build; its lockfile names their sdists.
""" if builtins else "")
    return f"""# {artifact} devkit

What compiling and linking C code against `python.wasm` of `{artifact}`
takes: CPython {version} for {variables["HOST_GNU_TYPE"]}, built by
cpython-wasm-recipes. Unpack it over the artifact: with the standard library
in `lib/python{version}/` it is the prefix `make install` would have made.
Compile with the same compiler and SDK (the toolchain image of the build;
its lockfile names it), which built it:

    CC       = {variables["CC"]}
    CFLAGS   = {variables["CFLAGS"]}
    configure {variables["CONFIG_ARGS"]}

There is no dynamic loading on WASI: a C extension module works only linked
into a program, either a program that embeds Python or `python.wasm` relinked
with it as a built-in module (`lib/python{version}/config-{version}-*/`: the
Makefile, `Setup*`, `config.c.in` and `python.o` of this build).

A C program that embeds Python, with DEVKIT the unpacked directory:

    $CC {" ".join(compile_flags)} -c program.c
    $CC program.o {" ".join(link)} -o program.wasm
    wasmtime run --dir $DEVKIT::/ --env PYTHONHOME=/ program.wasm
{extensions}"""
