"""The executor: runs one build phase in a fresh, locked-down container.

Every phase (configure-build-python, make-build-python, configure-host,
make-host, package) is its own container run:

- networking disabled: every input was fetched and verified before;
- a non-root user, all capabilities dropped, no-new-privileges;
- only declared directories are mounted, inputs read-only, the one output
  directory writable;
- its output is kept in `<build>/logs/<product>/<phase>.log`.

A build that is killed (kill -9, a lost terminal) cannot stop its container,
which goes on writing into the product's temporary directory. Each container
is labelled with the directory it writes to, and the next build of the same
product removes any container left with that label before it starts again
(it holds the product's lock: no live build owns such a container). If the
Docker engine itself goes away mid-phase, the phase fails with an error that
says so and how to go on.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import docker.errors
import requests
from docker.types import Mount

from .errors import BuildError
from .paths import display_path

UNPRIVILEGED = 65534  # "nobody": the container user when the host user is root
LOG_TAIL_LINES = 15
PHASE_LABEL = "io.github.cpython-wasm-recipes.phase"
OUTPUT_LABEL = "io.github.cpython-wasm-recipes.output"  # the host directory the container writes to
# What the Docker SDK raises when the engine stops answering mid-call.
ENGINE_GONE = (docker.errors.DockerException, requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)


@dataclass(frozen=True)
class Bind:
    host: Path
    container: str
    writable: bool = False


def container_user() -> tuple[int, int]:
    """The host user, so outputs belong to whoever builds; never root."""
    if os.getuid() == 0:
        return UNPRIVILEGED, UNPRIVILEGED
    return os.getuid(), os.getgid()


def make_writable_for_container(path: Path, recursive: bool = False) -> None:
    """Let the container's user write to `path` (and, if recursive, to everything below it)."""
    uid, gid = container_user()
    if os.getuid() != 0:
        return  # the container runs as this very user
    os.chown(path, uid, gid)
    if recursive:
        for directory, subdirectories, files in os.walk(path):
            for name in (*subdirectories, *files):
                os.chown(os.path.join(directory, name), uid, gid, follow_symlinks=False)


def remove_stopped_containers(client) -> int:
    """Remove our containers that have stopped but are still there: a build removes its own as each phase ends,
    unless the engine went away first or the build was killed. (A container still running may be a live
    build's: those go only under their product's lock, see remove_leftover_containers.)"""
    return remove_containers([container for status in ("exited", "dead") for container in
                              client.containers.list(all=True, filters={"label": OUTPUT_LABEL, "status": status})])


def remove_leftover_containers(client, output: Path) -> int:
    """Remove the containers of killed builds that wrote to `output`; how many there were."""
    return remove_containers(client.containers.list(all=True, filters={"label": f"{OUTPUT_LABEL}={output}"}))


def remove_containers(containers) -> int:
    """Remove `containers`; how many this call removed (two builds starting at once may both find one)."""
    removed = 0
    for container in containers:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            continue
        removed += 1
    return removed


def run_phase(client, image: str, phase: str, command: list[str], binds: list[Bind],
              environment: dict[str, str], log: Path, workdir: str | None = None, check: bool = True) -> int:
    """Run `command` in `image`; return its exit status.

    check: raise BuildError naming the phase and its log if it fails (the
    caller of a command whose status means something else judges it itself)."""
    for bind in binds:
        if bind.writable:
            make_writable_for_container(bind.host)
    uid, gid = container_user()
    log.parent.mkdir(parents=True, exist_ok=True)
    outputs = [str(bind.host) for bind in binds if bind.writable]
    container = None
    try:
        container = client.containers.create(
            image, command=command, user=f"{uid}:{gid}", environment=environment, working_dir=workdir,
            network_mode="none", network_disabled=True, cap_drop=["ALL"], security_opt=["no-new-privileges"],
            mounts=[Mount(b.container, str(b.host), type="bind", read_only=not b.writable) for b in binds],
            labels={PHASE_LABEL: phase, **({OUTPUT_LABEL: outputs[0]} if outputs else {})},
        )
        container.start()
        with open(log, "wb") as output:
            output.write(f"$ {' '.join(command)}\n".encode())
            for chunk in container.logs(stream=True, follow=True):
                output.write(chunk)
        status = container.wait(timeout=None)["StatusCode"]
    except docker.errors.APIError as error:
        if not engine_answers(client):
            raise engine_gone(phase, log) from None
        raise BuildError(f"Phase {phase} could not run in its container: {error}. Its log is {display_path(log)}.") from None
    except ENGINE_GONE:
        raise engine_gone(phase, log) from None
    finally:
        try:
            if container is not None:
                container.remove(force=True)
        except ENGINE_GONE:
            pass  # the engine went away; the container goes with it
    if status != 0 and check:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]
        raise BuildError(
            f"Phase {phase} failed (exit status {status}). Its full log is {display_path(log)}; "
            f"outputs from earlier builds in dist/ and lockfiles/ are unchanged. Last lines of the log:\n"
            + "\n".join(f"    {line}" for line in tail)
        )
    return status


def engine_answers(client) -> bool:
    try:
        client.ping()
        return True
    except ENGINE_GONE:
        return False


def engine_gone(phase: str, log: Path) -> BuildError:
    return BuildError(
        f"The Docker engine stopped answering during phase {phase}; the phase did not finish and nothing it made "
        f"was kept (its log so far is {display_path(log)}). Outputs in dist/ and lockfiles/ are unchanged. Start "
        f"the engine again (`scripts/ensure-docker`) and run the same command: finished stages are reused, this one "
        f"starts over."
    )
