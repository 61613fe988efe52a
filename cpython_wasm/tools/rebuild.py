"""Rebuilding: proving a lockfile by building it again from scratch.

A rebuild reads what a lockfile asked for (CPython release, SDK, provider,
configure arguments, base), checks that this checkout's recipes are the ones
that wrote it, and builds in a fresh directory: a new store (nothing reused,
the base root filesystem bootstrapped again), images built again without the
engine's layer cache, every compile stage in new containers. Only the
download cache is shared: it holds inputs, each verified by its sha256.

A lockfile is untrusted input: before anything runs, every value the recipes
determine (the selection, configure arguments, SOURCE_DATE_EPOCH, environment,
base, images, inputs, output names) is compared with what this checkout's
recipes give, and a mismatch is refused naming the lockfile key. The values the
recipes do not determine, configure arguments beyond the recipe's and a base
image or Debian mirror other than the recipe's, are used only when an option
allows them (--allow-extra-configure-args, --allow-other-base), and printed.

The new lockfile is then compared with the old one key by key; a reproducible
build writes the very same bytes. When outputs differ, the two artifacts are
compared file by file (both hashes of each differing file), and diffoscope,
if it is installed, writes its detailed report beside. When an image's content
differs (`images.<image>.id`), the two images' file systems are compared file by
file too, if the engine still has the locked one (built here before, or loaded
by `invoke image-import`), with diffoscope's report on the files whose contents
differ. Everything goes to `<rebuild dir>/report.json` and
`report.txt`.
"""

import datetime
import json
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.markup import escape

from cpython_wasm.build import Build
from cpython_wasm.errors import UserError
from cpython_wasm.files import sha256_path, write_atomically
from cpython_wasm.paths import Workspace, display_path
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.artifacts import COMPANION_SUFFIXES, companion_name
from cpython_wasm.recipes.grammar import check_pinned_image
from cpython_wasm.recipes.plan import TOOLCHAINS, Plan, Recipes, host_arch
from cpython_wasm.records.lock import (
    MAX_PROBLEMS,
    describe_base,
    describe_build,
    describe_image,
    describe_pin,
    describe_recipes,
    locked_toolchain,
    profile_path,
    read_build_lock,
)
from cpython_wasm.records.provenance import provenance_name
from cpython_wasm.records.sbom import sbom_name
from cpython_wasm.records.verify import verifier
from cpython_wasm.stages import images
from cpython_wasm.stages.executor import DockerExecutor
from cpython_wasm.stages.images import extract_image_files, image_exists, image_files
from cpython_wasm.stages.store import Store
from cpython_wasm.targets import target_of
from cpython_wasm.targets.drivers import Driver, check_extra_configure_arg
from cpython_wasm.targets.pgo import PublishedProfile

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
    image_differences: list[Difference] = field(default_factory=list)  # "<image>: <path>" of each differing file
    images_not_compared: list[str] = field(default_factory=list)  # images whose locked content the engine lacks
    original_artifact: str | None = None
    diffoscope: str | None = None
    image_diffoscope: dict[str, str] = field(default_factory=dict)  # diffoscope's report, by image

    @property
    def identical(self) -> bool:
        return not self.lock_differences and not self.file_differences

    def as_dict(self) -> dict:
        return {**asdict(self), "identical": self.identical}

    def as_text(self) -> str:
        lines = [f"Rebuild of {self.lockfile} in {self.rebuild_dir} (started {self.started}):"]
        if self.identical:
            lines.append("identical: every input, image package, image ID and output hash matches the lockfile.")
        for title, differences in (("lockfile keys that differ", self.lock_differences),
                                   ("files of the artifact that differ", self.file_differences),
                                   ("files of the images that differ (type, mode, owner, size, mtime, link, "
                                    "sha256)", self.image_differences)):
            if differences:
                lines.append(f"{len(differences)} {title} (expected → rebuilt):")
                lines += [f"  {d.key}: {d.expected} → {d.actual}" for d in differences]
        if self.lock_differences and not self.file_differences:
            lines.append("(no per-file comparison: " + (
                "the artifacts' files are identical)" if self.original_artifact else
                "no copy of the original artifact with the locked sha256; pass --artifact)"))
        if self.diffoscope:
            lines.append(f"diffoscope's report: {self.diffoscope}")
        lines += [f"diffoscope's report on the files of image {image} that differ: {path}"
                  for image, path in self.image_diffoscope.items()]
        for image in self.images_not_compared:
            lines.append(f"(no per-file comparison of image {image}: this engine lacks the locked one; "
                         f"`invoke image-import` its archive, then rebuild again)")
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


