"""Packaging: the built interpreter and its standard library as deterministic tarballs.

The artifact `<name>.tar.gz` unpacks to one directory. For WASI it is what a
runtime needs and nothing more:

    <name>/python.wasm              without its DWARF (function names kept, for backtraces); an
                                    external_debug_info section names python.debug.wasm
    <name>/lib/python3.X/...        the standard library, compiled: unchecked-hash .pyc where
                                    each .py was (CPython imports them without the sources)
    <name>/manifest.json            sha256 and size of every other file

Run with PYTHONHOME pointing at `<name>/` as the guest's `/`. What debugging
needs is the debug artifact `<name>.debug.tar.gz`, which unpacks over it:

    <name>/python.debug.wasm        python.wasm as linked, DWARF included
    <name>/lib/python3.X/...        the standard library's .py sources (tracebacks show
                                    source lines again)
    <name>/debug-manifest.json      sha256 and size of every other file in it

For Emscripten:

    <name>/python.js                the loader: `node python.js -c ...`, or a page's <script>
    <name>/python.wasm
    <name>/python.data              the standard library, preloaded into Emscripten's file system
    <name>/python.html, python.worker.js    CPython's own browser REPL page
    <name>/manifest.json

This module runs inside the toolchain container (`python3 package.py ...`, with
Debian's python3 from the pinned image, so the gzip and tar bytes do not depend
on the host) and is imported on the host for the same helpers. Standard
library only. Determinism: entries sorted, one fixed mtime
(SOURCE_DATE_EPOCH), owner 0:0 without names, modes normalised to 0644/0755,
gzip header without name or time, .pyc files hash-based instead of mtime-based.
"""

import argparse
import errno
import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

MANIFEST = "manifest.json"
DEBUG_MANIFEST = "debug-manifest.json"
DEBUG_WASM = "python.debug.wasm"
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


def manifest_of(root: Path, manifest: str = MANIFEST) -> dict:
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.relative_to(root).as_posix() != manifest:
            files[path.relative_to(root).as_posix()] = {"sha256": sha256_path(path), "size": path.stat().st_size}
    return files


# -- python.wasm's sections ------------------------------------------------------------

WASM_HEADER = b"\0asm\x01\0\0\0"


def _leb128(data: bytes, offset: int) -> tuple[int, int]:
    """An unsigned LEB128 number at data[offset:], and the offset after it."""
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, offset


def _encode_leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def wasm_sections(data: bytes):
    """(id, custom section name or None, start, end) of each section of a wasm module."""
    if data[:8] != WASM_HEADER:
        raise ValueError("not a WebAssembly module (version 1)")
    offset = 8
    while offset < len(data):
        section_id = data[offset]
        size, payload = _leb128(data, offset + 1)
        end = payload + size
        name = None
        if section_id == 0:
            length, start = _leb128(data, payload)
            name = data[start:start + length].decode("utf-8", "replace")
        yield section_id, name, offset, end
        offset = end


def custom_section(name: str, payload: bytes) -> bytes:
    encoded = name.encode()
    body = _encode_leb128(len(encoded)) + encoded + payload
    return b"\0" + _encode_leb128(len(body)) + body


def strip_debug_info(data: bytes) -> tuple[bytes, int]:
    """The module without its DWARF (the .debug_* custom sections), and how many bytes were removed.

    Everything else is kept byte for byte: code, data, and the name section
    that gives backtraces their function names."""
    kept, removed = bytearray(data[:8]), 0
    for _, name, start, end in wasm_sections(data):
        if name is not None and name.startswith(".debug_"):
            removed += end - start
        else:
            kept += data[start:end]
    return bytes(kept), removed


