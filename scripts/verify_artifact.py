#!/usr/bin/env python3
"""Verify a cpython-wasm-recipes artifact: standard library only, Python 3.9 or newer.

Copy this one file anywhere and run:

    python3 verify_artifact.py ARTIFACT.tar.gz [--lock LOCKFILE.json] [--sha256 HEX]

ARTIFACT is an artifact (<name>.tar.gz, with manifest.json) or one of its
companions, which unpack over it: the debug artifact (<name>.debug.tar.gz, with
debug-manifest.json) and the devkit (<name>.devkit.tar.gz, devkit-manifest.json).
It checks, without unpacking anything to disk:

1. the artifact's sha256 against the lockfile's record of it (or --sha256),
   before anything is decompressed: another file is reported at once;
2. the gzip stream: one member, as Python's gzip writes it, and nothing after;
   the tar stream in it, header by header, against the one format artifacts have
   (Python's tarfile writes them, in PAX format): ustar headers of regular
   files and directories only, owned by 0:0 with mode 0644 or 0755, and a PAX
   header only where a name is longer than 100 bytes, holding that one
   `path` record. Anything else (links, devices, GNU long names, sparse
   files, global headers, any other PAX record) is refused, so that GNU tar
   and Python's tarfile cannot read different files out of what is checked;
3. every name: printable ASCII, canonical (no empty, `.` or `..` component,
   no leading `/`, a `/` at the end of directories only), under one top
   directory named like the artifact, unique (also ignoring case);
4. every file against the artifact's manifest.json (sha256 and size), and
   files the manifest does not list, and files it lists that are missing;
5. the manifest and python.wasm against the lockfile's hashes of them.

Whatever the input, the work is bounded: see the limits (MAX_*) below.

Exit status:
    0  verified: every check passed
    1  the content differs: a hash, a missing or an extra file (each is listed)
    2  usage: bad arguments, an unreadable or malformed lockfile, a lockfile for
       another artifact, an artifact that is not a regular file
    3  the archive is unsafe or malformed: a member of a kind or with a header
       artifacts never have, a name that is not canonical, links, devices,
       absolute or escaping paths, duplicates (each member is listed), a
       truncated or corrupt tarball, data hidden after a damaged header, more
       data than the limits allow (a decompression bomb), an invalid manifest
"""

import argparse
import hashlib
import json
import os
import posixpath
import re
import stat
import struct
import sys
import zlib

OK, DIFFERS, USAGE, UNSAFE = 0, 1, 2, 3
CHUNK = 1 << 20
MANIFEST = "manifest.json"
# Each companion's suffix and its manifest.
COMPANIONS = {".debug": "debug-manifest.json", ".devkit": "devkit-manifest.json"}
LOCKFILE_VERSION = 1

# -- limits: what any input may cost ---------------------------------------------------------------
# Real artifacts are 6 to 14 MB of gzip and unpack to under 3 times that (wasm code and .pyc files
# compress about 2.7:1); gzip unpacks a stream of zeros to 1000 times its size.
MAX_ARTIFACT_BYTES = 1 << 30  # the .tar.gz itself: ~70 times the largest real one, hashed in seconds
MAX_RATIO = 16  # unpacked/compressed: 6 times what real artifacts reach, 1/60 of what a bomb reaches
MIN_UNPACKED = 32 << 20  # any artifact may unpack to this much (tiny ones compress better): read in 0.1 s
MAX_UNPACKED = 1 << 30  # whatever its size: 30 times the largest real one (the debug artifact, ~30 MB)
# Once the manifest is read, the tar stream may be no longer than the files it lists make it (their
# headers, data and directories, exactly as cpython_wasm/container/package.py writes them) and this margin: what a
# manifest cannot declare is directories that hold no file (real artifacts have none; this is room for
# 700 such directories with long names), and extra files small enough to be reported by name.
DECLARED_MARGIN = 1 << 20
MAX_MEMBERS = 20000  # a real artifact has ~600 members; all of Lib/, tests included, would be ~2,700
MAX_NAME_BYTES = 1024  # the longest name in a real artifact is under 150 bytes (Linux's PATH_MAX is 4096)
MAX_COMPONENT_BYTES = 255  # Linux's NAME_MAX: no file system holds a longer file name
MAX_MANIFEST_BYTES = 4 << 20  # a real manifest is ~76 KB (~145 bytes a file): MAX_MEMBERS files need ~3 MB
MAX_LOCKFILE_BYTES = 16 << 20  # as cpython_wasm/records/lock.py reads; `invoke build` writes ~120 KB
MAX_JSON_DEPTH = 32  # a manifest nests 3 levels deep, a lockfile 5
MAX_JSON_DIGITS = 20  # a number in a manifest or lockfile is a size or a count (a long one parses in quadratic time)

