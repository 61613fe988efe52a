"""Custom interpreters: C extension modules from pinned sdists, linked into python.wasm as built-in modules.

There is no dlopen on wasm32-wasip1: C code reaches the interpreter only linked with it. So a custom
interpreter (`invoke build --extension NAME`, recipes/extensions/) is the stock build's stages, shared with
it in the store (they are named after the stock artifact), then:

    extension:<name>   one sdist's modules compiled against the devkit, in the toolchain image, without
                       network (container/extension.py compile)
    interpreter        python.wasm linked again from the devkit's python.o and libpython with every extension
                       and a config.c naming them in the inittab (container/extension.py link): the host
                       stage's objects reused, CPython not compiled again

and a package stage that packages that python.wasm, with the extensions' pure-Python packages in the standard
library tree (compiled to .pyc like the rest of it).

What can be refused before anything is built is refused here: a target without a devkit (`check_target`),
and a name that would shadow a module of the standard library (`check_names`). Two extensions that define the same name are
refused when the plan is resolved (recipes/plan.py).
"""

import json
import tarfile
from pathlib import Path

from cpython_wasm.errors import UserError
from cpython_wasm.paths import CONTAINER_SCRIPTS_DIR, CONTAINER_TOOLS
from cpython_wasm.recipes.plan import Plan
from cpython_wasm.recipes.schema import ExtensionRecipe
from cpython_wasm.stages.images import StageImage
from cpython_wasm.stages.stage import FileInput, Phase, ProductInput, Stage

EXTENSIONS_DIR = "/extensions"  # each extension's product at /extensions/<name>
INTERPRETER_DIR = "/interpreter"  # the relinked python.wasm
# The container scripts the two stages run (python3 -m container.extension), mounted as package.py's are.
SCRIPTS = ("__init__", "extension", "devkit")
# The list CPython generates of its standard library's module names (sys.stdlib_module_names), in the source.
STDLIB_NAMES_HEADER = "Python/stdlib_module_names.h"
MAX_HEADER_BYTES = 1 << 20


def extension_key(name: str) -> str:
    return f"extension:{name}"


def extension_output(extension: ExtensionRecipe) -> str:
    return f"{EXTENSIONS_DIR}/{extension.name}"


def scripts(names=SCRIPTS) -> tuple[FileInput, ...]:
    """The container scripts `names` (of cpython_wasm/container/), mounted where `python3 -m container.X` finds them."""
    return tuple(FileInput.of(f"{CONTAINER_TOOLS}/container/{name}.py", CONTAINER_SCRIPTS_DIR / f"{name}.py")
                 for name in names)


def extension_stage(plan: Plan, extension: ExtensionRecipe, toolchain: StageImage, devkit: Stage, devkit_dir: str,
                    environment, cached_path, inputs_dir: str) -> Stage:
    """One extension's modules compiled, and its pure-Python packages copied, into /extensions/<name>."""
    sdist = f"{inputs_dir}/{extension.source.file}"
    spec = {"modules": [{"name": module.name, "sources": list(module.sources), "cflags": list(module.cflags)}
                        for module in extension.modules],
            "packages": list(extension.packages)}
    command = ("python3", "-m", "container.extension", "compile", "--devkit", devkit_dir, "--sdist", sdist,
               "--spec", json.dumps(spec, sort_keys=True), "--output", extension_output(extension))
    return Stage(
        "extension", f"{extension.name}-{extension.version}-{plan.stock_artifact_name}", toolchain.id,
        (Phase(f"build-{extension.name}", command, CONTAINER_TOOLS),), environment,
        (ProductInput(devkit_dir, devkit), FileInput(sdist, extension.source.sha256, cached_path(extension.source)),
         *scripts()),
        extension_output(extension), produces=("modules.json",),
    )


def interpreter_stage(plan: Plan, toolchain: StageImage, devkit: Stage, devkit_dir: str, extensions: dict[str, Stage],
                      environment) -> Stage:
    """python.wasm linked with every extension, from the devkit, into INTERPRETER_DIR."""
    command = ("python3", "-m", "container.extension", "link", "--devkit", devkit_dir,
               *(option for stage in extensions.values() for option in ("--extension", stage.output)),
               "--output", INTERPRETER_DIR)
    return Stage(
        "interpreter", f"interpreter-{plan.artifact_name}", toolchain.id, (Phase("link", command, CONTAINER_TOOLS),),
        environment,
        (ProductInput(devkit_dir, devkit), *(ProductInput(stage.output, stage) for stage in extensions.values()),
         *scripts()),
        INTERPRETER_DIR, produces=("python.wasm",),
    )


def check_target(plan: Plan, has_devkit: bool) -> None:
    """Refuse extensions for a target that cannot link them (one without a devkit)."""
    if plan.extensions and not has_devkit:
        raise UserError(f"--extension is for WASI builds only for now: an extension module is linked into "
                        f"python.wasm from the build's devkit, and {plan.target} builds have none. Build "
                        f"{', '.join(e.name for e in plan.extensions)} with --target wasi.")


def check_names(plan: Plan, source_tarball: Path) -> None:
    """Refuse extensions whose names shadow a module of the standard library of the plan's release (read from
    its source tarball)."""
    if not plan.extensions:
        return
    stdlib = stdlib_module_names(source_tarball)
    for extension in plan.extensions:
        shadowed = sorted(extension.top_level_names & stdlib)
        if shadowed:
            raise UserError(f"Extension {extension.name} defines {', '.join(f'`{name}`' for name in shadowed)}, a "
                            f"module of CPython {plan.release.version}'s standard library: it would shadow it. An "
                            f"extension's packages and modules must have names of their own.")


def stdlib_module_names(source_tarball: Path) -> set[str]:
    """sys.stdlib_module_names of a release, from Python/stdlib_module_names.h in its source tarball."""
    with tarfile.open(source_tarball) as archive:
        for member in archive:
            if member.isfile() and member.name.split("/", 1)[-1] == STDLIB_NAMES_HEADER:
                text = archive.extractfile(member).read(MAX_HEADER_BYTES).decode("utf-8")
                return {line.strip().strip('",') for line in text.splitlines() if line.strip().startswith('"')}
    raise UserError(f"{source_tarball.name} has no {STDLIB_NAMES_HEADER}, where CPython lists its standard "
                    f"library's modules: extension names cannot be checked against it.")
