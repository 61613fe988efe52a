"""Synthetic artifacts: laid out and packed as the project packs real ones, in a few bytes."""

import json
import tempfile
from pathlib import Path

from cpython_wasm.container.tarball import manifest_of, tree_entries, write_tar_gz

NAME = "python-3.13.5-wasi_sdk-25-debian"
WASM = b"\0asm\x01\0\0\0" + bytes(i % 251 for i in range(1000))
TAMPERED = WASM[:500] + bytes([WASM[500] ^ 1]) + WASM[501:]  # one changed byte
FILES = {
    "python.wasm": WASM,
    "lib/python3.13/os.py": b'"""OS routines."""\nimport sys\n',
    "lib/python3.13/json/__init__.py": b'"""JSON encoder and decoder."""\n',
}

def pack(tmp: Path, files: dict, manifest: dict | str | None = None) -> Path:
    """Package `files` as the project does into tmp/dist/<NAME>.tar.gz (replacing it), with a manifest.json
    listing `manifest` (by default: these very files; a str is its whole text). Returns the staged <NAME>/."""
    root = Path(tempfile.mkdtemp(dir=tmp)) / NAME
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    if not isinstance(manifest, str):
        document = {"artifact": NAME, "files": manifest_of(root) if manifest is None else manifest}
        manifest = json.dumps(document, indent=1, sort_keys=True) + "\n"
    (root / "manifest.json").write_text(manifest, encoding="utf-8")
    (tmp / "dist").mkdir(exist_ok=True)
    write_tar_gz(tmp / "dist" / f"{NAME}.tar.gz", tree_entries(root, NAME), mtime=1749600000)
    return root