# -- the lockfile against the recipes, before anything runs --------------------------------

# The options that allow a lockfile's values the recipes do not determine (cli.rebuild's parameters).
ALLOW_EXTRA_CONFIGURE_ARGS = "--allow-extra-configure-args"
ALLOW_OTHER_BASE = "--allow-other-base"
MAX_SHOWN = 120  # characters of a value quoted in a message


class Phrase(str):
    """Words that stand for a value in a message, shown as they are (not quoted as a value is)."""

    def __repr__(self) -> str:
        return str(self)


ABSENT = Phrase("none")  # no value: a key the lockfile lacks, or one the recipes do not give


@dataclass(frozen=True)
class Mismatch:
    """A lockfile value that is not what this checkout's recipes give."""

    key: str  # the lockfile key, as `build.configure_host_args[1]`
    locked: object  # the lockfile's value (ABSENT: the key is missing)
    expected: object  # what the recipes give (ABSENT: nothing)
    allowed_by: str | None = None  # the option that allows the locked value (the recipes do not determine it)
    refused: str = ""  # why the locked value cannot be used at all, even with an option

    def describe(self) -> str:
        said = f"`{self.key}` is {'missing' if self.locked is ABSENT else shown(self.locked)}"
        if self.refused:
            return f"{said}: {self.refused}"
        said += f", the recipes give {shown(self.expected)}"
        return f"{said} (used only with {self.allowed_by})" if self.allowed_by else said


@dataclass(frozen=True)
class RebuildRequest:
    """What a rebuild of a lockfile builds, once the lockfile is checked against the recipes."""

    plan: Plan
    configure_args: tuple[str, ...]  # beyond the recipe's
    allowed: tuple[Mismatch, ...] = ()  # the lockfile's values used instead of the recipes', as an option allowed


def shown(value) -> str:
    """A value as a message quotes it: repr (so no control character), shortened."""
    return shorten(repr(value))


def shorten(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 1] + "…"


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def key_path(*parts: str | int) -> str:
    """A lockfile key as users read it: build.configure_host_args[1], outputs["python.wasm"].sha256."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            path += f".{part}" if path else part
        else:
            path += f"[{json.dumps(part)}]"
    return path


def differences(expected, locked, path: tuple = ()) -> list[Mismatch]:
    """Every leaf where `locked` is not `expected`, by its lockfile key (dicts by key, lists by index)."""
    if isinstance(expected, dict) and isinstance(locked, dict):
        keys = [*expected, *(key for key in locked if key not in expected)]
        return [mismatch for key in keys for mismatch in
                differences(expected.get(key, ABSENT), locked.get(key, ABSENT), (*path, key))]
    if isinstance(expected, list) and isinstance(locked, list):
        return [mismatch for index in range(max(len(expected), len(locked))) for mismatch in
                differences(expected[index] if index < len(expected) else ABSENT,
                            locked[index] if index < len(locked) else ABSENT, (*path, index))]
    if type(expected) is type(locked) and expected == locked:  # True is not 1 here, as in JSON
        return []
    return [Mismatch(key_path(*path), locked, expected)]


def plan_from_lock(lock: dict, recipes: Recipes, lockfile: Path, allow_extra_configure_args: bool = False,
                   allow_other_base: bool = False) -> RebuildRequest:
    """What rebuilding a lockfile builds: the plan of its selection, and the lockfile's own values the options allow.

    A pure function of the lockfile and the recipes (no engine, no network, nothing written), so that
    every refusal comes before any build work. Refuses when this checkout's recipes are not byte for byte
    the ones the lockfile records, and when a value the recipes determine is not what they give: a
    rebuild from other recipes, or of another build, proves nothing."""
    build = lock["build"]
    if build["host_arch"] != host_arch():
        raise UserError(f"Lockfile {display_path(lockfile)} was built on {build['host_arch']} (`build.host_arch`); "
                        f"this machine is {host_arch()}. Rebuild it on an {build['host_arch']} machine.")
    plan, driver = _resolve(build, recipes, lockfile)
    _check_recipes(lock, plan, lockfile)
    mismatches = []
    plan = _locked_pgo(build, plan, mismatches)
    extra = _extra_configure_args(build["configure_host_args"], plan, driver, mismatches)
    plan = _locked_base(lock["base"], plan, mismatches)
    if lock["artifact"] != plan.artifact_name:  # named after the selection, which the plan was resolved from
        mismatches.append(Mismatch("artifact", lock["artifact"],
                                   Phrase(f"{plan.artifact_name!r} for {_selection(build)}")))
    determined = _determined(lock, plan, driver)
    reported = {mismatch.key for mismatch in mismatches}
    mismatches += [mismatch for mismatch in differences(determined, {key: lock[key] for key in determined})
                   if mismatch.key not in reported]
    mismatches += _output_names(lock["outputs"], plan.artifact_name)
    allowed = {ALLOW_EXTRA_CONFIGURE_ARGS: allow_extra_configure_args, ALLOW_OTHER_BASE: allow_other_base}
    refused = [mismatch for mismatch in mismatches if not allowed.get(mismatch.allowed_by)]
    if refused:
        raise UserError(_refusal(lockfile, plan.artifact_name, refused,
                                 [mismatch for mismatch in mismatches if mismatch not in refused]))
    return RebuildRequest(plan, tuple(extra), tuple(mismatches))


def _selection(build: dict) -> str:
    """The keys of a lockfile's `build` that its plan is resolved from, with their values."""
    target, sdk = locked_toolchain(build)
    extensions = f", `build.extensions` {shown(build['extensions'])}" if build.get("extensions") else ""
    flavour = f", `build.flavour` {shown(build['flavour'])}" if build.get("flavour") else ""
    return (f"`build.python` {shown(build['python'])}, `build.{TOOLCHAINS[target].lock_key}` {shown(sdk)}, "
            f"`build.provider` {shown(build['provider'])}{extensions}{flavour}")