def split_debug_info(linked: Path, stripped: Path, debug: Path) -> bool:
    """python.wasm as shipped (stripped, pointing at `debug` by name) and the debug file; False if there is no DWARF."""
    data = linked.read_bytes()
    without, removed = strip_debug_info(data)
    if not removed:
        shutil.copy2(linked, stripped)
        return False
    # DWARF for WebAssembly: a debugger looks for the debug info at this URL, relative to the module.
    reference = custom_section("external_debug_info", _encode_leb128(len(debug.name)) + debug.name.encode())
    stripped.write_bytes(without + reference)
    shutil.copy2(linked, debug)
    return True


# What the link of Emscripten's "browser" flavour writes (3.11-3.13).
EMSCRIPTEN_FILES = ("python.js", "python.wasm", "python.data", "python.html", "python.worker.js")
# The file packager's table in python.js: where each preloaded file lies in python.data.
PRELOADED_FILE = re.compile(rb'\{\s*"?filename"?\s*:\s*"([^"]+)"\s*,\s*"?start"?\s*:\s*(\d+)\s*,\s*"?end"?\s*:\s*(\d+)')


def dos_timestamp(epoch: int) -> bytes:
    """A zip entry's time and date fields for `epoch` (UTC; zip cannot say before 1980)."""
    t = time.gmtime(max(epoch, 315532800))
    return struct.pack("<HH", (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2),
                       ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday)


def normalise_zip_times(data: bytearray, start: int, end: int, epoch: int) -> int:
    """Set every entry's time in the zip at data[start:end] to `epoch`, in place (sizes and CRCs do not change).

    Tools/wasm/wasm_assets.py zips the freshly compiled standard library, so
    each entry carries the time of the build; that is the one thing that
    differs between two builds of python.data. Returns the number of entries."""
    archive = zipfile.ZipFile(io.BytesIO(bytes(data[start:end])))
    stamp, central = dos_timestamp(epoch), start + archive.start_dir
    for info in archive.infolist():  # in central directory order
        local = start + info.header_offset
        if data[local:local + 4] != b"PK\x03\x04" or data[central:central + 4] != b"PK\x01\x02":
            raise ValueError(f"{info.filename}: not where the zip's central directory says")
        data[local + 10:local + 14] = stamp
        data[central + 12:central + 16] = stamp
        name_length, extra_length, comment_length = struct.unpack("<HHH", data[central + 28:central + 34])
        central += 46 + name_length + extra_length + comment_length
    return len(archive.infolist())


def normalise_preloaded_zips(loader: Path, data_file: Path, epoch: int) -> int:
    """Normalise the times of the zip archives preloaded in python.data; the number of zips."""
    data = bytearray(data_file.read_bytes())
    zips = [(int(start), int(end)) for name, start, end in PRELOADED_FILE.findall(loader.read_bytes())
            if name.endswith(b".zip")]
    if not zips:
        raise ValueError(f"{loader} names no preloaded .zip file (the standard library) in {data_file.name}")
    for start, end in zips:
        normalise_zip_times(data, start, end, epoch)
    data_file.write_bytes(data)
    return len(zips)


def stage_emscripten(args) -> Path:
    """Lay out the Emscripten build's files under <output>/<artifact>/: the standard library is in python.data."""
    root = args.output / args.artifact
    root.mkdir(parents=True)
    for name in EMSCRIPTEN_FILES:
        shutil.copy2(args.host_build / name, root / name)
    normalise_preloaded_zips(root / "python.js", root / "python.data", args.mtime)
    return root


def stage(args) -> tuple[Path, Path | None]:
    """Lay out python.wasm and the compiled standard library under <output>/<artifact>/, and what debugging
    needs (python.debug.wasm, the .py sources) under <output>/debug/<artifact>/."""
    root = args.output / args.artifact
    debug = args.output / "debug" / args.artifact
    lib = root / "lib" / f"python{args.line}"
    lib.parent.mkdir(parents=True)
    debug.mkdir(parents=True)
    has_debug_info = split_debug_info(args.host_build / "python.wasm", root / "python.wasm", debug / DEBUG_WASM)
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


