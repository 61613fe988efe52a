"""Flavours: variants of the stock WASI interpreter, each published as its own artifact (recipes/flavours/).

    snapshot   python.wasm pre-initialised by `wasmtime wizer` (container/snapshot.py): linked again from the
               stock build's devkit with containers/files/snapshot-main.c in place of CPython's main, then run
               once with the stock artifact as the guest's / until the recipe's modules are imported, and
               written out as it stands. A package stage packages it with the stock standard library.
    minimal    python.wasm configured with fewer C modules and libraries (the recipe's [host]), packaged with
               only the recipe's part of the standard library (its stdlib).

A snapshot's build is the stock build's stages (shared with it in the store: they are named after the stock
artifact, and the stock package is the stock build's own), then its own stage and its package. A flavour with
a host build of its own has the stock build's stages from its source to its libraries, then its own host,
devkit and package (target.py), named after its artifact.
"""

from cpython_wasm.inputs.tools import WASMTIME_CLI
from cpython_wasm.paths import CONTAINER_TOOLS
from cpython_wasm.recipes.plan import Plan
from cpython_wasm.stages.images import StageImage, helper_file
from cpython_wasm.stages.stage import FileInput, Phase, ProductInput, Stage
from cpython_wasm.targets.extensions import SCRIPTS, scripts

SNAPSHOT_DIR = "/snapshot"  # the snapshot stage's output: python.wasm
STOCK_PACKAGE_DIR = "/stock"  # the stock package's product, read-only
SNAPSHOT_MAIN = "snapshot-main.c"  # containers/files/


def snapshot_stage(plan: Plan, toolchain: StageImage, devkit: Stage, devkit_dir: str, stock_package: Stage,
                   environment, inputs_dir: str) -> Stage:
    """python.wasm, linked with snapshot-main.c and pre-initialised by the toolchain image's wasmtime wizer, into
    SNAPSHOT_DIR."""
    name, sha256, path = helper_file(SNAPSHOT_MAIN)
    main = f"{inputs_dir}/{name}"
    command = ("python3", "-m", "container.snapshot", "--devkit", devkit_dir,
               "--artifact", f"{STOCK_PACKAGE_DIR}/{plan.stock_artifact_name}.tar.gz", "--main", main,
               "--imports", ",".join(plan.flavour.imports), "--wasmtime", WASMTIME_CLI,
               "--epoch", str(plan.release.source_date_epoch), "--output", SNAPSHOT_DIR)
    return Stage(
        "snapshot", f"snapshot-{plan.artifact_name}", toolchain.id, (Phase("snapshot", command, CONTAINER_TOOLS),),
        environment,
        (ProductInput(devkit_dir, devkit), ProductInput(STOCK_PACKAGE_DIR, stock_package), FileInput(main, sha256, path),
         *scripts((*SCRIPTS, "snapshot"))),
        SNAPSHOT_DIR, produces=("python.wasm",),
    )