def _resolve(build: dict, recipes: Recipes, lockfile: Path) -> tuple[Plan, Driver]:
    target, sdk = locked_toolchain(build)
    try:
        plan = recipes.resolve(build["python"], sdk, build["provider"], target, build["host_arch"],
                               build.get("extensions", ()), build.get("flavour"))
        return plan, target_of(plan).driver(plan)
    except UserError as error:
        raise UserError(f"Lockfile {display_path(lockfile)} asks for a build this checkout's recipes do not make "
                        f"({_selection(build)}): {error}") from None


def _check_recipes(lock: dict, plan: Plan, lockfile: Path) -> None:
    current = describe_recipes(plan)
    changed = sorted(name for name in current.keys() | lock["recipes"].keys()
                     if current.get(name) != lock["recipes"].get(name))
    if changed:
        shown_path = display_path(lockfile)
        raise UserError(
            f"The recipes have changed since {shown_path} was written ({', '.join(map(shorten, changed[:MAX_PROBLEMS]))}"
            f"{' and more' if len(changed) > MAX_PROBLEMS else ''} differ from the sha256 it records under `recipes`), "
            f"so a rebuild here would not test that lockfile. "
            f"Check out the commit that wrote it (`git log -1 -- {shown_path}`) and rebuild from there, or build "
            f"anew with `invoke build`."
        )


def _extra_configure_args(locked: list[str], plan: Plan, driver: Driver, mismatches: list[Mismatch]) -> list[str]:
    """The locked configure arguments beyond the recipe's, which must come first and be the very same."""
    recipe = list(plan.configure_host_args)
    mismatches += [Mismatch(key_path("build", "configure_host_args", index),
                            locked[index] if index < len(locked) else ABSENT, argument)
                   for index, argument in enumerate(recipe) if index >= len(locked) or locked[index] != argument]
    extra = locked[len(recipe):]
    for index, argument in enumerate(extra, len(recipe)):
        key = key_path("build", "configure_host_args", index)
        try:
            check_extra_configure_arg(argument)
        except ValueError as error:
            mismatches.append(Mismatch(key, argument, ABSENT, refused=str(error)))
            continue
        if not driver.takes_configure_args:
            mismatches.append(Mismatch(key, argument, ABSENT, refused=f"{driver.helper}, which builds CPython "
                                       f"{plan.python.line}, passes no extra arguments to configure"))
        else:
            mismatches.append(Mismatch(key, argument, ABSENT, allowed_by=ALLOW_EXTRA_CONFIGURE_ARGS))
    return extra


