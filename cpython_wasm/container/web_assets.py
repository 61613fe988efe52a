"""The JavaScript CPython's browser pages load from CDNs (xterm.js, Ace), shipped beside the page instead.

CPython's REPL pages (python.html for 3.11-3.13, index.html for 3.14+) load
their terminal and editor from unpkg.com and cdnjs at run time, so offline,
or where those are blocked, they never start. The package stage extracts the
same files from the pinned npm tarballs (recipes/web/) into
<artifact>/vendor/<name>-<version>/ and points the pages' URLs there. The
pages' integrity attributes stay: the browser still checks the bytes.

Runs in the package stage with the standard library only (see package.py).
"""

import json
import re
import tarfile
from pathlib import Path

MAX_FILE_BYTES = 16 << 20  # the largest file shipped (Ace's ace.js) is ~0.5 MB
# A stylesheet or script a page loads over the network: what must not be left once the pages are rewritten.
REMOTE_ASSET = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"'](https?://[^\"']+)", re.IGNORECASE)


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
    """Extract each package's files into root/<directory>/ and point every page (root/*.html) at them; the
    pages rewritten. `packages`: {"tarball", "directory", "files": [{"path", "url"}]} each. Raises if a page
    still loads a script or stylesheet from the network."""
    replacements = {}
    for package in packages:
        extract_package_files(Path(package["tarball"]), [entry["path"] for entry in package["files"]],
                              root / package["directory"])
        for entry in package["files"]:
            if entry.get("url"):
                replacements[entry["url"]] = f"{package['directory']}/{entry['path']}"
    rewritten = []
    for page in sorted(root.glob("*.html")):
        text = original = page.read_text(encoding="utf-8")
        for url, local in replacements.items():
            text = text.replace(url, local)
        remote = REMOTE_ASSET.findall(text)
        if remote:
            raise ValueError(f"{page.name} loads {', '.join(remote)} from the network, which no package of "
                             f"recipes/web/ ships: pin it there and name it in the line's web_packages")
        if text != original:
            page.write_text(text, encoding="utf-8")
            rewritten.append(page.name)
    return rewritten


def parse_web_package(argument: str) -> dict:
    """A --web-package argument (JSON: tarball, directory, files)."""
    package = json.loads(argument)
    if not isinstance(package, dict) or set(package) != {"tarball", "directory", "files"}:
        raise ValueError(f"--web-package: expected tarball, directory and files, got {argument[:200]!r}")
    return package
