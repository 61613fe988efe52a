"""The snapshot stage: python.wasm pre-initialised by `wasmtime wizer` (`invoke build --flavour snapshot`).

    python3 -m container.snapshot --devkit DIR --artifact STOCK.tar.gz --main snapshot-main.c
                                  --imports json,re,asyncio --wasmtime WASMTIME --epoch SECONDS --output DIR

In the toolchain image, without network, from the stock build's devkit and artifact:

    link      python.wasm again from the devkit, as the extension stage links it (extension.py), but with
              snapshot-main.c (containers/files/) in place of CPython's Programs/python.o: a main that, once
              snapshotted, picks up the initialised interpreter with the run's argv, environment and preopens
    snapshot  `wasmtime wizer` runs its exported initialisation once, with the stock artifact unpacked as the
              guest's / (its compiled standard library is what gets imported), and writes OUTPUT/python.wasm

The package stage then packages that python.wasm with the stock standard library.

Standard library only: it runs on the image's Debian python3, as package.py does.
"""

import argparse
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

from .devkit import embed_flags, sysconfig_variables
from .extension import compiler, run

INIT_FUNCTION = "wizer-initialize"  # snapshot-main.c's export
# wasi-libc's calls that snapshot-main.c steadies while the snapshot is made (inode numbers, times, the clock).
WRAPPED = ("__wasi_path_filestat_get", "__wasi_fd_filestat_get", "__wasi_fd_readdir", "__wasi_clock_time_get")
# Where it all happens: a fixed path, because wizer runs the module with its path as argv[0], and the
# interpreter keeps what it derives from it (sys.executable, and every string hashed with it) in the snapshot.
WORK = Path("/tmp/snapshot")


def unpack_artifact(artifact: Path, destination: Path) -> Path:
    """The artifact's tree (its one top directory) under `destination` (tarfile's data filter)."""
    with tarfile.open(artifact) as archive:
        archive.extractall(destination, filter="data")
    (top,) = destination.iterdir()
    return top


def snapshot(args) -> None:
    variables = sysconfig_variables(args.devkit)
    work = WORK
    work.mkdir(parents=True)
    imports = ", ".join(args.imports.split(",")) if args.imports else "sys"
    main_object, unsnapshotted = work / "snapshot-main.o", work / "python.unsnapshotted.wasm"
    run([*compiler(variables, args.devkit), f'-DSNAPSHOT_IMPORTS="{imports}"', f"-DSNAPSHOT_EPOCH={args.epoch}",
         "-c", str(args.main), "-o", str(main_object)])
    _, link_flags = embed_flags(variables, args.devkit)
    run([*shlex.split(variables["LINKCC"]), *shlex.split(variables["LDFLAGS"]),
         *shlex.split(variables["LINKFORSHARED"]), *(f"-Wl,--wrap={name}" for name in WRAPPED),
         "-o", str(unsnapshotted), str(main_object), *link_flags])
    tree = unpack_artifact(args.artifact, work / "artifact")
    args.output.mkdir(parents=True, exist_ok=True)
    run([str(args.wasmtime), "wizer", "-S", "cli", "--init-func", INIT_FUNCTION, "--dir", f"{tree}::/",
         "-o", str(args.output / "python.wasm"), str(unsnapshotted)])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devkit", type=Path, required=True)
    parser.add_argument("--artifact", type=Path, required=True, help="the stock artifact's tarball")
    parser.add_argument("--main", type=Path, required=True, help="snapshot-main.c")
    parser.add_argument("--imports", default="", help="modules imported before the snapshot, comma-separated")
    parser.add_argument("--wasmtime", type=Path, required=True, help="the wasmtime CLI")
    parser.add_argument("--epoch", type=int, required=True, help="the clock while the snapshot is made (seconds)")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        snapshot(args)
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"{shlex.join(error.cmd)} exited with status {error.returncode}") from None


if __name__ == "__main__":
    sys.exit(main())
