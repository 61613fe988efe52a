"""The executor: how a stage (stage.py) is carried out, injected into every build as ruby.wasm's BuildExecutor is.

`Executor.realise` is the one way a stage becomes a product: the store finds
it by its identity, or the executor mounts its inputs, runs its phases in
order, and checks it made what it must. What differs is how a phase runs:

- `DockerExecutor`: each phase in a fresh, locked-down container (below);
- `RecordingExecutor`: nothing runs; each call is recorded and each stage's
  files are made empty, so the orchestration (which stages, in which order,
  mounting what) has fast unit tests, and `invoke build --dry-run` prints
  the stages with their identities.

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
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker.errors
from docker.types import Mount

from cpython_wasm.errors import BuildError
from cpython_wasm.inputs.archives import safe_extract
from cpython_wasm.paths import display_path
from cpython_wasm.progress import Reporter
from cpython_wasm.stages import images
from cpython_wasm.stages.engine import ENGINE_GONE, connect, engine_answers, engine_gone, remove_container
from cpython_wasm.stages.stage import ProductInput, Stage, Unpack
from cpython_wasm.stages.store import Product, Store

UNPRIVILEGED = 65534  # "nobody": the container user when the host user is root
LOG_TAIL_LINES = 15
PHASE_LABEL = "io.github.cpython-wasm-recipes.phase"
OUTPUT_LABEL = "io.github.cpython-wasm-recipes.output"  # the host directory the container writes to
# The process that runs the container (host name and PID): a container of a build still running is its own to
# remove, even once it has exited (between its exit and the owner's reading of its status).
OWNER_LABEL = "io.github.cpython-wasm-recipes.owner"


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_gone(container) -> bool:
    """Whether the process that ran the container has ended (on this host; one on another host is left alone)."""
    host, _, pid = container.labels.get(OWNER_LABEL, "").rpartition(":")
    if not host:
        return True  # no owner recorded
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


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
                              client.containers.list(all=True, filters={"label": OUTPUT_LABEL, "status": status})
                              if owner_is_gone(container)])


def remove_leftover_containers(client, output: Path) -> int:
    """Remove the containers of killed builds that wrote to `output`; how many there were."""
    return remove_containers(client.containers.list(all=True, filters={"label": f"{OUTPUT_LABEL}={output}"}))


def remove_containers(containers) -> int:
    """Remove `containers`; how many this call removed (two builds starting at once may both find one)."""
    return sum(remove_container(container) for container in containers)


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
            labels={PHASE_LABEL: phase, OWNER_LABEL: owner(), **({OUTPUT_LABEL: outputs[0]} if outputs else {})},
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
                remove_container(container)
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


class Executor:
    """Realises stages through the store; subclasses say how one phase runs and how images are had."""

    def __init__(self, store: Store, reporter: Reporter):
        self.store, self.reporter = store, reporter

    def realise(self, stage: Stage | Unpack, fresh: bool = False) -> Product:
        """The stage's product: found in the store by its identity, or made now."""
        if isinstance(stage, Unpack):
            with self.reporter.phase(stage.kind, stage.archive) as phase:
                product = self.store.realise(stage, self._unpacker(stage), fresh=fresh)
                phase.outcome = outcome(product)
            return product
        product = self.store.realise(stage, self._runner(stage), fresh=fresh,
                                     abandoned=lambda directory: self._abandoned(stage, directory))
        if product.reused:
            self.reporter.info(f"[bold green]✓[/] [bold]{stage.kind}[/]: {outcome(product)}")
        return product

    def binds(self, stage: Stage, output: Path) -> list[Bind]:
        """The stage's read-only inputs where this host has them, and its output directory."""
        mounts = [Bind(self.store.path(mount.stage), mount.container) if isinstance(mount, ProductInput)
                  else Bind(mount.host, mount.container) for mount in stage.inputs]
        return [*mounts, Bind(output, stage.output, writable=True)]

    def _runner(self, stage: Stage):
        def build(directory: Path, log_dir: Path) -> dict[str, float]:
            timings = {}
            for phase in stage.phases:
                start = time.monotonic()
                with self.reporter.phase(stage.kind if phase.name == stage.kind else f"{stage.kind}: {phase.name}"):
                    self.run_phase(stage.image, phase.name, list(phase.command), self.binds(stage, directory),
                                   stage.environment_dict, log_dir / f"{phase.name}.log", phase.workdir)
                timings[phase.name] = time.monotonic() - start
            missing = [name for name in stage.produces if not (directory / name).is_file()]
            if missing:
                raise BuildError(
                    f"Stage {stage.kind} finished but made no {', '.join(missing)} in {stage.output}; its logs are in "
                    f"{display_path(log_dir)}. The build helper may write elsewhere for this version (see "
                    f"cpython_wasm/targets/drivers.py)."
                )
            return timings  # kept with the product's logs (store.TIMINGS)

        return build

    def _unpacker(self, stage: Unpack):
        def unpack(directory: Path, log_dir: Path) -> None:
            self.unpack(stage, directory)
            for name in stage.directories:
                (directory / name).mkdir(parents=True)
            for name, text in stage.files:
                (directory / name).parent.mkdir(parents=True, exist_ok=True)
                (directory / name).write_text(text)

        return unpack

    def _abandoned(self, stage, directory: Path) -> None:
        # A killed build of this product left its directory, and maybe its container still writing there.
        removed = self.remove_leftovers(directory)
        if removed:
            self.reporter.warn(f"{stage.name}: removed {removed} container(s) left by an earlier build that was killed")

    # -- what subclasses provide ----------------------------------------------------------

    def run_phase(self, image: str, phase: str, command: list[str], binds: list[Bind], environment: dict[str, str],
                  log: Path, workdir: str | None = None, check: bool = True) -> int:
        raise NotImplementedError

    def unpack(self, stage: Unpack, directory: Path) -> None:
        """The stage's tarball unpacked into `directory`, its top directory stripped."""
        raise NotImplementedError

    def remove_leftovers(self, directory: Path) -> int:
        raise NotImplementedError

    def remove_stopped(self) -> int:
        """Remove containers of builds that were killed or cut off; how many."""
        raise NotImplementedError

    def ensure_base(self, plan, fresh: bool = False) -> images.BaseImage:
        raise NotImplementedError

    def ensure_image(self, spec: images.ImageSpec, mirror: str, epoch: int, fresh: bool = False) -> images.EnsuredImage:
        """Build and normalise the image unless its tag exists, normalised; its content, and whether it was reused."""
        raise NotImplementedError

    def image_labels(self, tag: str) -> dict[str, str] | None:
        """The labels of the normalised image tagged `tag`; None if there is no such image."""
        raise NotImplementedError

    def image_content(self, tag: str) -> images.ImageContent | None:
        """The content (image ID, diff_id, size) of the normalised image tagged `tag`; None if there is none."""
        raise NotImplementedError

    def inventory(self, tag: str) -> list[dict]:
        """The Debian packages installed in an image."""
        raise NotImplementedError