def package(args) -> None:
    root, debug = (stage_emscripten(args), None) if args.target == "emscripten" else stage(args)
    write_manifest(root, MANIFEST, args.artifact)
    shutil.copy2(root / MANIFEST, args.output / MANIFEST)
    write_tar_gz(args.output / f"{args.artifact}.tar.gz", tree_entries(root, args.artifact), args.mtime)
    if debug is not None:
        write_manifest(debug, DEBUG_MANIFEST, args.artifact)
        write_tar_gz(args.output / f"{args.artifact}.debug.tar.gz", tree_entries(debug, args.artifact), args.mtime)
    shutil.rmtree(root)
    shutil.rmtree(args.output / "debug", ignore_errors=True)


# What a write fails with when the disk is full, or the user's quota of it.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def write_atomically(target: Path, source) -> Path:
    """Write `source` (bytes, or a file to copy) to `target` via a temp file and a rename:
    readers, and a build killed half-way, see the old file or the whole new one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    try:
        _write_and_rename(target, source)
    except OSError as error:
        if error.errno not in DISK_FULL_ERRNOS:
            raise
        # Imported here: in the toolchain container this file runs alone, as a script, without its package.
        from .errors import DiskFull

        needed = len(source) if isinstance(source, bytes) else os.stat(source).st_size
        previous = "is unchanged" if target.exists() else "was not created"
        raise DiskFull(
            f"No space left on the disk of {target.parent} to write {target.name}: it needs {needed} bytes free "
            f"there (the new file is written beside the old one, then replaces it). {target} {previous}, and "
            f"nothing half-written was left. Free at least that much on that disk and run the command again."
        ) from error
    return target


def _write_and_rename(target: Path, source) -> None:
    descriptor, temp = _locked_temp(target)
    try:
        with open(descriptor, "wb", closefd=False) as output:
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
        os.close(descriptor)  # releases the lock, once the temp file is renamed or removed


def _temp_prefix(target: Path) -> str:
    return f".{target.name}."


def _locked_temp(target: Path) -> tuple[int, str]:
    """A new temp file beside `target`, open, under an exclusive lock held while it is written (see
    remove_stale_temps)."""
    while True:
        descriptor, temp = tempfile.mkstemp(prefix=_temp_prefix(target), dir=target.parent)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        # Until flock returned, the file was unlocked: if remove_stale_temps took it for a dead writer's in
        # that instant, its name no longer leads to it. Then make another.
        try:
            if os.path.samestat(os.fstat(descriptor), os.stat(temp)):
                return descriptor, temp
        except FileNotFoundError:
            pass
        os.close(descriptor)


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove the temp files of `target` left by a write_atomically that was killed before its rename, and
    return them. A writer holds an exclusive lock on its temp file until the rename, and the kernel drops
    that lock when the process dies: a temp file whose lock can be taken has no live writer."""
    # tempfile.mkstemp's names: the prefix and 8 random characters from this set.
    temp_name = re.compile(re.escape(_temp_prefix(target)) + r"[a-z0-9_]{8}")
    removed = []
    for path in target.parent.iterdir() if target.parent.is_dir() else ():
        if not temp_name.fullmatch(path.name) or path.is_symlink() or not path.is_file():
            continue
        try:
            with open(path, "rb") as temp:
                fcntl.flock(temp, fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink()
        except OSError:
            continue  # being written (its lock is held), or gone already, or not ours to remove
        removed.append(path)
    return removed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--line", required=True, help="CPython X.Y")
    parser.add_argument("--target", choices=("wasi", "emscripten"), default="wasi")
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--host-build", type=Path, required=True)
    parser.add_argument("--build-python", type=Path, required=True)
    parser.add_argument("--exclude", action="append", default=[], help="a path in Lib/ to leave out (repeatable)")
    parser.add_argument("--mtime", type=int, required=True, help="SOURCE_DATE_EPOCH")
    parser.add_argument("--output", type=Path, required=True)
    package(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
