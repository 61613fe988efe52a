"""`invoke shell`: the toolchain image of a build, with its devkit, for compiling C code against the interpreter.

The image is the one the lockfile names (the very compiler and SDK that
built python.wasm: /opt/wasi-sdk), the artifact and its devkit are unpacked
read-only at /devkit/<artifact> ($DEVKIT), the working directory is mounted
at /work, and the container has no network unless asked, runs as the
invoking user (never root), with no capabilities.
"""

import os
import subprocess
import sys
from pathlib import Path

from cpython_wasm.errors import UserError
from cpython_wasm.files import sha256_path
from cpython_wasm.inputs.archives import safe_extract
from cpython_wasm.paths import Workspace, display_path
from cpython_wasm.recipes.artifacts import DEVKIT_SUFFIX, companion_name
from cpython_wasm.recipes.plan import Plan
from cpython_wasm.records.lock import lockfile_path, read_build_lock
from cpython_wasm.stages.engine import connect
from cpython_wasm.stages.executor import container_user
from cpython_wasm.targets import target_of

DEVKIT_MOUNT = "/devkit"
WORK_MOUNT = "/work"
# What `docker run --mount` cannot carry in a path (it reads its value as one CSV record: a comma splits it, a
# double quote is refused as a bare quote; control characters would make the path ambiguous to read back):
# refused, with a message, rather than quoted.
UNMOUNTABLE = {",", '"', *map(chr, range(32)), "\x7f"}


def unpacked_devkit(workspace: Workspace, artifact: Path, devkit: Path) -> Path:
    """The artifact with its devkit unpacked over it, once per devkit (named by its hash) under the build dir."""
    directory = workspace.build_dir / "shell" / sha256_path(devkit)[:32]
    if not directory.is_dir():
        partial = directory.with_name(f".{directory.name}.partial-{os.getpid()}")
        for tarball in (artifact, devkit):
            safe_extract(tarball, partial)
        partial.rename(directory)  # complete or absent: a killed unpack leaves only a .partial directory
    return directory


def check_mountable(path: Path, option: str) -> None:
    if not path.is_dir():
        raise UserError(f"{option} {display_path(path)} is not a directory. Pass an existing directory to mount "
                        f"at {WORK_MOUNT}.")
    if UNMOUNTABLE & set(str(path)):
        raise UserError(f"{option} {str(path)!r} has a comma, a double quote or a control character, which a bind "
                        f"mount cannot name. Run from (or pass) a directory whose path has none of them.")


def shell(plan: Plan, workspace: Workspace, workdir: Path, command: str | None, network: bool) -> int:
    """Run `command` (or an interactive shell) in the build's toolchain image; its exit status."""
    target = target_of(plan)
    if not target.has_devkit:
        raise UserError(f"invoke shell opens a build's devkit, and {target.title} builds have none yet "
                        f"({plan.artifact_name}). Use a WASI build (`--target wasi`).")
    check_mountable(workdir, "--workdir")
    artifact = workspace.dist_dir / f"{plan.artifact_name}.tar.gz"
    devkit = artifact.with_name(companion_name(artifact.name, DEVKIT_SUFFIX))
    lockfile = lockfile_path(workspace.lock_dir, plan.artifact_name)
    if not (artifact.is_file() and devkit.is_file() and lockfile.is_file()):
        raise UserError(f"No devkit of {plan.artifact_name} in {display_path(workspace.dist_dir)} with its lockfile "
                        f"in {display_path(workspace.lock_dir)}. Build it first: `invoke build --python "
                        f"{plan.release.version} --sdk {plan.sdk} --provider {plan.provider}`.")
    image = read_build_lock(lockfile)["images"]["toolchain"]["tag"]
    if not connect().images.list(name=image):
        raise UserError(f"The toolchain image {image} of {lockfile.name} is not in this Docker engine (removed by "
                        f"`invoke gc`?). Run the build again (`invoke build --python {plan.release.version} --sdk "
                        f"{plan.sdk} --provider {plan.provider}`): it rebuilds the image and finds the rest.")
    unpacked = unpacked_devkit(workspace, artifact, devkit)
    check_mountable(unpacked, "--build-dir")
    uid, gid = container_user()
    interactive = command is None and sys.stdin.isatty()
    arguments = [
        "docker", "run", "--rm", *(["--interactive", "--tty"] if interactive else []),
        "--network", "bridge" if network else "none", "--user", f"{uid}:{gid}", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "--mount", f"type=bind,source={unpacked},target={DEVKIT_MOUNT},readonly",
        "--mount", f"type=bind,source={workdir.resolve()},target={WORK_MOUNT}",
        "--workdir", WORK_MOUNT, "--env", f"DEVKIT={DEVKIT_MOUNT}/{plan.artifact_name}", "--env", "HOME=/tmp",
        image, *(["sh", "-c", command] if command is not None else ["bash"]),
    ]
    return subprocess.run(arguments, check=False).returncode