def _locked_pgo(build: dict, plan: Plan, mismatches: list[Mismatch]) -> Plan:
    """The plan profile-guided as the lockfile's build was: not if it was built with --no-pgo; refused if it was
    and the recipes cannot be."""
    if build.get("pgo") is None:
        return plan.without_pgo()
    if not plan.pgo_available:
        mismatches.append(Mismatch("build.pgo", build["pgo"], ABSENT, refused=(
            f"the recipes give no profile-guided optimisation for {plan.artifact_name} (its line's recipe does not "
            f"ask for it, or its toolchain has no profile runtime)")))
    return plan


BOOTSTRAPPED = Phrase("no registry image (the base is bootstrapped with mmdebstrap)")


def _locked_base(base: dict, plan: Plan, mismatches: list[Mismatch]) -> Plan:
    """The plan on the lockfile's Debian mirror and registry image, where they are not the recipe's.

    Those are what a rebuild uses if --allow-other-base allows them (a mismatch each, meanwhile)."""
    recipe = plan.base
    if base["mirror"] != recipe.mirror:  # an http(s) URL of RFC 3986's characters: LockedBase checked it
        mismatches.append(Mismatch("base.mirror", base["mirror"], recipe.mirror, allowed_by=ALLOW_OTHER_BASE))
        plan = plan.with_debian_mirror(base["mirror"])
    if base["rootfs_sha256"] is None and base["image"] != recipe.image:  # a registry image, not the recipe's
        try:
            check_pinned_image(base["image"])
        except ValueError as error:
            mismatches.append(Mismatch("base.image", base["image"], recipe.image or BOOTSTRAPPED,
                                       refused=f"`base.rootfs_sha256` is null, so the base is a registry image: {error}"))
            return plan
        mismatches.append(Mismatch("base.image", base["image"], recipe.image or BOOTSTRAPPED,
                                   allowed_by=ALLOW_OTHER_BASE))
        plan = plan.with_base_image(base["image"])
    return plan


def _determined(lock: dict, plan: Plan, driver: Driver) -> dict:
    """What the recipes give for each key of the lockfile they determine, as `invoke build` writes it.

    Not what a build measures (packages installed, hashes of products and outputs: the rebuild
    compares those afterwards), nor the configure arguments (compared one by one beforehand)."""
    target = target_of(plan)
    specs = {"native": images.native_spec(plan),
             # Only the cache's paths: the inputs' sha256, not where they are, make an image's identity.
             "toolchain": target.toolchain_spec(plan, lambda pin: Path(pin.sha256))}
    # The configure arguments are the lockfile's own (compared one by one beforehand, and not yet known to
    # be of any grammar here: the model would refuse them before the comparison could name them).
    build = to_json(describe_build(plan, [], target.host_environment(plan, driver)))
    sections = {
        # The profile is the lockfile's own too: training made it, no recipe gives it (_locked_pgo checked it may be).
        "build": {**build, "configure_host_args": lock["build"]["configure_host_args"],
                  **({"pgo": lock["build"]["pgo"]} if plan.pgo else {})},
        "base": describe_base(plan, images.base_tag(plan), lock["base"]["rootfs_sha256"]),
        # Packages installed and content are measured: compared after the rebuild, with everything else.
        "images": {image: describe_image(spec, lock["images"][image], lock["images"][image]["packages"])
                   for image, spec in specs.items()},
        "inputs": [describe_pin(pin) for pin in plan.inputs],
    }
    return to_json(sections)


