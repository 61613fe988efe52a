"""The targets a build can be for, by the name recipes and lockfiles use (see target.py)."""

from pathlib import Path

from cpython_wasm.stages.stage import Unpack
from cpython_wasm.targets.emscripten import Emscripten
from cpython_wasm.targets.target import Target
from cpython_wasm.targets.wasi import Wasi

TARGETS: dict[str, Target] = {target.name: target for target in (Wasi(), Emscripten())}


def target_of(plan) -> Target:
    return TARGETS[plan.target]


def toolchain_spec(plan, cached_path, store=None):
    """The plan's toolchain image (its target's toolchain_spec)."""
    return target_of(plan).toolchain_spec(plan, cached_path, store)


def source_stage(plan, tarball: Path) -> Unpack:
    """The CPython source of a plan's release, unpacked once for every target: the mount points of the build
    python (the same for all) and of each target's host build, and the helper's Modules/Setup.local. So the
    build python, which mounts it, is one product for WASI and Emscripten alike."""
    driver = target_of(plan).driver(plan)
    host_dirs = {directory for target in TARGETS.values() for directory in target.mount_points(plan)}
    return Unpack(
        f"cpython-{plan.release.version}-source", plan.release.source.file, plan.release.source.sha256,
        directories=(driver.build_python_dir, *sorted(host_dirs)), files=(("Modules/Setup.local", driver.setup_local),),
        host=tarball,
    )
