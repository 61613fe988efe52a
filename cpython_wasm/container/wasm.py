"""python.wasm's sections: find its DWARF and split it off into the debug file (standard library only)."""

import shutil
from pathlib import Path

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
