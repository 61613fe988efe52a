"""Emscripten's python.data: the zips it preloads, their entry times set to SOURCE_DATE_EPOCH (standard library only)."""

import io
import re
import struct
import time
import zipfile
from pathlib import Path

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
