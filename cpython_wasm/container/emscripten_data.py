"""An Emscripten artifact's files: what each kind of build writes and its name in the artifact, and the standard
library zips (preloaded in python.data, 3.11-3.13; beside python.mjs, 3.14+) with their entry times set to
SOURCE_DATE_EPOCH (standard library only)."""

import io
import re
import struct
import time
import zipfile
from pathlib import Path

# What the link of Emscripten's "browser" flavour writes (3.11-3.13).
EMSCRIPTEN_FILES = ("python.js", "python.wasm", "python.data", "python.html", "python.worker.js")
# What Platforms/emscripten's build writes (3.14+), in its build directory, and its name in the artifact: the
# web example (the ES module, the standard library zip it fetches, CPython's REPL page, its worker and the
# server that sends the headers the page needs), the PyREPL page (web_example_pyrepl_jspi/: a page and its
# module, which load the same python.mjs and zip from beside themselves, so they lie beside the web example's
# under names of their own), and the Node entry point with its streams; {line} is X.Y.
HELPER_FILES = {
    "web_example/python.mjs": "python.mjs", "web_example/python.wasm": "python.wasm",
    "web_example/python{line}.zip": "python{line}.zip", "web_example/index.html": "index.html",
    "web_example/python.worker.mjs": "python.worker.mjs", "web_example/server.py": "server.py",
    "web_example_pyrepl_jspi/index.html": "pyrepl.html", "web_example_pyrepl_jspi/src.mjs": "pyrepl.mjs",
    "node_entry.mjs": "node_entry.mjs", "streams.mjs": "streams.mjs",
}
# How the PyREPL page loads its module (upstream's name), and what it loads in the artifact.
PYREPL_MODULE = ('<script type="module" src="src.mjs">', '<script type="module" src="pyrepl.mjs">')
# The file packager's table in python.js: where each preloaded file lies in python.data.
PRELOADED_FILE = re.compile(rb'\{\s*"?filename"?\s*:\s*"([^"]+)"\s*,\s*"?start"?\s*:\s*(\d+)\s*,\s*"?end"?\s*:\s*(\d+)')


def dos_timestamp(epoch: int) -> bytes:
    """A zip entry's time and date fields for `epoch` (UTC; zip cannot say before 1980)."""
    t = time.gmtime(max(epoch, 315532800))
    return struct.pack("<HH", (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2),
                       ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday)


def point_pyrepl_page(page: Path) -> None:
    """Make the PyREPL page load its module by its name in the artifact; it must name it exactly once."""
    text = page.read_text(encoding="utf-8")
    upstream, shipped = PYREPL_MODULE
    if text.count(upstream) != 1:
        raise ValueError(f"{page.name}: expected one {upstream} (CPython's web_example_pyrepl_jspi/index.html), "
                         f"found {text.count(upstream)}")
    page.write_text(text.replace(upstream, shipped), encoding="utf-8")


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


def normalise_zip_file(path: Path, epoch: int) -> int:
    """Normalise the entry times of the zip at `path`; the number of entries."""
    data = bytearray(path.read_bytes())
    count = normalise_zip_times(data, 0, len(data), epoch)
    path.write_bytes(data)
    return count


def preloaded_zips(loader: Path, data_file: Path) -> list[tuple[int, int]]:
    """Where in python.data each zip archive it preloads lies (start, end), as python.js's table says."""
    zips = [(int(start), int(end)) for name, start, end in PRELOADED_FILE.findall(loader.read_bytes())
            if name.endswith(b".zip")]
    if not zips:
        raise ValueError(f"{loader} names no preloaded .zip file (the standard library) in {data_file.name}")
    return zips


def normalise_preloaded_zips(loader: Path, data_file: Path, epoch: int) -> int:
    """Normalise the times of the zip archives preloaded in python.data; the number of zips."""
    data = bytearray(data_file.read_bytes())
    zips = preloaded_zips(loader, data_file)
    for start, end in zips:
        normalise_zip_times(data, start, end, epoch)
    data_file.write_bytes(data)
    return len(zips)


def stdlib_top_level(artifact: Path) -> set[str]:
    """The top-level names (os, json, email...) of the standard library an unpacked Emscripten artifact
    carries: in python3.X.zip (3.14+), or in the zips python.data preloads (3.11-3.13)."""
    zips = [path.read_bytes() for path in artifact.glob("python3.*.zip")]
    if not zips:
        data = (artifact / "python.data").read_bytes()
        zips = [data[start:end] for start, end in preloaded_zips(artifact / "python.js", artifact / "python.data")]
    names = set()
    for archive in zips:
        for name in zipfile.ZipFile(io.BytesIO(archive)).namelist():
            top = name.split("/")[0]
            names.add(top.split(".")[0] if "/" not in name else top)
    return names
