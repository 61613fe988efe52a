"""The commands behind `invoke` tasks, and how their failures reach the user.

tasks.py parses options and calls these. Errors we raise become one paragraph
on standard error and an exit status (see errors.py); anything else is a bug
and keeps its traceback.
"""

import sys
from pathlib import Path

import invoke
from rich.markup import escape
from rich.table import Table

from . import images
from .build import Build
from .errors import BuildError, FetchError, UserError
from .fetch import check_mirror_dirs
from .paths import Workspace, display_path
from .progress import Reporter
from .recipes import Recipes
from .smoke import smoke, summary

IMAGES = ("toolchain", "native")


def run(command, **options):
    """Run a command; report our errors without a traceback and exit with their status."""
    reporter = Reporter()
    try:
        return command(reporter=reporter, **options)
    except (UserError, FetchError, BuildError) as error:
        reporter.console.print(f"[bold red]error:[/] {escape(str(error))}")
        raise invoke.Exit(code=error.exit_code) from None
    except KeyboardInterrupt:
        reporter.console.print("[bold red]interrupted[/]: outputs in dist/ and lockfiles/ are unchanged.")
        raise invoke.Exit(code=130) from None


def _plan(python, sdk, provider, target="wasi", debian_mirror=None, base_image=None):
    plan = Recipes().resolve(python, sdk, provider, target)
    return plan.with_debian_mirror(debian_mirror).with_base_image(base_image)


def build(reporter: Reporter, python, sdk=None, provider=None, target="wasi", mirror=(), debian_mirror=None,
          base_image=None, configure_arg=(), cache_dir=None, build_dir=None, dist_dir=None, lock_dir=None):
    plan = _plan(python, sdk, provider, target, debian_mirror, base_image)
    mirrors = check_mirror_dirs(mirror)
    workspace = Workspace.from_options(cache_dir, build_dir, dist_dir, lock_dir)
    reporter.info(f"[bold]Building CPython {plan.python.version} for {plan.python.wasi.host_triple}[/] with WASI SDK "
                  f"{plan.sdk} ({plan.provider}) → {plan.artifact_name}")
    result = Build(plan, workspace, reporter, mirrors, configure_arg).run()
    table = Table("phase", "seconds", title="Wall time per phase", title_justify="left")
    for name, seconds in result.timings.items():
        table.add_row(name, f"{seconds:.1f}")
    reporter.console.print(table)
    artifact = result.lock["outputs"][result.artifact.name]
    reporter.info(f"artifact  {display_path(result.artifact)}  ({artifact['size']:,} bytes, sha256 {artifact['sha256']})")
    reporter.info(f"lockfile  {display_path(result.lockfile)}")
    return result


def render(reporter: Reporter, python, sdk=None, provider=None, image="toolchain", base_image=None):
    if image not in IMAGES:
        raise UserError(f"--image {image!r} is not an image of a build; choose one of: {', '.join(IMAGES)}.")
    plan = _plan(python, sdk, provider, base_image=base_image)
    cache = Workspace.from_options().cache_dir / "sha256"
    spec = images.native_spec(plan) if image == "native" else images.toolchain_spec(plan, lambda pin: cache / pin.sha256)
    reporter.info(f"# image {spec.tag}")
    sys.stdout.write(spec.dockerfile)
    return spec


def smoke_run(reporter: Reporter, python="3.13", sdk=None, provider=None, artifact=None, dist_dir=None):
    if artifact:
        path, version = Path(artifact), None
    else:
        plan = _plan(python, sdk, provider)
        path = Workspace.from_options(dist_dir=dist_dir).dist_dir / f"{plan.artifact_name}.tar.gz"
        version = plan.python.version
    if not path.is_file():
        raise UserError(f"No artifact at {display_path(path)}. Build it first (`invoke build ...`) or pass --artifact PATH.")
    if version is None:  # an artifact given by path: expect the version its name carries
        version = path.name.removeprefix("python-").split("-")[0]
    with reporter.phase("smoke", display_path(path)) as phase:
        report = smoke(path, version)
        phase.outcome = summary(report)
    return report

