"""The executor: runs one build phase in a fresh, locked-down container.

Every phase (configure-build-python, make-build-python, configure-host,
make-host, package) is its own container run:

- networking disabled: every input was fetched and verified before;
- a non-root user, all capabilities dropped, no-new-privileges;
- only declared directories are mounted, inputs read-only, the one output
  directory writable;
- its output is kept in `<build>/logs/<product>/<phase>.log`.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import docker.errors
from docker.types import Mount

from .errors import BuildError
from .paths import display_path

UNPRIVILEGED = 65534  # "nobody": the container user when the host user is root
LOG_TAIL_LINES = 15


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


def make_writable_for_container(path: Path) -> None:
    uid, gid = container_user()
    if os.getuid() == 0:
        os.chown(path, uid, gid)


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
    container = client.containers.create(
        image, command=command, user=f"{uid}:{gid}", environment=environment, working_dir=workdir,
        network_mode="none", network_disabled=True, cap_drop=["ALL"], security_opt=["no-new-privileges"],
        mounts=[Mount(b.container, str(b.host), type="bind", read_only=not b.writable) for b in binds],
        labels={"io.github.cpython-wasm-recipes.phase": phase},
    )
    try:
        container.start()
        with open(log, "wb") as output:
            output.write(f"$ {' '.join(command)}\n".encode())
            for chunk in container.logs(stream=True, follow=True):
                output.write(chunk)
        status = container.wait(timeout=None)["StatusCode"]
    except docker.errors.APIError as error:
        raise BuildError(f"Phase {phase} could not run in its container: {error}. Its log is {display_path(log)}.") from None
    finally:
        try:
            container.remove(force=True)
        except docker.errors.DockerException:
            pass  # the engine went away; the container goes with it
    if status != 0 and check:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]
        raise BuildError(
            f"Phase {phase} failed (exit status {status}). Its full log is {display_path(log)}; "
            f"outputs from earlier builds in dist/ and lockfiles/ are unchanged. Last lines of the log:\n"
            + "\n".join(f"    {line}" for line in tail)
        )
    return status