# -- the gzip stream artifacts have: one member, as Python's gzip.GzipFile writes it --------------------
GZIP_MAGIC = b"\x1f\x8b\x08"  # and deflate
GZIP_NAME = 0x08  # the one optional header field Python's gzip writes (when given a file name)
MAX_GZIP_NAME = 4096  # a file name (Linux's PATH_MAX); Python's gzip reads one byte by byte, with no limit

# -- the tar format artifacts have: Python's tarfile, format=PAX_FORMAT, as package.write_tar writes it --
BLOCK = 512
RECORD = 20 * BLOCK  # tarfile and GNU tar pad an archive to whole records of 20 blocks
# After the last member: the end-of-archive marker (two zero blocks), then zeros to the end of a record.
MAX_END_BYTES = 2 * BLOCK + RECORD
USTAR_NAME = 100  # bytes of the name field; a longer name is given in a PAX `path` record
PAX_KEYS = (b"path",)  # the only record tarfile writes for these members (ASCII names, owner 0, small sizes)
# A PAX header holds one record, "<its length> path=<name>\n", of a name of at most MAX_NAME_BYTES.
MAX_PAX_BYTES = len(b"1035 path=\n") + MAX_NAME_BYTES
MODES = (0o644, 0o755)
FILE, DIRECTORY, PAX = b"0", b"5", b"x"
LINKS = (b"1", b"2")  # hard and symbolic: reported by name, as devices and FIFOs are
SPECIAL = (b"3", b"4", b"6")
OTHER_TYPES = {  # refused where they are met, with what follows them: tar readers disagree on what that is
    b"\0": "an old-style regular file", b"7": "a contiguous file", b"g": "a PAX global header",
    b"x": "a second PAX header in a row", b"L": "a GNU long name", b"K": "a GNU long link name",
    b"N": "an old GNU long name", b"S": "a GNU sparse file", b"M": "a GNU multi-volume continuation",
    b"V": "a volume label", b"D": "a GNU directory dump",
}
ZERO_BLOCK = bytes(BLOCK)
OCTAL = re.compile(rb"[0-7]+\0")
PAX_RECORD = re.compile(rb"([1-9][0-9]{0,5}) ([^=\n]*)=")
SHA256 = re.compile(r"[0-9a-f]{64}")


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


class Refused(Exception):
    """The tar stream is not read any further; the one-line reason (exit status 3)."""


def shown(value, limit=120):
    """A value quoted in a message, in ASCII (control characters escaped: they rewrite a terminal), cut short:
    it may be megabytes long."""
    text = ascii(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- JSON: lockfiles and manifests -----------------------------------------------------------------


def _unique_keys(pairs):
    value = dict(pairs)
    if len(value) != len(pairs):  # JSON readers differ on which one counts
        seen = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"the key {shown(twice)} appears twice in one object")
    return value


def _bounded_int(text):
    if len(text.lstrip("-")) > MAX_JSON_DIGITS:
        raise ValueError(f"a number of more than {MAX_JSON_DIGITS} digits")
    return int(text)


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def json_depth(value):
    """How many levels of arrays and objects nest in `value` (0 for a string or a number)."""
    depth, level = 0, [value]
    while True:
        containers = [node for node in level if isinstance(node, (dict, list))]
        if not containers:
            return depth
        depth += 1
        level = [child for node in containers for child in (node.values() if isinstance(node, dict) else node)]


def parse_json(data):
    """The value of a JSON text of at most a few MB; ValueError if it is not strict JSON nested at most
    MAX_JSON_DEPTH deep (duplicate keys, NaN, numbers of more than MAX_JSON_DIGITS digits are refused)."""
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_unique_keys, parse_int=_bounded_int,
                           parse_constant=_no_constant)
    except RecursionError:  # the parser's own bound on nesting, far above ours
        raise ValueError(f"arrays or objects nested more than {MAX_JSON_DEPTH} deep") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"arrays or objects nested more than {MAX_JSON_DEPTH} deep")
    return value


def is_sha256(value):
    return isinstance(value, str) and SHA256.fullmatch(value) is not None


def is_size(value):
    return type(value) is int and value >= 0  # bool is an int in Python, not in JSON


def read_bounded(path, limit):
    """The bytes of the regular file at `path`, at most `limit` of them; ValueError naming the problem.
    (Opened without blocking and checked before it is read: a FIFO or a device is refused, not waited on.)"""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise ValueError(f"cannot be opened: {error.strerror or error}") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):  # before fdopen, which refuses a directory with a traceback
        os.close(descriptor)
        raise ValueError("is not a regular file")
    with os.fdopen(descriptor, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"is larger than {limit} bytes")
    return data


def read_lockfile(path):
    """The JSON value of the lockfile at `path`, read within MAX_LOCKFILE_BYTES and MAX_JSON_DEPTH; ValueError
    saying what is wrong with it (its shape is lockfile_problem's to check)."""
    data = read_bounded(path, MAX_LOCKFILE_BYTES)
    try:
        lock = parse_json(data)
    except ValueError as error:
        raise ValueError(f"cannot be read as JSON: {error}") from None
    if lock is None:  # to verify(), None is no lockfile at all: an empty one must not pass for that
        raise ValueError("is null, not a JSON object")
    return lock


