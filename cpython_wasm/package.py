"""Packaging: python.wasm and its compiled standard library as one deterministic tarball.

The artifact `<name>.tar.gz` unpacks to one directory:

    <name>/python.wasm
    <name>/lib/python3.X/...        the standard library, .py and unchecked-hash .pyc
    <name>/manifest.json            sha256 and size of every other file

Run with PYTHONHOME pointing at `<name>/` as the guest's `/`.

This module runs inside the toolchain container (`python3 package.py ...`, with
Debian's python3 from the pinned image, so the gzip and tar bytes do not depend
on the host) and is imported on the host for the same helpers. Standard
library only. Determinism: entries sorted, one fixed mtime
(SOURCE_DATE_EPOCH), owner 0:0 without names, modes normalised to 0644/0755,
gzip header without name or time, .pyc files hash-based instead of mtime-based.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

MANIFEST = "manifest.json"
# Files in Lib/ that are not valid Python on purpose (the same list as CPython's
# Makefile gives compileall).
COMPILEALL_EXCLUDE = r"bad_coding|badsyntax|site-packages|lib2to3/tests/data"


def sha256_path(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def normalised_mode(path: Path) -> int:
    if path.is_dir() or os.stat(path).st_mode & 0o100:
        return 0o755
    return 0o644


def write_tar(output, entries, mtime: int) -> None:
    """Write an uncompressed tar of `entries` to the binary file `output`.

    entries: (archive name, source) pairs, where source is a Path (file or
    directory) or bytes; they are written sorted by name.
    """
    with tarfile.open(fileobj=output, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, source in sorted(entries, key=lambda entry: entry[0]):
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if isinstance(source, bytes):
                info.size, info.mode = len(source), 0o644
                tar.addfile(info, io.BytesIO(source))
            elif source.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = source.stat().st_size, normalised_mode(source)
                with open(source, "rb") as file:
                    tar.addfile(info, file)


def tree_entries(root: Path, prefix: str):
    """(archive name, path) for a directory tree, the root itself included."""
    yield prefix, root
    for path in root.rglob("*"):
        if path.is_symlink():
            raise ValueError(f"{path}: symbolic links are not packaged")
        yield f"{prefix}/{path.relative_to(root).as_posix()}", path


def write_tar_gz(path: Path, entries, mtime: int) -> None:
    with open(path, "wb") as raw:
        # No file name and mtime 0 in the gzip header; level 9 fixed.
        with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as compressed:
            write_tar(compressed, entries, mtime)


def manifest_of(root: Path) -> dict:
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.relative_to(root).as_posix() != MANIFEST:
            files[path.relative_to(root).as_posix()] = {"sha256": sha256_path(path), "size": path.stat().st_size}
    return files


def stage(args) -> Path:
    """Lay out python.wasm and the standard library under <output>/<artifact>/."""
    root = args.output / args.artifact
    lib = root / "lib" / f"python{args.line}"
    lib.parent.mkdir(parents=True)
    shutil.copy2(args.host_build / "python.wasm", root / "python.wasm")
    excluded = {Path(name) for name in args.exclude}  # relative to Lib/, e.g. "test", "lib2to3/tests"

    def ignore(directory, names):
        here = Path(directory).relative_to(args.source / "Lib")
        return [n for n in names if n == "__pycache__" or here / n in excluded]

    shutil.copytree(args.source / "Lib", lib, ignore=ignore)
    # The sysconfig data of the wasm build (and build-details.json where the
    # version writes one) lives in the build tree, not in Lib/.
    build_lib = args.host_build / (args.host_build / "pybuilddir.txt").read_text().strip()
    for generated in sorted(build_lib.glob("*")):
        if generated.suffix in (".py", ".json"):
            shutil.copy2(generated, lib / generated.name)
    # Compiled with the build python (the same version, so the same bytecode
    # magic); unchecked-hash .pyc carry no source mtime, and the names recorded
    # in them are the guest's paths (/lib/python3.X/...).
    subprocess.run(
        [str(args.build_python), "-I", "-m", "compileall", "-q", "-j", "0",
         "--invalidation-mode", "unchecked-hash", "-s", str(root), "-p", "/",
         "-x", COMPILEALL_EXCLUDE, str(lib)],
        check=True,
    )
    return root


def package(args) -> None:
    root = stage(args)
    manifest = {
        "artifact": args.artifact,
        "files": manifest_of(root),
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    shutil.copy2(root / MANIFEST, args.output / MANIFEST)
    write_tar_gz(args.output / f"{args.artifact}.tar.gz", tree_entries(root, args.artifact), args.mtime)
    shutil.rmtree(root)


def write_atomically(target: Path, source) -> Path:
    """Write `source` (bytes, or a file to copy) to `target` via a temp file and a rename:
    readers, and a build killed half-way, see the old file or the whole new one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(descriptor, "wb") as output:
            if isinstance(source, bytes):
                output.write(source)
            else:
                with open(source, "rb") as data:
                    shutil.copyfileobj(data, output, 1 << 20)
            output.flush()
            os.fsync(output.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return target


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--line", required=True, help="CPython X.Y")
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--host-build", type=Path, required=True)
    parser.add_argument("--build-python", type=Path, required=True)
    parser.add_argument("--exclude", action="append", default=[], help="a path in Lib/ to leave out (repeatable)")
    parser.add_argument("--mtime", type=int, required=True, help="SOURCE_DATE_EPOCH")
    parser.add_argument("--output", type=Path, required=True)
    package(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
