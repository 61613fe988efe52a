"""The commands behind `invoke` tasks, and how their failures reach the user.

tasks.py parses options and calls these. Errors we raise become one paragraph
on standard error and an exit status (see errors.py); anything else is a bug
and keeps its traceback.
"""

import contextlib
import json
import os
import shlex
import sys
from pathlib import Path

import invoke
from rich.console import Console
from rich.table import Table

from cpython_wasm.build import Build
from cpython_wasm.errors import BuildError, FetchError, UserError
from cpython_wasm.files import sha256_path
from cpython_wasm.inputs.fetch import Fetcher, check_mirror_dirs, check_mirror_text, fill_mirror
from cpython_wasm.paths import RECIPES_DIR, Workspace, directory_option, display_path, refuse_overlaps
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.plan import TOOLCHAINS, Recipes, host_arch, parse_artifact
from cpython_wasm.recipes.schema import DEFAULT_TARGET
from cpython_wasm.records.lock import lockfile_path, read_build_lock, read_lock
from cpython_wasm.records.verify import verifier
from cpython_wasm.stages import images
from cpython_wasm.stages.engine import ENGINE_GONE, connect
from cpython_wasm.stages.executor import DockerExecutor
from cpython_wasm.stages.gc import Roots, collect, root_lockfiles
from cpython_wasm.stages.stage import ProductInput, Unpack
from cpython_wasm.stages.store import Store
from cpython_wasm.targets import TARGETS, target_of
from cpython_wasm.targets.target import BuildStages
from cpython_wasm.tools.bench import RESULTS_DIR, Bench
from cpython_wasm.tools.browser import browser_smoke
from cpython_wasm.tools.browser import serve as serve_artifact
from cpython_wasm.tools.image_transfer import export_images, import_image
from cpython_wasm.tools.matrix import CHECK_DEADLINE_SECONDS, matrix_rows
from cpython_wasm.tools.rebuild import rebuild as rebuild_lock
from cpython_wasm.tools.shell import shell as open_shell
from cpython_wasm.tools.smoke import summary
from cpython_wasm.tools.testsuite import TestRun

IMAGES = ("toolchain", "native")


def run(command, **options):
    """Run a command; report our errors without a traceback and exit with their status."""
    reporter = Reporter()
    try:
        return command(reporter=reporter, **options)
    except (UserError, FetchError, BuildError) as error:
        reporter.error(str(error))
        raise invoke.Exit(code=error.exit_code) from None
    except ENGINE_GONE as error:  # a request the engine refused or never answered, outside any phase
        reporter.error(f"The Docker engine did not do what this command asked of it: {error}. Nothing this run "
                       f"made was kept; outputs in dist/ and lockfiles/ are unchanged. Check that the engine "
                       f"answers (`docker info`; `scripts/ensure-docker` starts it) and run the same command again: "
                       f"finished stages are reused.")
        raise invoke.Exit(code=BuildError.exit_code) from None
    except KeyboardInterrupt:
        reporter.console.print("[bold red]interrupted[/]: outputs in dist/ and lockfiles/ are unchanged.")
        raise invoke.Exit(code=130) from None


def _recipes(directory) -> Recipes:
    if directory is not None and (not directory or not Path(directory).is_dir()):
        raise UserError(f"--recipes {directory!r} is not a directory. Pass a directory laid out like recipes/.")
    return Recipes(Path(directory).resolve() if directory else RECIPES_DIR)


def _plan(python, sdk, provider, target="wasi", debian_mirror=None, base_image=None, recipes=None, extension=(),
          flavour=None, pgo=True):
    plan = _recipes(recipes).resolve(python, sdk, provider, target, extensions=extension, flavour=flavour)
    plan = plan if pgo else plan.without_pgo()
    return plan.with_debian_mirror(debian_mirror).with_base_image(base_image)


def _build(reporter: Reporter, python, sdk=None, provider=None, target="wasi", mirror=(), debian_mirror=None,
           base_image=None, configure_arg=(), recipes=None, cache_dir=None, build_dir=None, dist_dir=None,
           lock_dir=None, extension=(), flavour=None, pgo=True) -> Build:
    """The build a command's selection and options describe (not run yet)."""
    plan = _plan(python, sdk, provider, target, debian_mirror, base_image, recipes, extension, flavour, pgo)
    mirrors = check_mirror_dirs(mirror)
    workspace = Workspace.from_options(cache_dir, build_dir, dist_dir, lock_dir)
    reporter.info(f"[bold]Building CPython {plan.release.version} for {plan.support.host_triple}[/] with "
                  f"{plan.sdk_title} ({plan.provider}) → {plan.artifact_name}")
    return Build(plan, workspace, reporter, mirrors, configure_arg)