def lockfile_problem(lock):
    """What makes `lock` (a parsed lockfile) unusable here, or None. Only the keys verifying reads are
    checked; `invoke verify` checks the rest too (cpython_wasm/records/lock.py)."""
    if not isinstance(lock, dict):
        return "is not a JSON object"
    version = lock.get("lockfile_version")
    if type(version) is not int or version != LOCKFILE_VERSION:
        return f"has lockfile_version {shown(version)}; this script reads version {LOCKFILE_VERSION}"
    if not isinstance(lock.get("artifact"), str):
        return f"has artifact {shown(lock.get('artifact'))}, not the artifact's name"
    outputs = lock.get("outputs")
    if not isinstance(outputs, dict):
        return f"has outputs {shown(outputs)}, not an object of the files the build made"
    for name, entry in outputs.items():
        if not (isinstance(entry, dict) and is_sha256(entry.get("sha256")) and is_size(entry.get("size"))):
            return (f"has outputs.{shown(name)} {shown(entry)}, not an object with a sha256 (64 lowercase "
                    f"hexadecimal digits) and a size (a whole number)")
    return None


# -- names ---------------------------------------------------------------------------------------


def printable(name):
    """Whether `name` is printable ASCII: GNU tar stops at a NUL where tarfile does not, control characters
    rewrite a terminal, and other characters are bytes that file systems and archivers encode each their way."""
    return name.isascii() and name.isprintable()


def path_problem(path):
    """Why `path` (a member's name without the `/` a directory's ends with, or a manifest's key) is not a
    canonical relative path of printable ASCII, or None."""
    if not printable(path):
        return "has a NUL, a control or a non-ASCII character in its name (GNU tar and Python's tarfile read it differently)"
    if len(path.encode()) > MAX_NAME_BYTES:
        return f"has a name longer than {MAX_NAME_BYTES} bytes"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return ("is not a canonical path (an empty, '.' or '..' component, or a '/' where a file's name "
                "ends): tar readers differ on what it names")
    if any(len(part) > MAX_COMPONENT_BYTES for part in parts):
        return f"has a component longer than {MAX_COMPONENT_BYTES} bytes"
    return None


