"""Rebuilding: proving a lockfile by building it again from scratch.

A rebuild reads what a lockfile asked for (CPython release, SDK, provider,
configure arguments, base), checks that this checkout's recipes are the ones
that wrote it, and builds in a fresh directory: a new store (nothing reused,
the base root filesystem bootstrapped again), images built again without the
engine's layer cache, every compile stage in new containers. Only the
download cache is shared: it holds inputs, each verified by its sha256.

The new lockfile is then compared with the old one key by key; a reproducible
build writes the very same bytes. When outputs differ, the two artifacts are
compared file by file (both hashes of each differing file), and diffoscope,
if it is installed, writes its detailed report beside. Everything goes to
`<rebuild dir>/report.json` and `report.txt`.
"""

import datetime
import json
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .build import Build
from .errors import UserError
from .lock import describe_recipes, locked_toolchain, read_build_lock
from .package import sha256_path, write_atomically
from .paths import Workspace, display_path
from .progress import Reporter
from .recipes import Plan, Recipes, host_arch
from .verify import verifier

DIFFOSCOPE_TIMEOUT = 1800


@dataclass
class Difference:
    key: str  # a lockfile key ("outputs/python.wasm/sha256") or a file of the artifact
    expected: object  # from the lockfile, or the original artifact
    actual: object  # from the rebuild


@dataclass
class RebuildReport:
    lockfile: str
    rebuild_dir: str
    started: str
    lock_differences: list[Difference] = field(default_factory=list)
    file_differences: list[Difference] = field(default_factory=list)
    original_artifact: str | None = None
    diffoscope: str | None = None

    @property
    def identical(self) -> bool:
        return not self.lock_differences and not self.file_differences

    def as_dict(self) -> dict:
        return {**asdict(self), "identical": self.identical}

    def as_text(self) -> str:
        lines = [f"Rebuild of {self.lockfile} in {self.rebuild_dir} (started {self.started}):"]
        if self.identical:
            lines.append("identical: every input, image package and output hash matches the lockfile.")
        for title, differences in (("lockfile keys that differ", self.lock_differences),
                                   ("files of the artifact that differ", self.file_differences)):
            if differences:
                lines.append(f"{len(differences)} {title} (expected → rebuilt):")
                lines += [f"  {d.key}: {d.expected} → {d.actual}" for d in differences]
        if self.lock_differences and not self.file_differences:
            lines.append("(no per-file comparison: " + (
                "the artifacts' files are identical)" if self.original_artifact else
                "no copy of the original artifact with the locked sha256; pass --artifact)"))
        if self.diffoscope:
            lines.append(f"diffoscope's report: {self.diffoscope}")
        return "\n".join(lines) + "\n"