def build(reporter: Reporter, dry_run=False, **selection):
    if dry_run:
        planned = _build(reporter, **selection)
        planned.read_locked_images()
        return print_stages(planned)
    result = _build(reporter, **selection).run()
    plan = result.plan
    table = Table("phase", "seconds", title="Wall time per phase", title_justify="left")
    for name, seconds in result.timings.items():
        table.add_row(name, f"{seconds:.1f}")
    reporter.console.print(table)
    artifact = result.lock["outputs"][result.artifact.name]
    reporter.info(f"artifact  {display_path(result.artifact)}  ({artifact['size']:,} bytes, sha256 {artifact['sha256']})")
    reporter.info(f"lockfile  {display_path(result.lockfile)}")
    write_step_outputs({"artifact": plan.artifact_name, "sha256": artifact["sha256"],
                        "lockfile": display_path(result.lockfile)})
    return result


def print_stages(build: Build) -> BuildStages:
    """What `invoke build --dry-run` prints: the images and each stage with its identity, nothing run or fetched (the
    images' content from the artifact's lockfile where it records the same images, else from the engine)."""
    stages = build.stages()
    native, toolchain = build.stage_images()
    lines = [f"image base       {images.base_tag(build.plan)}", f"image native     {native.spec.tag} ({native.id})",
             f"image toolchain  {toolchain.spec.tag} ({toolchain.id})"]
    for key, stage in stages.by_key().items():
        lines.append(f"{key:<16} {display_path(build.store.path(stage))}")
        if isinstance(stage, Unpack):
            lines.append(f"    unpacks {stage.archive} (sha256 {stage.sha256})")
            continue
        lines.append(f"    in {stage.image}, writes {stage.output}: {', '.join(stage.produces)}")
        lines += [f"    mounts {mount.container} from {describe_input(mount)}" for mount in stage.inputs]
        lines += [f"    {phase.name}: {shlex.join(phase.command)}" for phase in stage.phases]
    sys.stdout.write("\n".join(lines) + "\n")
    return stages


def describe_input(mount) -> str:
    if isinstance(mount, ProductInput):
        return f"{mount.stage.kind} {mount.stage.identity}"
    return f"the file of sha256 {mount.sha256}"


def whole_number(value, lowest: int, highest: int) -> int | None:
    """`value` (a command-line option's) as a whole number from lowest to highest, written in plain decimal
    digits with no sign, underscore or leading zero; None if it is not one."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(highest))) or text != str(int(text)):
        return None
    number = int(text)
    return number if lowest <= number <= highest else None


# Beyond any count a command takes (--jobs, --rounds...): a bound, so that no option asks for unbounded work.
MAX_COUNT = 1_000_000


def count(option: str, value) -> int:
    """A command-line count (--jobs, --rounds...): a whole number, 1 or more."""
    number = whole_number(value, 1, MAX_COUNT)
    if number is None:
        raise UserError(f"{option} {value!r} is not a count: pass a whole number from 1 to {MAX_COUNT:,}.")
    return number


def test(reporter: Reporter, suite="fast", jobs=None, rerun=False, **selection):
    """Build (a no-op when built), then run CPython's test suite on the artifact; exit 1 on an unexpected failure."""
    recipes = _recipes(selection.get("recipes"))
    jobs = count("--jobs", jobs) if jobs is not None else None
    return TestRun(_build(reporter, **selection), recipes, suite, jobs, rerun).run()


def bench(reporter: Reporter, rounds=None, values=None, startup_runs=None, output=None, check=False, runtime=(),
          **selection):
    """Build (a no-op when built), then benchmark the artifact against native CPython; exit 1 with --check on a miss."""
    results_dir = directory_option(output, "--output", reporter) if output is not None else RESULTS_DIR
    rounds, values, startup_runs = (count(option, value) if value is not None else default for option, value, default in
                                    (("--rounds", rounds, 7), ("--values", values, 5), ("--startup-runs", startup_runs, 20)))
    results = Bench(_build(reporter, **selection), _recipes(selection.get("recipes")), build_command(selection), rounds, values,
                    startup_runs=startup_runs, results_dir=results_dir, runtimes=list(runtime)).run()
    missed = [name for name, target in results["targets"].items() if not target["met"]]
    if check and missed:
        raise invoke.Exit(code=1, message=f"targets missed: {', '.join(missed)} (see {display_path(results_dir)})")
    return results