def member_problem(name, header, top):
    """Why the member `name` (as tar readers take it) of this header must not be extracted, or None."""
    if not printable(name):
        return path_problem(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if "\\" in name:
        return "has a backslash, which some extractors read as a directory separator"
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../") or "/../" in "/" + normal + "/":
        return "escapes the tree with '..'"
    if header.type in LINKS:
        return f"is a link (to {shown(header.linkname.decode('utf-8', 'surrogateescape'))}); artifacts contain no links"
    if header.type in SPECIAL:
        return "is a device, FIFO or other special file"
    if normal != top and not normal.startswith(top + "/"):
        return f"lies outside the top directory {top}/"
    if header.type == DIRECTORY and not name.endswith("/"):
        return "is a directory whose name does not end with '/', as tarfile writes it"
    problem = path_problem(name[:-1] if header.type == DIRECTORY else name)
    if problem:
        return problem
    if header.type == FILE and name == top:
        return f"is a file where the top directory {top}/ must be"
    return None


def pax_problem(path, header):
    """Why a member's PAX `path` and its ustar name do not say the same, or None: tarfile writes a `path` only
    for a name longer than 100 bytes, and the first 100 bytes of it in the ustar header. Readers of PAX (GNU
    tar, tarfile) and of ustar alone then name the same file."""
    if len(path) <= USTAR_NAME or header.name_field != path[:USTAR_NAME]:
        return (f"has a PAX path that differs from what its ustar header says ({shown(header.shown_name)}): tar "
                f"readers differ on its name")
    return None


# -- the tar stream ------------------------------------------------------------------------------


def padded(size):
    return -(-size // BLOCK) * BLOCK


def pax_record_length(key, value):
    """The length of the PAX record `<length> <key>=<value>\\n`, its own digits included (as tarfile counts)."""
    length = len(key) + len(value) + 3
    digits = len(str(length))
    while len(str(length + digits)) != digits:
        digits += 1
    return length + digits


def header_bytes(name):
    """The bytes of tar headers tarfile writes before the data of the member `name` (PAX format, ASCII names)."""
    encoded = name.encode()
    if len(encoded) <= USTAR_NAME:
        return BLOCK
    return BLOCK + padded(pax_record_length(b"path", encoded)) + BLOCK


def declared_unpacked_size(listed, top, manifest_name, manifest_size):
    """The exact length of the tar stream package.write_tar writes for the files a manifest lists (and
    the manifest itself): their headers and data, the directories that hold them, the end of the archive."""
    files = {f"{top}/{path}": entry["size"] for path, entry in listed.items()}
    files[f"{top}/{manifest_name}"] = manifest_size
    directories = {top}
    for name in files:
        parent = posixpath.dirname(name)
        while parent not in directories:
            directories.add(parent)
            parent = posixpath.dirname(parent)
    total = sum(header_bytes(name) + padded(size) for name, size in files.items())
    total += sum(header_bytes(name + "/") for name in directories)
    total += 2 * BLOCK
    return total + -total % RECORD


class GzipReader:
    """The decompressed bytes of a .tar.gz that is one gzip member, as Python's gzip writes it, checked (CRC-32
    and size) at its end. Not gzip.GzipFile: it reads any number of members, each header field byte by byte,
    and a stream of millions of empty members, or a name of a gigabyte, keeps it busy for minutes while it
    yields nothing. Here all of that is refused, and the work is zlib's (C) on at most the file's bytes."""

    def __init__(self, raw):
        self.raw, self.pending = raw, b""
        self.inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        self.crc = self.size = 0
        self.ended = False
        header = self._take(10)
        if header[:3] != GZIP_MAGIC:
            raise Refused("the tarball is not gzip-compressed (deflate)")
        if header[3] & ~GZIP_NAME:
            raise Refused(f"the tarball's gzip header has flags {header[3]:#04x}, where Python's gzip writes at most "
                          f"a file name ({GZIP_NAME:#04x})")
        if header[3] & GZIP_NAME:
            self._skip_name()

    def _more(self):
        data = self.raw.read(CHUNK)
        if not data:
            raise Refused("the tarball is truncated or corrupt: its gzip stream ends before its end")
        self.pending += data

    def _take(self, size):
        while len(self.pending) < size:
            self._more()
        data, self.pending = self.pending[:size], self.pending[size:]
        return data

    def _skip_name(self):
        while b"\0" not in self.pending[:MAX_GZIP_NAME + 1]:
            if len(self.pending) > MAX_GZIP_NAME:
                raise Refused(f"the tarball's gzip header names a file of more than {MAX_GZIP_NAME} bytes")
            self._more()
        self.pending = self.pending[self.pending.index(b"\0") + 1:]

    def read(self, size):
        """Up to `size` decompressed bytes; b"" at the end (once the member's end and the file's are checked)."""
        while not self.inflate.eof:
            data = self.inflate.decompress(self.pending, size)
            # At the end, what follows the deflate stream is unused_data (and may linger in unconsumed_tail too).
            self.pending = self.inflate.unconsumed_tail if not self.inflate.eof else b""
            if data:
                self.crc, self.size = zlib.crc32(data, self.crc), self.size + len(data)
                return data
            if not self.pending:
                self._more()
        if not self.ended:
            self._check_end()
        return b""

    def _check_end(self):
        self.pending = self.inflate.unused_data
        crc, size = struct.unpack("<II", self._take(8))
        if (crc, size) != (self.crc, self.size & 0xFFFFFFFF):
            raise Refused("the tarball is truncated or corrupt: its gzip checksum or size does not match its data")
        if self.pending or self.raw.read(1):
            raise Refused("data after the tarball's gzip stream (another gzip member, which gzip and GNU tar "
                          "unpack too): refused, the rest is not read")
        self.ended = True


class LimitedReader:
    """The decompressed tar stream, read exactly, and refused at once past `limit` bytes."""

    def __init__(self, stream, limit, why):
        self.stream, self.limit, self.why = stream, limit, why
        self.position = 0

    def lower_limit(self, limit, why):
        if limit < self.limit:
            self.limit, self.why = limit, why
        self.reserve(0)

    def reserve(self, size):
        """Refuse now if `size` more bytes would go past the limit (before anything is decompressed)."""
        if self.position + size > self.limit:
            raise Refused(f"the tarball unpacks to more than {self.limit} bytes ({self.why}): refused as a "
                          f"decompression bomb at offset {self.position}, the rest is not read")

    def read(self, size, exact=True):
        """`size` bytes, fewer only at the end of the stream. Unless `exact`, up to `size`, and past the
        limit only by the one byte that shows it was passed."""
        if exact:
            self.reserve(size)
        size = min(size, self.limit - self.position + 1)
        chunks, wanted = [], size
        while wanted:
            chunk = self.stream.read(wanted)
            if not chunk:
                break
            chunks.append(chunk)
            wanted -= len(chunk)
        data = b"".join(chunks)
        self.position += len(data)
        self.reserve(0)
        return data


class Header:
    """One 512-byte tar header, checked against what tarfile writes; Refused otherwise."""

    def __init__(self, block, offset):
        self.offset = offset
        self.type = block[156:157]
        self.name_field = block[:USTAR_NAME]
        self.name, _, rest = self.name_field.partition(b"\0")
        self.linkname = block[157:257].partition(b"\0")[0]
        problem = self._problem(block, rest)
        if problem:
            raise Refused(f"the tar header at offset {offset} ({shown(self.shown_name)}) {problem}, unlike any header "
                          f"Python's tarfile writes for an artifact: other tar readers may read it otherwise (the "
                          f"rest of the tarball is not read)")

    @property
    def shown_name(self):
        return self.name.decode("utf-8", "surrogateescape")

    def _problem(self, block, rest):
        if block[257:265] != b"ustar\x0000":
            return "is not a POSIX ustar header (magic 'ustar', version '00')"
        if block[148:156] != b"%06o\0 " % (sum(block[:148]) + sum(block[156:]) + 8 * ord(" ")):
            return "has a wrong checksum, or one not written as tarfile writes it"
        fields = {"mode": (100, 108), "uid": (108, 116), "gid": (116, 124), "size": (124, 136), "mtime": (136, 148)}
        for field, (start, end) in fields.items():
            if not OCTAL.fullmatch(block[start:end]):  # all but the last byte octal digits, as tarfile writes
                return f"has a {field} field that is not octal digits and a NUL"
            setattr(self, field, int(block[start:end - 1] or b"0", 8))
        if self.uid or self.gid or block[265:329].strip(b"\0"):
            return "has an owner other than 0:0 without names"
        if self.type not in SPECIAL and any(block[start:end] not in (bytes(8), b"0000000\0")
                                            for start, end in ((329, 337), (337, 345))):
            return "has device numbers"
        if block[345:512].strip(b"\0"):
            return "has a ustar prefix (tarfile writes long names in a PAX header) or data in its padding"
        if rest.strip(b"\0"):
            return "has bytes after the NUL that ends its name"
        if self.type in (FILE, DIRECTORY) and self.mode not in MODES:
            return f"has mode {self.mode:04o}, not 0644 or 0755"
        if self.type in (FILE, DIRECTORY) and self.linkname:
            return "has a link name"
        if self.type in (DIRECTORY, *LINKS, *SPECIAL) and self.size:
            return f"declares {self.size} bytes of data for a member that has none (tar readers skip them differently)"
        return None


class Contents:
    """One pass over an artifact's tar stream: the files it holds, its manifest, the problems on the way."""

    def __init__(self, reader, top, report, manifest_name):
        self.reader, self.top, self.report, self.manifest_name = reader, top, report, manifest_name
        self.files = {}  # path below the top directory: (sha256, size)
        self.kinds = {}  # every accepted member's path (the top directory's included): its type
        self.folded = {}  # the same paths in lower case: the path
        self.manifest = None  # the manifest's bytes; False if it was too large to be read
        self.listed = None  # the manifest's "files", once checked

    def read(self):
        """Read the whole stream; Refused at the first header or byte that cannot be read on."""
        members = 0
        while True:
            header = self._next_header(PAX)
            if header is None:
                break
            members += 1
            if members > MAX_MEMBERS:
                raise Refused(f"the tarball has more than {MAX_MEMBERS} members: refused at offset {header.offset}, "
                              f"the rest is not read")
            if header.type == PAX:
                path = self._pax_path(header)
                header = self._next_header()
                if header is None:
                    raise Refused("the tarball is truncated or corrupt: its last header is a PAX header, which no "
                                  "member follows")
                self._member(header, path.decode("utf-8", "surrogateescape"), pax_problem(path, header))
            else:
                self._member(header, header.shown_name)
        self._check_tree()

    def _next_header(self, *extended):
        """The next header (of a member, or of the `extended` types), or None at the end of the archive
        (checked)."""
        offset = self.reader.position
        block = self.reader.read(BLOCK)
        if block == ZERO_BLOCK:
            self._check_end(offset)
            return None
        if len(block) < BLOCK:
            raise Refused(f"the tarball is truncated or corrupt: it ends at offset {offset + len(block)}, "
                          f"without tar's end-of-archive marker")
        header = Header(block, offset)
        if header.type not in (FILE, DIRECTORY, *LINKS, *SPECIAL, *extended):
            kind = OTHER_TYPES.get(header.type, f"a member of type {shown(header.type.decode('latin-1'))}")
            raise Refused(f"member {shown(header.shown_name)} (offset {offset}) is {kind}, which artifacts never "
                          f"contain (the rest of the tarball is not read)")
        return header

    def _pax_path(self, header):
        """The `path` of a PAX extended header; Refused for any other record, or a malformed one."""
        where = f"the PAX header at offset {header.offset}"
        if not 0 < header.size <= MAX_PAX_BYTES:
            raise Refused(f"{where} holds {header.size} bytes: artifacts have PAX headers only for names longer "
                          f"than {USTAR_NAME} bytes, of at most {MAX_PAX_BYTES} bytes (the rest is not read)")
        _, payload = self._data(header.size, where, keep=True)
        records, position = {}, 0
        while position < len(payload):
            match = PAX_RECORD.match(payload, position)
            end = position + int(match.group(1)) if match else 0
            if not match or end > len(payload) or end <= match.end() or payload[end - 1:end] != b"\n":
                raise Refused(f"{where} has a malformed record at byte {position} (the rest is not read)")
            key = match.group(2)
            if key not in PAX_KEYS or key in records:
                raise Refused(f"{where} has a record {shown(key.decode('utf-8', 'surrogateescape'))}"
                              f"{' twice' if key in records else ''}: artifacts' PAX headers hold one `path`, "
                              f"for a name longer than {USTAR_NAME} bytes, and nothing else (the rest is not read)")
            records[key] = payload[match.end():end - 1]
            position = end
        return records[b"path"]

    def _member(self, header, name, problem=None):
        """Check a member and read its data: hashed if it is a file that may be extracted, skipped otherwise."""
        problem = member_problem(name, header, self.top) or problem or self._clash(name)
        if problem:
            self.report.add(UNSAFE, f"member {shown(name)} {problem} (rejected, not extracted)")
        else:
            path = name.rstrip("/")
            self.kinds[path] = header.type
            self.folded[path.lower()] = path
        if header.type != FILE:
            return
        what = f"member {shown(name)}"
        path = None if problem else name[len(self.top) + 1:]
        if path == self.manifest_name:
            self._manifest(header)
        elif path is None:
            self._data(header.size, what)
        else:
            self.files[path] = (self._data(header.size, what)[0], header.size)

    def _clash(self, name):
        """Why a member named `name` clashes with an earlier one, or None."""
        path = name.rstrip("/")
        if path in self.kinds:
            return "appears twice"
        other = self.folded.get(path.lower())
        if other is not None:
            return (f"differs from the member {shown(other)} only in case: one would replace the other on a "
                    f"case-insensitive file system (macOS, Windows)")
        return None

    def _data(self, size, what, keep=False):
        """Read a member's `size` bytes and its padding: (their sha256, the bytes if `keep`)."""
        self.reader.reserve(padded(size))  # a member too large is refused before it is decompressed
        digest, kept, remaining = hashlib.sha256(), [], size
        while remaining:
            chunk = self.reader.read(min(CHUNK, remaining))
            if not chunk:
                raise Refused(f"the tarball is truncated or corrupt: it ends inside {what}")
            remaining -= len(chunk)
            digest.update(chunk)
            if keep:
                kept.append(chunk)
        padding = self.reader.read(padded(size) - size)
        if len(padding) < padded(size) - size:
            raise Refused(f"the tarball is truncated or corrupt: it ends inside {what}")
        if padding.strip(b"\0"):
            raise Refused(f"{what} is followed by padding that is not zeros, where tarfile writes zeros (the rest "
                          f"of the tarball is not read)")
        return digest.hexdigest(), b"".join(kept) if keep else None

    def _manifest(self, header):
        """Read the manifest and check it; from now on the stream may be no longer than it declares."""
        name = self.manifest_name
        if header.size > MAX_MANIFEST_BYTES:
            self.report.add(UNSAFE, f"{name} is {header.size} bytes, more than any manifest ({MAX_MANIFEST_BYTES} "
                                    f"bytes): it is not read")
            self._data(header.size, f"member {name}")
            self.manifest = False
            return
        sha256, self.manifest = self._data(header.size, f"member {name}", keep=True)
        self.files[name] = (sha256, header.size)
        self.listed = parse_manifest(self.manifest, self.report, name)
        if self.listed is not None:
            declared = declared_unpacked_size(self.listed, self.top, name, header.size)
            self.reader.lower_limit(declared + DECLARED_MARGIN, f"{name} declares {declared} bytes, and "
                                                                 f"{DECLARED_MARGIN} more are allowed")

    def _check_end(self, offset):
        """Only tar's end marker and zeros may follow the last member. tarfile stops quietly at the first zero
        block or damaged header, where GNU tar may skip it and extract what follows; reading to the end of
        the stream also checks the gzip stream's own checksum."""
        rest = self.reader.read(MAX_END_BYTES - BLOCK + 1, exact=False)
        if rest.strip(b"\0"):
            raise Refused(f"data after the last readable member (offset {offset}): a damaged or hidden member "
                          f"that other tar readers may extract")
        if len(rest) < BLOCK:
            raise Refused(f"the tarball is truncated or corrupt: one zero block at offset {offset}, where tar's "
                          f"end-of-archive marker is two")
        if len(rest) > MAX_END_BYTES - BLOCK:
            raise Refused(f"more than {MAX_END_BYTES} bytes of zeros after the last member (offset {offset}), more "
                          f"than tar writes: refused as a decompression bomb, the rest is not read")

    def _check_tree(self):
        """No member lies under a file (also ignoring case): extracting it would replace the file, or fail."""
        files = {path.lower() for path, kind in self.kinds.items() if kind == FILE}
        file_above = {"": None}  # a directory (lowercase) -> the file it lies under, if any; each is walked once,
        # so deep trees of long names cost time in proportion to their size, not to its square

        def file_at_or_above(directory):
            pending = []
            while directory not in file_above:
                pending.append(directory)
                directory = posixpath.dirname(directory)
            found = file_above[directory]
            for directory in reversed(pending):
                found = found or (directory if directory in files else None)
                file_above[directory] = found
            return found

        for path in self.kinds:
            parent = file_at_or_above(posixpath.dirname(path).lower())
            if parent is not None:
                self.report.add(UNSAFE, f"member {shown(path)} lies under {shown(parent)}, which is a file "
                                        f"(rejected, not extracted)")


def unpacked_limit(compressed_size):
    """(bytes, why) the tar stream of a .tar.gz of `compressed_size` bytes may unpack to, before its manifest is read."""
    if MAX_RATIO * compressed_size <= MIN_UNPACKED:
        return MIN_UNPACKED, f"no artifact needs more than {MIN_UNPACKED} bytes"
    if MAX_RATIO * compressed_size >= MAX_UNPACKED:
        return MAX_UNPACKED, "the most any artifact may unpack to"
    return MAX_RATIO * compressed_size, f"{MAX_RATIO} times its {compressed_size} bytes"


def read_contents(stream, top, report, manifest_name, compressed_size):
    """Contents of the gzip'd tar `stream` (read to its end), or None if its reading was refused (reported)."""
    try:
        reader = LimitedReader(GzipReader(stream), *unpacked_limit(compressed_size))
        contents = Contents(reader, top, report, manifest_name)
        contents.read()
    except Refused as refusal:
        report.add(UNSAFE, str(refusal))
        return None
    except (OSError, zlib.error) as error:
        report.add(UNSAFE, f"the tarball is truncated or corrupt: {error}")
        return None
    return contents


def read_members(stream, top, report, manifest_name=MANIFEST):
    """{path below the top directory: (sha256, size)} of the regular files of the .tar.gz `stream` (an
    open file), and its manifest's bytes; (None, None) if the tarball was refused (reported)."""
    try:
        compressed_size = os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        compressed_size = MAX_ARTIFACT_BYTES
    contents = read_contents(stream, top, report, manifest_name, compressed_size)
    if contents is None:
        return None, None
    return contents.files, contents.manifest or None


def manifest_problem(document):
    """What makes a parsed manifest invalid, or None."""
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, dict):
        return "it is not a JSON object with \"files\""
    if len(files) > MAX_MEMBERS:
        return f"it lists {len(files)} files, more than {MAX_MEMBERS}"
    for path, entry in files.items():
        problem = path_problem(path)
        if problem:
            return f"the path {shown(path)} {problem}"
        if not (isinstance(entry, dict) and is_sha256(entry.get("sha256")) and is_size(entry.get("size"))):
            return (f"the entry of {shown(path)} is {shown(entry)}, not a sha256 (64 lowercase hexadecimal "
                    f"digits) and a size (a whole number)")
    return None


def parse_manifest(data, report, manifest_name=MANIFEST):
    """The manifest's {path: {"sha256", "size"}}, or None (reported) if it is not a valid manifest."""
    try:
        document = parse_json(data)
    except ValueError as error:
        problem = str(error)
    else:
        problem = manifest_problem(document)
        if problem is None:
            return document["files"]
    report.add(UNSAFE, f"{manifest_name} is not a valid manifest ({problem})")
    return None


# -- the artifact file ---------------------------------------------------------------------------


class HashingReader:
    """A file read once, front to back, each byte hashed as it is read."""

    def __init__(self, file):
        self.file = file
        self.digest = hashlib.sha256()

    def read(self, size=-1):
        data = self.file.read(size)
        self.digest.update(data)
        return data

    def hexdigest(self):
        """The sha256 of the whole file (the rest is read and hashed first)."""
        while self.read(CHUNK):
            pass
        return self.digest.hexdigest()


def expected_hash(lock, top, sha256, report, tarball=None):
    """The tarball's expected sha256: --sha256, else the lockfile's; None (reported) on a usage problem."""
    tarball = tarball or top + ".tar.gz"
    if lock is not None:
        problem = lockfile_problem(lock)
        if problem:
            report.add(USAGE, f"the lockfile {problem}: it is not a lockfile `invoke build` writes. Use the one "
                              f"published with the artifact (lockfiles/<artifact>.json)")
            return None
        if lock["artifact"] != top:
            report.add(USAGE, f"the lockfile is for {shown(lock['artifact'])}, not {shown(top)}")
            return None
        locked = (lock["outputs"].get(tarball) or {}).get("sha256")
        if not locked:
            report.add(USAGE, f"the lockfile records no sha256 for {tarball}")
            return None
        if sha256 is not None and sha256.lower() != locked:  # neither may stand in for the other
            report.add(USAGE, f"--sha256 {shown(sha256)} is not the sha256 the lockfile records for {tarball} "
                              f"({locked}): pass one of the two, or the two that belong together")
            return None
        sha256 = locked
    if sha256 is not None and not (len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256.lower())):
        report.add(USAGE, f"{shown(sha256)} is not a sha256 (64 hexadecimal digits)")
        return None
    return sha256.lower() if sha256 else None