def to_json(value):
    """Lockfile models (and the dicts and lists holding them) as the JSON values a lockfile holds."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_json(item) for item in value]
    return value


def _output_names(outputs: dict, name: str) -> list[Mismatch]:
    """The outputs a lockfile records, by name, against those a build of `name` writes (their hashes it measures)."""
    # The debug artifact only where python.wasm had DWARF to split off, the devkit only where the target has one.
    companions = [companion_name(f"{name}.tar.gz", suffix) for suffix in COMPANION_SUFFIXES]
    written = [f"{name}.tar.gz", "python.wasm", "manifest.json", provenance_name(name), sbom_name(name)]
    missing = [Mismatch(key_path("outputs", output), ABSENT, ABSENT, refused=f"every build of {name} writes it")
               for output in written if output not in outputs]
    unknown = [Mismatch(key_path("outputs", output), outputs[output], ABSENT,
                        refused=f"a build of {name} writes no output of that name (it writes {', '.join(written)} "
                                f"and {', '.join(companions)})")
               for output in outputs if output not in (*written, *companions)]
    return missing + unknown


def _refusal(lockfile: Path, artifact: str, mismatches: list[Mismatch], allowed: list[Mismatch]) -> str:
    shown_path = display_path(lockfile)
    more = f"; and {len(mismatches) - MAX_PROBLEMS} more" if len(mismatches) > MAX_PROBLEMS else ""
    # What the options allowed is part of what the recipes were asked for (another mirror changes the image tags).
    given = (f" (given the lockfile's {', '.join(f'`{mismatch.key}`' for mismatch in allowed[:MAX_PROBLEMS])}, as "
             f"{' and '.join(sorted({mismatch.allowed_by for mismatch in allowed}))} allows)") if allowed else ""
    message = (f"Lockfile {shown_path} is not what this checkout's recipes give for {artifact}{given}: "
               f"{'; '.join(mismatch.describe() for mismatch in mismatches[:MAX_PROBLEMS])}{more}. Nothing was built.")
    options = sorted({mismatch.allowed_by for mismatch in mismatches if mismatch.allowed_by})
    if any(not mismatch.allowed_by for mismatch in mismatches):
        message += (f" A rebuild builds what the recipes give, so it would not test this lockfile: check out the commit "
                    f"that wrote it (`git log -1 -- {shown_path}`) and rebuild there, or restore the lockfile from "
                    f"version control.")
    if options:
        message += (f" To rebuild with the lockfile's own configure arguments or base, which no recipe vouches for, "
                    f"pass {' and '.join(options)} (each such value is printed before it is used).")
    return message


def rebuild(reporter: Reporter, lockfile: Path, rebuild_dir: Path | None = None, cache_dir=None, mirrors=(),
            artifact=None, recipes: Recipes | None = None, client=None, allow_extra_configure_args: bool = False,
            allow_other_base: bool = False, profile=None) -> RebuildReport:
    """Rebuild `lockfile` in `rebuild_dir` (default: build/rebuilds/<artifact>-<UTC time>) and compare; with the
    profile of a profile-guided build given as `profile`, or found beside the lockfile or the artifact."""
    lock = read_build_lock(lockfile)
    request = plan_from_lock(lock, recipes or Recipes(), lockfile, allow_extra_configure_args, allow_other_base)
    published = published_profile(lock, lockfile, profile) if request.plan.pgo else None
    now = datetime.datetime.now(datetime.UTC)
    if rebuild_dir is None:
        rebuild_dir = Workspace.from_options().build_dir / "rebuilds" / f"{lock['artifact']}-{now:%Y%m%dT%H%M%SZ}"
    if rebuild_dir.exists() and any(rebuild_dir.iterdir()):
        raise UserError(f"{display_path(rebuild_dir)} is not empty; a rebuild starts from an empty directory. "
                        f"Pass another --output or remove it.")
    workspace = Workspace.from_options(cache_dir, rebuild_dir / "build", rebuild_dir / "dist", rebuild_dir / "lockfiles")
    reporter.info(f"[bold]Rebuilding {lock['artifact']}[/] from {display_path(lockfile)} in {display_path(rebuild_dir)}")
    for mismatch in request.allowed:
        reporter.warn(escape(f"using the lockfile's `{mismatch.key}` {shown(mismatch.locked)}, not what the recipes "
                             f"give ({shown(mismatch.expected)}), as {mismatch.allowed_by} allows"))
    executor = DockerExecutor(Store.of(workspace), reporter, client)
    result = Build(request.plan, workspace, reporter, mirrors, request.configure_args, executor=executor,
                   fresh_images=True, published_profile=published).run()
    rebuilt_lock = read_build_lock(result.lockfile)
    report = RebuildReport(display_path(lockfile), display_path(rebuild_dir), now.isoformat(timespec="seconds"),
                           compare(lock, rebuilt_lock))
    for image in sorted(lock["images"]):
        old, new = lock["images"][image]["id"], rebuilt_lock["images"][image]["id"]
        if old != new:
            if image_exists(executor.client, old):
                changes = image_changes(executor.client, old, new)
                report.image_differences += [Difference(f"{image}: {path}", *change) for path, change in changes.items()]
                diffoscope = _image_diffoscope(executor.client, image, old, new, changes, rebuild_dir)
                if diffoscope:
                    report.image_diffoscope[image] = diffoscope
            else:
                report.images_not_compared.append(image)
    original = _original_artifact(lock, lockfile, artifact, result.artifact.name)
    if report.lock_differences and original:
        report.original_artifact = display_path(original)
        report.file_differences = compare_artifacts(original, result.artifact)
        report.diffoscope = _diffoscope(original, result.artifact, rebuild_dir / "diffoscope.txt")
    write_atomically(rebuild_dir / "report.json", (json.dumps(report.as_dict(), indent=1, default=str) + "\n").encode())
    write_atomically(rebuild_dir / "report.txt", report.as_text().encode())
    return report


def published_beside(lockfile: Path, name: str) -> Path:
    """Where a build published the file `name` with the lockfile: dist/ beside the lockfile's directory (a checkout's
    lockfiles/ and dist/)."""
    return lockfile.resolve().parent.parent / "dist" / name


def published_profile(lock: dict, lockfile: Path, given=None) -> PublishedProfile:
    """The profile a profile-guided lockfile names (`build.pgo`): the file given, else the one in profiles/ beside
    the lockfile, else the one in dist/ beside lockfiles/; checked against the lockfile before it is used."""
    locked = lock["build"]["pgo"]
    candidates = [Path(given)] if given else [profile_path(lockfile, locked["file"]),
                                              published_beside(lockfile, locked["file"])]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        raise UserError(f"Lockfile {display_path(lockfile)} is of a profile-guided build, and a rebuild uses its profile "
                        f"(sha256 {locked['sha256']}) rather than training again, which gives other counts: "
                        f"{' and '.join(display_path(path) for path in candidates)} "
                        f"{'is not a file' if given else 'are not there'}. Pass the profile published with the "
                        f"artifact, {locked['file']}, as --profile.")
    published = PublishedProfile(found, locked["sha256"], locked["size"])
    published.check()
    return published


def image_changes(client, old: str, new: str) -> dict[str, tuple]:
    """The files in which two images' file systems differ: by path, both sides (a ListedFile, or MISSING)."""
    old_files, new_files = (image_files(client, image_id) for image_id in (old, new))
    return {path: (old_files.get(path, MISSING), new_files.get(path, MISSING))
            for path in sorted(old_files.keys() | new_files.keys()) if old_files.get(path) != new_files.get(path)}