def build_command(selection: dict) -> list[str]:
    """The `invoke build` command line of a selection and its options (what a user would type)."""
    command = [sys.executable, "-m", "invoke", "build"]
    for option, value in selection.items():
        flag = "--" + option.replace("_", "-")
        if isinstance(value, (list, tuple)):
            command += [f"{flag}={item}" for item in value]
        elif value is not None:
            command += [flag, str(value)]
    return command


def write_step_outputs(outputs: dict[str, str]) -> None:
    """In a GitHub Actions step, publish `outputs` as the step's outputs (the workflows read them)."""
    path = os.environ.get("GITHUB_OUTPUT")
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.writelines(f"{name}={value}\n" for name, value in outputs.items())


def render(reporter: Reporter, python, sdk=None, provider=None, image="toolchain", base_image=None, recipes=None,
           target="wasi"):
    if image not in IMAGES:
        raise UserError(f"--image {image!r} is not an image of a build; choose one of: {', '.join(IMAGES)}.")
    plan = _plan(python, sdk, provider, target, base_image=base_image, recipes=recipes)
    cached_path = Fetcher(Workspace.from_options().cache_dir).cached_path
    spec = images.native_spec(plan) if image == "native" else target_of(plan).toolchain_spec(plan, cached_path)
    reporter.info(f"# image {spec.tag}")
    sys.stdout.write(spec.dockerfile)
    return spec


def fetch(reporter: Reporter, python, sdk=None, provider=None, mirror=(), recipes=None, cache_dir=None,
          target="wasi"):
    """Download every input of a build into a mirror directory, content-addressed (DIR/sha256/<hash>)."""
    if len(mirror) != 1:
        raise UserError("invoke fetch needs exactly one --mirror DIR: the directory to fill (it is created if missing).")
    check_mirror_text(str(mirror[0]))
    destination = directory_option(mirror[0], "--mirror", reporter)
    plan = _plan(python, sdk, provider, target, recipes=recipes)
    cache = Workspace.from_options(cache_dir=cache_dir, reporter=reporter).cache_dir
    refuse_overlaps([("--mirror", destination), ("--cache-dir" if cache_dir is not None else "the default --cache-dir", cache)])
    fetcher = Fetcher(cache, reporter=reporter, filling=destination)
    with reporter.phase("fetch", f"{len(plan.inputs)} pinned inputs of {plan.artifact_name}") as phase:
        copied = fill_mirror(fetcher, plan.inputs)
        phase.outcome = f"{copied} added to {display_path(destination)}, {len(plan.inputs) - copied} already there"
    for pin in plan.inputs:
        reporter.info(f"  {pin.sha256}  {pin.file}")
    return destination


def matrix(reporter: Reporter, as_json=False, check=True, arch=None, mirror=(), recipes=None, cache_dir=None,
           only="all"):
    fetcher = Fetcher(Workspace.from_options(cache_dir=cache_dir).cache_dir, check_mirror_dirs(mirror)) if check else None
    if check:
        reporter.info(f"Checking where each input can be had (the network for {CHECK_DEADLINE_SECONDS} s at most; "
                      f"--no-check skips this)")
    rows = matrix_rows(_recipes(recipes), arch if arch is not None else host_arch(), fetcher, only)
    # In a GitHub Actions step: the rows that can be built, compact, for `fromJSON` (see .github/workflows/ci.yml).
    write_step_outputs({"matrix": json.dumps([row for row in rows if row["buildable"] is not False], separators=(",", ":"))})
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return rows
    table = Table("python", "target", "toolchain", "provider", "arch", "official", "buildable here",
                  title="Supported builds (* the newest release of its line, what --python X.Y builds)",
                  title_justify="left")
    for row in rows:
        buildable = {True: "yes", False: "no: " + ", ".join(row["missing"]), None: "not checked"}[row["buildable"]]
        toolchain = f"{TOOLCHAINS[row['target']].title} {row['sdk']}"
        table.add_row(row["python"] + ("*" if row["latest"] else ""), row["target"], toolchain, row["provider"], row["arch"],
                      "yes" if row["official"] else "", buildable)
    console = Console(soft_wrap=False)
    if not console.is_terminal:  # a log or a pipe: room for whole rows
        console = Console(soft_wrap=False, width=200)
    console.print(table)
    return rows


