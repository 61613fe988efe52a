"""The JavaScript CPython's browser pages load from CDNs (xterm.js, Ace), shipped beside the page instead.

CPython's REPL pages (python.html for 3.11-3.13, index.html and the PyREPL
page for 3.14+) load their terminal and editor from unpkg.com and cdnjs at run
time, so offline, or where those are blocked, they never start. The package
stage extracts the same files from the pinned npm tarballs (recipes/web/) into
<artifact>/vendor/<name>-<version>/ and points the pages' URLs, and the imports
of the module scripts they load, there. The pages' integrity attributes stay:
the browser still checks the bytes (the PyREPL page's imports name no version
and no hash: the recipes pin them).

Runs in the package stage with the standard library only (see package.py).
"""

import json
import re
import tarfile
from pathlib import Path

MAX_FILE_BYTES = 16 << 20  # the largest file shipped (Ace's ace.js) is ~0.5 MB
# A stylesheet or script a page loads over the network: what must not be left once the pages are rewritten.
REMOTE_ASSET = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"'](https?://[^\"']+)", re.IGNORECASE)
# A module script a page loads from beside itself (the PyREPL page's pyrepl.mjs), which is rewritten too.
LOCAL_MODULE = re.compile(r"<script\b[^>]*\btype\s*=\s*[\"']module[\"'][^>]*\bsrc\s*=\s*[\"']([\w.-]+\.mjs)[\"']",
                          re.IGNORECASE)
# What such a module imports over the network (a static import, or a dynamic one).
REMOTE_IMPORT = re.compile(r"""\bimport\b\s*(?:\(\s*|[^"';]*?\bfrom\s*|)["'](https?://[^"']+)["']""")


def extract_package_files(tarball: Path, paths: list[str], destination: Path) -> None:
    """Each of `paths` (under package/ in an npm tarball) copied to destination/<path>: regular files only, of
    bounded size, read by name (nothing else in the tarball is unpacked)."""
    with tarfile.open(tarball, "r:gz") as archive:
        for path in paths:
            member = archive.getmember(f"package/{path}")
            if not member.isreg() or member.size > MAX_FILE_BYTES:
                raise ValueError(f"{tarball.name}: package/{path} is not a regular file of at most {MAX_FILE_BYTES} bytes")
            target = destination / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.extractfile(member).read())


def ship_web_packages(root: Path, packages: list[dict]) -> list[str]:
    """Extract each package's files into root/<directory>/ and point every page (root/*.html) and every module
    script a page loads from beside itself at them; the files rewritten. `packages`: {"tarball", "directory",
    "files": [{"path", "url"}]} each. Raises if a page still loads a script or stylesheet, or a module still
    imports one, from the network."""
    replacements = {}
    for package in packages:
        extract_package_files(Path(package["tarball"]), [entry["path"] for entry in package["files"]],
                              root / package["directory"])
        for entry in package["files"]:
            if entry.get("url"):
                replacements[entry["url"]] = f"{package['directory']}/{entry['path']}"
    pages = sorted(root.glob("*.html"))
    modules = sorted({root / name for page in pages for name in LOCAL_MODULE.findall(page.read_text(encoding="utf-8"))
                      if (root / name).is_file()})
    rewritten = []
    # A page names a shipped file relative to itself; a module must say ./ (a bare name is a package specifier).
    for path, prefix, remote_pattern in [*((page, "", REMOTE_ASSET) for page in pages),
                                         *((module, "./", REMOTE_IMPORT) for module in modules)]:
        text = original = path.read_text(encoding="utf-8")
        for url, local in replacements.items():
            text = text.replace(url, prefix + local)
        remote = remote_pattern.findall(text)
        if remote:
            raise ValueError(f"{path.name} loads {', '.join(remote)} from the network, which no package of "
                             f"recipes/web/ ships: pin it there and name it in the line's web_packages")
        if text != original:
            path.write_text(text, encoding="utf-8")
            rewritten.append(path.name)
    return rewritten


def parse_web_package(argument: str) -> dict:
    """A --web-package argument (JSON: tarball, directory, files)."""
    package = json.loads(argument)
    if not isinstance(package, dict) or set(package) != {"tarball", "directory", "files"}:
        raise ValueError(f"--web-package: expected tarball, directory and files, got {argument[:200]!r}")
    return package