class DockerExecutor(Executor):
    """Each phase in a container of the Docker engine (connected to when first needed)."""

    def __init__(self, store: Store, reporter: Reporter, client=None):
        super().__init__(store, reporter)
        self._client = client

    @property
    def client(self):
        if self._client is None:
            self._client = connect()
        return self._client

    def run_phase(self, image, phase, command, binds, environment, log, workdir=None, check=True) -> int:
        return run_phase(self.client, image, phase, command, binds, environment, log, workdir=workdir, check=check)

    def unpack(self, stage: Unpack, directory: Path) -> None:
        safe_extract(stage.host, directory, strip_components=1)

    def remove_leftovers(self, directory: Path) -> int:
        return remove_leftover_containers(self.client, directory)

    def remove_stopped(self) -> int:
        return remove_stopped_containers(self.client)

    def ensure_base(self, plan, fresh: bool = False) -> images.BaseImage:
        return images.ensure_base(self.client, plan, self.store, fresh=fresh)

    def ensure_image(self, spec: images.ImageSpec, mirror: str, epoch: int, fresh: bool = False) -> images.EnsuredImage:
        return images.ensure_image(self.client, spec, self.store, mirror, epoch, fresh=fresh)

    def image_labels(self, tag: str) -> dict[str, str] | None:
        return images.normalised_labels(self.client, tag)

    def image_content(self, tag: str) -> images.ImageContent | None:
        return images.normalised_content(self.client, tag)

    def inventory(self, tag: str) -> list[dict]:
        return images.read_inventory(self.client, tag)


@dataclass
class Call:
    """What a RecordingExecutor was asked to do."""

    action: str  # "run", "unpack", "image"
    name: str  # the phase, the tarball, or the image
    image: str | None = None
    binds: list = field(default_factory=list)
    environment: dict = field(default_factory=dict)


class RecordingExecutor(Executor):
    """Runs nothing: records each call, and makes a stage's files (empty) so that the next stage can go on."""

    client = None

    def __init__(self, store: Store, reporter: Reporter):
        super().__init__(store, reporter)
        self.calls: list[Call] = []

    def run_phase(self, image, phase, command, binds, environment, log, workdir=None, check=True) -> int:
        self.calls.append(Call("run", phase, image, list(binds), dict(environment)))
        return 0

    def _runner(self, stage: Stage):
        run = super()._runner(stage)

        def build(directory: Path, log_dir: Path):
            for name in stage.produces:  # what the phases would have made
                (directory / name).parent.mkdir(parents=True, exist_ok=True)
                (directory / name).touch()
            return run(directory, log_dir)

        return build

    def unpack(self, stage: Unpack, directory: Path) -> None:
        self.calls.append(Call("unpack", stage.archive))

    def remove_leftovers(self, directory: Path) -> int:
        return 0

    def remove_stopped(self) -> int:
        return 0

    def ensure_base(self, plan, fresh: bool = False) -> images.BaseImage:
        tag = images.base_tag(plan)
        self.calls.append(Call("image", tag))
        return images.BaseImage(tag, None if plan.base.image else "0" * 64, reused=True)

    def ensure_image(self, spec: images.ImageSpec, mirror: str, epoch: int, fresh: bool = False) -> images.EnsuredImage:
        self.calls.append(Call("image", spec.tag))
        return images.EnsuredImage(self.image_content(spec.tag), reused=True)

    def image_labels(self, tag: str) -> dict[str, str] | None:
        return None

    def image_content(self, tag: str) -> images.ImageContent:
        """Made up from the tag's identity (the same for the same tag), as if every image were built."""
        made_up = "sha256:" + tag.rsplit(":", 1)[1] * 2
        return images.ImageContent(made_up, made_up, 1)

    def inventory(self, tag: str) -> list[dict]:
        return []

    @property
    def phases(self) -> list[str]:
        return [call.name for call in self.calls if call.action == "run"]


def outcome(product: Product) -> str:
    return f"{'reused' if product.reused else 'built'} {display_path(product.path)}"
