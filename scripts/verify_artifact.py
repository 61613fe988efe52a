#!/usr/bin/env python3
"""Verify a cpython-wasm-recipes artifact: standard library only, Python 3.9 or newer.

Copy this one file anywhere and run:

    python3 verify_artifact.py ARTIFACT.tar.gz [--lock LOCKFILE.json] [--sha256 HEX]

ARTIFACT is an artifact (<name>.tar.gz, with manifest.json) or its debug
artifact (<name>.debug.tar.gz, which unpacks over it, with debug-manifest.json).
It checks, without unpacking anything to disk:

1. the artifact's sha256 against the lockfile's record of it (or --sha256);
2. every member of the tarball: one top directory named like the artifact,
   regular files and directories only; absolute paths, `..`, links, devices
   and duplicate names are reported and never extracted;
3. every file against the artifact's manifest.json (sha256 and size), and
   files the manifest does not list, and files it lists that are missing;
4. the manifest and python.wasm against the lockfile's hashes of them.

Exit status:
    0  verified: every check passed
    1  the content differs: a hash, a missing or an extra file (each is listed)
    2  usage: bad arguments, an unreadable lockfile, a lockfile for another artifact
    3  the archive is unsafe or malformed: links, devices, absolute or escaping
       paths, duplicates (each member is listed), a truncated or corrupt
       tarball, data hidden after a damaged header, an invalid manifest.json
"""

import argparse
import gzip
import hashlib
import io
import json
import posixpath
import sys
import tarfile
import zlib

OK, DIFFERS, USAGE, UNSAFE = 0, 1, 2, 3
CHUNK = 1 << 20
MANIFEST = "manifest.json"
DEBUG_SUFFIX, DEBUG_MANIFEST = ".debug", "debug-manifest.json"


def sha256_stream(stream):
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def artifact_name(path):
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return name[: -len(".tar.gz")] if name.endswith(".tar.gz") else name


class Report:
    """What a verification found; `status` is the exit status it calls for."""

    def __init__(self):
        self.problems = []  # (status, message)

    def add(self, status, message):
        self.problems.append((status, message))

    @property
    def status(self):
        return max((status for status, _ in self.problems), default=OK)


def unsafe_reason(member, top):
    """Why a tar member must not be extracted, or None if it is acceptable."""
    name = member.name
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if "\\" in name:
        return "has a backslash, which some extractors read as a directory separator"
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../") or "/../" in "/" + normal + "/":
        return "escapes the tree with '..'"
    if member.issym() or member.islnk():
        return f"is a link (to {member.linkname!r}); artifacts contain no links"
    if not (member.isfile() or member.isdir()):
        return "is a device, FIFO or other special file"
    if normal != top and not normal.startswith(top + "/"):
        return f"lies outside the top directory {top}/"
    return None


class HashingReader:
    """A file whose bytes are hashed, each once and in order, as they are first read.

    The tarball's sha256 comes from the very bytes whose members are checked,
    through one open file, so a file replaced between two reads cannot pass.
    (gzip rewinds to the start when tarfile looks one byte back; bytes read a
    second time are not hashed again.)"""

    def __init__(self, file):
        self.file = file
        self.digest = hashlib.sha256()
        self.hashed = 0  # bytes 0..hashed have gone into the digest

    def read(self, size=-1):
        position = self.file.tell()
        data = self.file.read(size)
        if position + len(data) > self.hashed:
            self.digest.update(data[self.hashed - position:])
            self.hashed = position + len(data)
        return data

    def seek(self, offset, whence=0):
        target = self.file.seek(offset, whence)
        if target > self.hashed:  # never skip bytes: the digest must see them all
            self.file.seek(self.hashed)
            while self.file.tell() < target and self.read(min(CHUNK, target - self.file.tell())):
                pass
        return self.file.tell()

    def tell(self):
        return self.file.tell()

    def hexdigest(self):
        """The sha256 of the whole file (the rest is read and hashed first)."""
        self.seek(0, 2)
        return self.digest.hexdigest()


def read_members(stream, top, report, manifest_name=MANIFEST):
    """{path below the top directory: (sha256, size)} of the regular files, and manifest.json's bytes.

    Reads the whole gzip stream, to its checksum, and requires the bytes after
    the last member to be tar's zero padding: tarfile stops quietly at a bad
    header, where GNU tar skips it and extracts what follows."""
    files, seen, manifest = {}, set(), None
    try:
        with gzip.GzipFile(fileobj=stream, mode="rb") as tar_stream:
            with tarfile.open(fileobj=tar_stream, mode="r:") as tar:
                for member in tar:
                    normal = posixpath.normpath(member.name)
                    if normal in seen:
                        report.add(UNSAFE, f"member {member.name!r} appears twice")
                    seen.add(normal)
                    reason = unsafe_reason(member, top)
                    if reason:
                        report.add(UNSAFE, f"member {member.name!r} {reason} (rejected, not extracted)")
                        continue
                    if member.isfile():
                        data = tar.extractfile(member)
                        path = normal[len(top) + 1:]
                        if path == manifest_name:
                            manifest = data.read()
                            data = io.BytesIO(manifest)
                        files[path] = sha256_stream(data)
                end = tar.offset
            tar_stream.seek(end)
            if any(chunk.strip(b"\0") for chunk in iter(lambda: tar_stream.read(CHUNK), b"")):
                report.add(UNSAFE, f"data after the last readable member (offset {end}): a damaged or "
                                   f"hidden member that other tar readers may extract")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        report.add(UNSAFE, f"the tarball is truncated or corrupt: {error}")
        return None, None
    return files, manifest