def flatten(value, prefix: str = "") -> dict[str, object]:
    """A lockfile as {key path: leaf value}; lists of named things keyed by their names, so a diff names them."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list) and value and all(isinstance(item, dict) and "name" in item for item in value):
        items = ((item["name"], item) for item in value)
    elif isinstance(value, list) and value and any(isinstance(item, dict | list) for item in value):
        items = enumerate(value)
    else:
        return {prefix: value}
    flat = {}
    for key, item in items:
        flat.update(flatten(item, f"{prefix}/{key}" if prefix else str(key)))
    return flat


# Lockfile sections that record what was done with an artifact after its build
# (`invoke test`), not what the build made: a rebuild does not make them again.
AFTER_BUILD = ("tests",)


def compare(expected: dict, actual: dict) -> list[Difference]:
    old, new = (flatten({key: value for key, value in lock.items() if key not in AFTER_BUILD})
                for lock in (expected, actual))
    return [Difference(key, old.get(key), new.get(key)) for key in sorted(old.keys() | new.keys())
            if old.get(key) != new.get(key)]


def compare_artifacts(original: Path, rebuilt: Path) -> list[Difference]:
    """Per-file sha256 differences between two artifacts of the same name (read from the tar streams)."""
    top = verifier.artifact_name(str(rebuilt))
    files = []
    for path in (original, rebuilt):
        with open(path, "rb") as stream:
            found, _ = verifier.read_members(stream, top, verifier.Report())
        files.append({} if found is None else {name: sha256 for name, (sha256, _) in found.items()})
    old, new = files
    return [Difference(name, old.get(name, "(missing)"), new.get(name, "(missing)"))
            for name in sorted(old.keys() | new.keys()) if old.get(name) != new.get(name)]


def plan_from_lock(lock: dict, recipes: Recipes, lockfile: Path) -> tuple[Plan, list[str]]:
    """The plan a lockfile was built from, and the extra configure arguments it was given.

    Refuses when this checkout's recipes are not byte for byte the ones the
    lockfile records: a rebuild from other recipes proves nothing."""
    build = lock["build"]
    if build["host_arch"] != host_arch():
        raise UserError(f"Lockfile {display_path(lockfile)} was built on {build['host_arch']}; this machine is "
                        f"{host_arch()}. Rebuild it on an {build['host_arch']} machine.")
    target, sdk = locked_toolchain(build)
    plan = recipes.resolve(build["python"], sdk, build["provider"], target, build["host_arch"])
    base = lock["base"]
    plan = plan.with_base_image(base["image"]) if base["rootfs_sha256"] is None else plan.with_debian_mirror(base["mirror"])
    current = describe_recipes(plan)
    changed = sorted(name for name in current.keys() | lock["recipes"].keys()
                     if current.get(name) != lock["recipes"].get(name))
    if changed:
        raise UserError(
            f"The recipes have changed since {display_path(lockfile)} was written ({', '.join(changed)} differ from "
            f"the sha256 it records), so a rebuild here would not test that lockfile. Check out the commit that wrote "
            f"it (`git log -1 -- {display_path(lockfile)}`) and rebuild from there, or build anew with `invoke build`."
        )
    recipe_args = list(plan.support.configure_host_args)
    locked_args = build["configure_host_args"]
    return plan, locked_args[len(recipe_args):]


def rebuild(reporter: Reporter, lockfile: Path, rebuild_dir: Path | None = None, cache_dir=None, mirrors=(),
            artifact=None, recipes: Recipes | None = None, client=None) -> RebuildReport:
    """Rebuild `lockfile` in `rebuild_dir` (default: build/rebuilds/<artifact>-<UTC time>) and compare."""
    lock = read_build_lock(lockfile)
    plan, configure_args = plan_from_lock(lock, recipes or Recipes(), lockfile)
    now = datetime.datetime.now(datetime.UTC)
    if rebuild_dir is None:
        rebuild_dir = Workspace.from_options().build_dir / "rebuilds" / f"{lock['artifact']}-{now:%Y%m%dT%H%M%SZ}"
    if rebuild_dir.exists() and any(rebuild_dir.iterdir()):
        raise UserError(f"{display_path(rebuild_dir)} is not empty; a rebuild starts from an empty directory. "
                        f"Pass another --output or remove it.")
    workspace = Workspace.from_options(cache_dir, rebuild_dir / "build", rebuild_dir / "dist", rebuild_dir / "lockfiles")
    reporter.info(f"[bold]Rebuilding {lock['artifact']}[/] from {display_path(lockfile)} in {display_path(rebuild_dir)}")
    result = Build(plan, workspace, reporter, mirrors, configure_args, client=client, fresh_images=True).run()
    report = RebuildReport(display_path(lockfile), display_path(rebuild_dir), now.isoformat(timespec="seconds"),
                           compare(lock, read_build_lock(result.lockfile)))
    original = _original_artifact(lock, lockfile, artifact, result.artifact.name)
    if report.lock_differences and original:
        report.original_artifact = display_path(original)
        report.file_differences = compare_artifacts(original, result.artifact)
        report.diffoscope = _diffoscope(original, result.artifact, rebuild_dir)
    write_atomically(rebuild_dir / "report.json", (json.dumps(report.as_dict(), indent=1, default=str) + "\n").encode())
    write_atomically(rebuild_dir / "report.txt", report.as_text().encode())
    return report


def _original_artifact(lock: dict, lockfile: Path, artifact, name: str) -> Path | None:
    """The original artifact, if we have a copy whose sha256 is the locked one: given, or in dist/ beside lockfiles/."""
    candidate = Path(artifact) if artifact else lockfile.resolve().parent.parent / "dist" / name
    if candidate.is_file() and sha256_path(candidate) == lock["outputs"][name]["sha256"]:
        return candidate
    return None


def _diffoscope(original: Path, rebuilt: Path, rebuild_dir: Path) -> str | None:
    """diffoscope's text report of two differing artifacts, if diffoscope is installed (Debian or PyPI)."""
    if shutil.which("diffoscope") is None:
        return None
    output = rebuild_dir / "diffoscope.txt"
    try:
        subprocess.run(["diffoscope", "--text", str(output), str(original), str(rebuilt)],
                       capture_output=True, timeout=DIFFOSCOPE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None
    return display_path(output) if output.exists() else None
