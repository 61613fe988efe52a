"""Print, as JSON, every Debian package installed in this image with its .deb's sha256.

Runs inside an image build right after `apt-get update && apt-get install`,
while apt's package indices are still present: the sha256 of each installed
version is read from those indices, which apt has verified against the
archive's signed Release file. The lockfile records this list, so a rebuild
can be checked package by package. Standard library only (Debian's python3).
"""

import glob
import gzip
import json
import lzma
import subprocess
import sys


def installed():
    query = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n"],
        check=True, capture_output=True, text=True,
    ).stdout
    for line in query.splitlines():
        name, version, architecture, status = line.split("\t")
        if status.startswith("ii"):
            yield name, version, architecture


def open_index(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    if path.endswith(".xz"):
        return lzma.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def index_entries():
    """(name, version, architecture) -> (sha256, pool file name) from every Packages index."""
    entries = {}
    for path in sorted(glob.glob("/var/lib/apt/lists/*_Packages*")):
        with open_index(path) as index:
            for stanza in index.read().split("\n\n"):
                fields = {}
                for line in stanza.splitlines():
                    if line and not line[0].isspace() and ":" in line:
                        key, _, value = line.partition(":")
                        fields[key] = value.strip()
                if "Package" in fields and "SHA256" in fields:
                    key = (fields["Package"], fields["Version"], fields["Architecture"])
                    entries[key] = (fields["SHA256"], fields.get("Filename", ""))
    return entries


def main():
    entries = index_entries()
    if not entries:
        sys.exit("dpkg-inventory: no apt package index found; run it before removing /var/lib/apt/lists")
    packages = []
    for name, version, architecture in sorted(installed()):
        sha256, filename = entries.get((name, version, architecture), (None, None))
        packages.append({"name": name, "version": version, "architecture": architecture,
                         "sha256": sha256, "filename": filename})
    json.dump(packages, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