def parse_manifest(data, report, manifest_name=MANIFEST):
    """The manifest's {path: {"sha256", "size"}}, or None (reported) if it is not a valid manifest."""
    try:
        files = json.loads(data.decode("utf-8"))["files"]
        if all(isinstance(entry["sha256"], str) and isinstance(entry["size"], int) for entry in files.values()):
            return files
        problem = "an entry's sha256 is not a string or its size not an integer"
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        problem = f"{type(error).__name__}: {error}"
    report.add(UNSAFE, f"{manifest_name} is not a valid manifest ({problem})")
    return None


def expected_hash(lock, top, sha256, report, tarball=None):
    """The tarball's expected sha256: --sha256, else the lockfile's; None (reported) on a usage problem."""
    tarball = tarball or top + ".tar.gz"
    if lock is not None:
        if not isinstance(lock, dict) or not isinstance(lock.get("outputs"), dict):
            report.add(USAGE, "the lockfile is not a lockfile (a JSON object with \"outputs\")")
            return None
        if lock.get("artifact") != top:
            report.add(USAGE, f"the lockfile is for {lock.get('artifact')!r}, not {top!r}")
            return None
        sha256 = sha256 or (lock["outputs"].get(tarball) or {}).get("sha256")
        if not sha256:
            report.add(USAGE, f"the lockfile records no sha256 for {tarball}")
            return None
    if sha256 is not None and not (len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256.lower())):
        report.add(USAGE, f"{sha256!r} is not a sha256 (64 hexadecimal digits)")
        return None
    return sha256.lower() if sha256 else None


def verify(artifact, lock=None, expected_sha256=None):
    """Verify an artifact; return the Report."""
    report = Report()
    name = artifact_name(artifact)
    debug = name.endswith(DEBUG_SUFFIX)  # a debug artifact has the top directory of the artifact it belongs to
    top, manifest_name = (name[: -len(DEBUG_SUFFIX)], DEBUG_MANIFEST) if debug else (name, MANIFEST)
    expected_sha256 = expected_hash(lock, top, expected_sha256, report, name + ".tar.gz")
    if report.problems:
        return report
    try:
        with open(artifact, "rb") as file:
            stream = HashingReader(file)
            files, manifest = read_members(stream, top, report, manifest_name)
            actual = stream.hexdigest()
    except OSError as error:
        report.add(USAGE, f"cannot read {artifact}: {error}")
        return report
    if expected_sha256 and actual != expected_sha256:  # reported first: it says the rest is not the locked artifact
        report.problems.insert(0, (DIFFERS, f"{name}.tar.gz: expected sha256 {expected_sha256}, got {actual}"))
    if files is None:
        return report
    if manifest is None:
        report.add(DIFFERS, f"{manifest_name} is missing from the artifact")
        return report
    listed = parse_manifest(manifest, report, manifest_name)
    if listed is None:
        return report
    for path in sorted(set(listed) - set(files)):
        report.add(DIFFERS, f"{path}: listed in the manifest, missing from the artifact")
    for path in sorted(set(files) - set(listed) - {manifest_name}):
        report.add(DIFFERS, f"{path}: in the artifact, not in the manifest (extra file)")
    for path in sorted(set(files) & set(listed)):
        sha256, size = files[path]
        if sha256 != listed[path]["sha256"] or size != listed[path]["size"]:
            report.add(DIFFERS, "{}: expected sha256 {} ({} bytes), got {} ({} bytes)".format(
                path, listed[path]["sha256"], listed[path]["size"], sha256, size))
    recorded = lock["outputs"] if lock and not debug else {}
    for path in (MANIFEST, "python.wasm"):
        entry = recorded.get(path)
        if isinstance(entry, dict) and path in files and files[path][0] != entry.get("sha256"):
            report.add(DIFFERS, f"{path}: the lockfile records sha256 {entry.get('sha256')}, the artifact has {files[path][0]}")
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description="Verify a cpython-wasm-recipes artifact (see the module docstring).")
    parser.add_argument("artifact", help="the artifact, e.g. python-3.13.5-wasi_sdk-25-debian.tar.gz")
    parser.add_argument("--lock", help="its lockfile (lockfiles/<artifact>.json)")
    parser.add_argument("--sha256", help="the artifact's expected sha256, when there is no lockfile")
    try:
        options = parser.parse_args(argv)
    except SystemExit as exit_:
        return USAGE if exit_.code else OK
    lock = None
    if options.lock:
        try:
            with open(options.lock, encoding="utf-8") as file:
                lock = json.load(file)
        except (OSError, ValueError) as error:
            print(f"error: cannot read the lockfile {options.lock}: {error}", file=sys.stderr)
            return USAGE
    report = verify(options.artifact, lock, options.sha256)
    for _, message in report.problems:
        print(message)
    if report.status == OK:
        print("verified: {} ({})".format(options.artifact, "every file matches its manifest" +
                                        (" and the lockfile" if lock else "")))
    return report.status


if __name__ == "__main__":
    sys.exit(main())