def smoke_run(reporter: Reporter, python="3.13", sdk=None, provider=None, artifact=None, dist_dir=None,
              target="wasi", browser=False, lock_dir=None):
    """Smoke-run a built artifact on its runtime; an Emscripten one also in Chromium with `browser`."""
    if artifact is not None:
        if not artifact:
            raise UserError("--artifact is empty. Pass the path of an artifact tarball, or leave the option out for "
                            "dist/'s artifact of the selection.")
        path, version, plan = Path(artifact), None, None
    else:
        plan = _plan(python, sdk, provider, target)
        path = Workspace.from_options(dist_dir=dist_dir).dist_dir / f"{plan.artifact_name}.tar.gz"
        version = plan.release.version
    if not path.is_file():
        raise UserError(f"No artifact at {display_path(path)}. Build it first (`invoke build ...`) or pass --artifact PATH.")
    name = verifier.artifact_name(str(path))
    parsed = parse_artifact(name)
    if version is None:  # an artifact given by path: expect the version its name carries
        version = parsed.release if parsed else name.removeprefix("python-").split("-")[0]
    if plan is None and parsed:  # the modules its recipes build, where the name is of a build they make
        with contextlib.suppress(UserError):
            plan = _plan(parsed.release, parsed.sdk, parsed.provider, parsed.target,
                         extension=[name for name, _ in parsed.extensions], flavour=parsed.flavour)
    modules, extensions, programs = (plan.modules, plan.extensions, plan.smoke_programs) if plan else ((), (), {})
    target = TARGETS[parsed.target if parsed else DEFAULT_TARGET]
    if browser and not target.runs_in_browser:
        raise UserError(f"--browser runs an Emscripten artifact in Chromium; {path.name} is built for {target.title}.")
    workspace = Workspace.from_options(dist_dir=dist_dir, lock_dir=lock_dir)
    # The runtime (the wasmtime CLI, Node) of the image that built it, as the lockfile names it.
    lock = read_build_lock(lockfile_path(workspace.lock_dir, name))
    executor, image = DockerExecutor(Store.of(workspace), reporter), lock["images"]["toolchain"]["id"]
    with reporter.phase("smoke", f"{display_path(path)}: {target.runtime_of(plan)}") as phase:
        report = target.smoke(path, version, executor, image, workspace.logs_dir / f"smoke-{name}.log",
                              workspace.runtime_cache_dir, modules, extensions, programs)
        phase.outcome = summary(report)
    if browser:
        with reporter.phase("smoke", f"{display_path(path)} in Chromium") as phase:
            report = {"node": report, "browser": browser_smoke(path, version, modules)}
            phase.outcome = summary(report["browser"])
    return report


def shell(reporter: Reporter, python="3.13", sdk=None, provider=None, target="wasi", line=None, network=False,
          workdir=None, build_dir=None, dist_dir=None, lock_dir=None):
    """The build's toolchain image with its devkit at $DEVKIT: a shell, or the command `line`; exit with its
    status."""
    plan = _plan(python, sdk, provider, target)
    workspace = Workspace.from_options(build_dir=build_dir, dist_dir=dist_dir, lock_dir=lock_dir)
    status = open_shell(plan, workspace, Path(workdir if workdir is not None else os.getcwd()), line, network)
    if status:
        raise invoke.Exit(code=status)


def serve(reporter: Reporter, artifact, port=8000, page=None):
    """Serve an Emscripten artifact on 127.0.0.1 with the headers its REPL pages need, until interrupted."""
    number = whole_number(port, 0, 65535)
    if number is None:
        raise UserError(f"--port {port!r} is not a TCP port: pass a whole number from 1 to 65535, or 0 for a free one.")
    serve_artifact(Path(artifact), number, lambda url: reporter.console.print(
        f"Serving {display_path(Path(artifact))}: open [bold]{url}[/] (Ctrl-C to stop)", soft_wrap=True), page)