MISSING = "(missing)"


def _image_diffoscope(client, name: str, old: str, new: str, changes: dict[str, tuple], rebuild_dir: Path) -> str | None:
    """diffoscope's report of the regular files whose contents differ between two images, if diffoscope is
    installed: only those files are taken out of the images (a whole image is gigabytes, most of it the same)."""
    if shutil.which("diffoscope") is None:
        return None
    changed = {path for path, (before, after) in changes.items()
               if MISSING not in (before, after) and None not in (before.sha256, after.sha256)
               and before.sha256 != after.sha256}
    if not changed:
        return None
    files = rebuild_dir / "images" / name
    extract_image_files(client, old, changed, files / "locked")
    extract_image_files(client, new, changed, files / "rebuilt")
    return _diffoscope(files / "locked", files / "rebuilt", rebuild_dir / f"diffoscope-image-{name}.txt")


def _original_artifact(lock: dict, lockfile: Path, artifact, name: str) -> Path | None:
    """The original artifact, if we have a copy whose sha256 is the locked one: given, or in dist/ beside lockfiles/."""
    candidate = Path(artifact) if artifact else published_beside(lockfile, name)
    if candidate.is_file() and sha256_path(candidate) == lock["outputs"][name]["sha256"]:
        return candidate
    return None


def _diffoscope(original: Path, rebuilt: Path, output: Path) -> str | None:
    """diffoscope's text report, in `output`, of two differing artifacts or directories, if diffoscope is installed
    (Debian or PyPI)."""
    if shutil.which("diffoscope") is None:
        return None
    try:
        subprocess.run(["diffoscope", "--text", str(output), str(original), str(rebuilt)],
                       capture_output=True, timeout=DIFFOSCOPE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None
    return display_path(output) if output.exists() else None