def open_artifact(artifact, report):
    """The artifact open for reading, and its size; None (reported) if it is no regular file, or too large."""
    try:
        descriptor = os.open(artifact, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
    except OSError as error:
        report.add(USAGE, f"cannot read {artifact}: {error}")
        return None
    status = os.fstat(descriptor)  # before fdopen, which refuses a directory with a traceback
    if not stat.S_ISREG(status.st_mode):
        report.add(USAGE, f"cannot read {artifact}: it is not a regular file (pass the artifact's .tar.gz)")
    elif status.st_size > MAX_ARTIFACT_BYTES:
        report.add(UNSAFE, f"{artifact} is {status.st_size} bytes, more than any artifact ({MAX_ARTIFACT_BYTES}): "
                           f"refused unread")
    else:
        return os.fdopen(descriptor, "rb"), status.st_size
    os.close(descriptor)
    return None


def verify(artifact, lock=None, expected_sha256=None):
    """Verify an artifact; return the Report."""
    report = Report()
    name = artifact_name(artifact)
    # A companion has the top directory of the artifact it belongs to.
    companion = next((suffix for suffix in COMPANIONS if name.endswith(suffix)), None)
    top, manifest_name = (name[: -len(companion)], COMPANIONS[companion]) if companion else (name, MANIFEST)
    expected_sha256 = expected_hash(lock, top, expected_sha256, report, name + ".tar.gz")
    if report.problems:
        return report
    opened = open_artifact(artifact, report)
    if opened is None:
        return report
    file, size = opened
    try:
        with file:
            if expected_sha256:  # before anything is decompressed: a file that is not the locked one stops here
                actual = HashingReader(file).hexdigest()
                if actual != expected_sha256:
                    report.add(DIFFERS, f"{name}.tar.gz: expected sha256 {expected_sha256}, got {actual}")
                    return report
                file.seek(0)
            stream = HashingReader(file)
            contents = read_contents(stream, top, report, manifest_name, size)
            if expected_sha256 and stream.hexdigest() != expected_sha256:  # the bytes decompressed were those hashed
                report.problems.insert(0, (DIFFERS, f"{name}.tar.gz changed while it was verified: its sha256 is no "
                                                    f"longer {expected_sha256}"))
    except OSError as error:
        report.add(USAGE, f"cannot read {artifact}: {error}")
        return report
    if contents is None:
        return report
    if contents.manifest is None:
        report.add(DIFFERS, f"{manifest_name} is missing from the artifact")
    if contents.listed is None:
        return report
    compare(contents.files, contents.listed, manifest_name, report)
    recorded = lock["outputs"] if lock and not companion else {}
    for path in (MANIFEST, "python.wasm"):
        entry = recorded.get(path)
        if entry and path in contents.files and contents.files[path][0] != entry["sha256"]:
            report.add(DIFFERS, f"{path}: the lockfile records sha256 {entry['sha256']}, the artifact has "
                                f"{contents.files[path][0]}")
    return report


def compare(files, listed, manifest_name, report):
    """Report the files missing, extra or different between the artifact and its manifest."""
    for path in sorted(set(listed) - set(files)):
        report.add(DIFFERS, f"{path}: listed in the manifest, missing from the artifact")
    for path in sorted(set(files) - set(listed) - {manifest_name}):
        report.add(DIFFERS, f"{path}: in the artifact, not in the manifest (extra file)")
    for path in sorted(set(files) & set(listed)):
        sha256, size = files[path]
        if sha256 != listed[path]["sha256"] or size != listed[path]["size"]:
            report.add(DIFFERS, "{}: expected sha256 {} ({} bytes), got {} ({} bytes)".format(
                path, listed[path]["sha256"], listed[path]["size"], sha256, size))


def main(argv=None):
    for stream in (sys.stdout, sys.stderr):  # an artifact's or a lockfile's name may be in no encoding of the terminal
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = argparse.ArgumentParser(description="Verify a cpython-wasm-recipes artifact (see the module docstring).")
    parser.add_argument("artifact", help="the artifact, e.g. python-3.13.5-wasi_sdk-25-debian.tar.gz")
    parser.add_argument("--lock", help="its lockfile (lockfiles/<artifact>.json)")
    parser.add_argument("--sha256", help="the artifact's expected sha256, when there is no lockfile")
    try:
        options = parser.parse_args(argv)
    except SystemExit as exit_:
        return USAGE if exit_.code else OK
    lock = None
    if options.lock is not None:  # `--lock ""` (an unset variable in a script) is a lockfile that is not there
        try:
            lock = read_lockfile(options.lock)
        except ValueError as error:
            print(f"error: the lockfile {options.lock} {error}. Pass the lockfile published with the artifact "
                  f"(lockfiles/<artifact>.json), as `invoke build` wrote it.", file=sys.stderr)
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