def verify(reporter: Reporter, artifact, lock=None, sha256=None, lock_dir=None):
    """Check an artifact against its lockfile and manifest (scripts/verify_artifact.py's checks); exit with its status."""
    path = Path(artifact)
    if not path.is_file():
        raise UserError(f"No artifact at {display_path(path)}. Pass the path of a .tar.gz written by `invoke build`.")
    name = verifier.artifact_name(str(path))
    # A companion (debug artifact, devkit) is recorded in the lockfile of the artifact it belongs to.
    owner = next((name.removesuffix(suffix) for suffix in verifier.COMPANIONS if name.endswith(suffix)), name)
    default = lockfile_path(Workspace.from_options(lock_dir=lock_dir).lock_dir, owner)
    lockfile = Path(lock) if lock else (default if default.is_file() and not sha256 else None)
    if lockfile is None and not sha256:
        reporter.warn(f"No lockfile for {name} ({display_path(default)} does not exist) and no --sha256: checking "
                      f"the files against the artifact's own manifest only, which proves integrity, not origin.")
    if lockfile:
        # Read as the standalone script reads it first (a regular file, size, nesting, strict JSON: a FIFO or a
        # device is refused, not waited on), then checked whole by read_lock, whose messages name the key;
        # verifier.verify checks the keys it uses once more, as it does for the script.
        try:
            verifier.read_lockfile(str(lockfile))
        except ValueError as error:
            raise UserError(f"Lockfile {display_path(lockfile)} {error}. Pass the path of a lockfile written by "
                            f"`invoke build` (lockfiles/<artifact>.json).") from None
    report = verifier.verify(str(path), read_lock(lockfile) if lockfile else None, sha256)
    for _, message in report.problems:
        sys.stdout.write(message + "\n")
    if report.status != verifier.OK:
        raise invoke.Exit(code=report.status)
    against = f"the lockfile {display_path(lockfile)}" if lockfile else ("--sha256" if sha256 else "its manifest")
    sys.stdout.write(f"verified: {display_path(path)} (every file matches its manifest; checked against {against})\n")
    return report


def rebuild(reporter: Reporter, lock, check=False, output=None, artifact=None, mirror=(), recipes=None,
            cache_dir=None, allow_extra_configure_args=False, allow_other_base=False, profile=None):
    """Build a lockfile again from scratch in a fresh directory and compare everything with it.

    The lockfile is checked against the recipes first; its values they do not give are used only as
    `allow_extra_configure_args` and `allow_other_base` allow."""
    output = directory_option(output, "--output", reporter) if output is not None else None
    report = rebuild_lock(reporter, Path(lock), output, cache_dir,
                          check_mirror_dirs(mirror), artifact, _recipes(recipes),
                          allow_extra_configure_args=allow_extra_configure_args, allow_other_base=allow_other_base,
                          profile=profile)
    sys.stdout.write(report.as_text())
    reporter.info(f"report    {report.rebuild_dir}/report.json")
    if check and not report.identical:
        raise invoke.Exit(code=1)
    return report


def image_export(reporter: Reporter, python="3.13", sdk=None, provider=None, target="wasi", dist_dir=None,
                 lock_dir=None):
    """Write the native and toolchain images a lockfile records to dist/ (image_transfer.py), with SHA256SUMS."""
    plan = _plan(python, sdk, provider, target)
    workspace = Workspace.from_options(dist_dir=dist_dir, lock_dir=lock_dir)
    for path in export_images(connect, workspace, plan.artifact_name, reporter.info):
        reporter.info(f"image archive  {display_path(path)}  ({path.stat().st_size:,} bytes, sha256 {sha256_path(path)})")


def image_import(reporter: Reporter, archive, lock_dir=None):
    """Load an image archive once it is checked against the lockfiles (image_transfer.py)."""
    lock_dir = Workspace.from_options(lock_dir=lock_dir).lock_dir
    content, tags = import_image(connect, Path(archive), lock_dir)
    reporter.info(f"loaded {content.id} as {', '.join(tags)} (checked against the lockfiles in {display_path(lock_dir)})")
    return content


def gc(reporter: Reporter, keep=(), dry_run=False, build_dir=None, lock_dir=None):
    """Remove the store products and images no lockfile reaches (stages/gc.py); with dry_run, list them only."""
    workspace = Workspace.from_options(build_dir=build_dir, lock_dir=lock_dir, reporter=reporter)
    lockfiles = root_lockfiles(workspace.lock_dir, [Path(path) for path in keep])
    roots = Roots.of(lockfiles)
    try:
        client = connect()
    except UserError as error:
        client = None
        reporter.warn(f"images left alone: {error}")
    result = collect(Store.of(workspace), roots, client, dry_run)
    verb = "would remove" if dry_run else "removed"
    for name in result.removed_products:
        sys.stdout.write(f"{verb} {display_path(workspace.store_dir / name)}\n")
    for tag in result.removed_images:
        sys.stdout.write(f"{verb} image {tag}\n")
    for name in result.held:
        sys.stdout.write(f"kept {name}: a running build holds it\n")
    sys.stdout.write(
        f"{verb} {len(result.removed_products)} store products ({result.store_bytes:,} bytes) and "
        f"{len(result.removed_images)} images ({result.image_bytes:,} bytes{', as the engine sizes them' if dry_run else ''}); "
        f"kept {result.kept_products} products and {result.kept_images} images that {len(lockfiles)} lockfiles reach\n")
    return result
