"""End to end: builds killed with SIGKILL in each stage and mid-download, builds running at once, the engine going away.

The builds killed in a compile stage are builds the suite makes anyway
(tests/e2e/test_lines.py builds the same selections, and finds them done):
each is started, killed in a stage, checked for leftovers, and then they are
finished at once, sharing the download cache and the store. A kill costs
only the work it threw away. The other faults use stages of their own that
take seconds (a package stage, made new by a recipe that leaves one more,
made-up, module out).
"""

import json
import re
import shutil
import signal
import subprocess
import threading
import time
import tomllib
import uuid
from pathlib import Path

import docker
import pytest
import tomli_w

from cpython_wasm.paths import Workspace
from cpython_wasm.recipes.plan import RECIPES_DIR, Recipes
from cpython_wasm.stages.executor import OUTPUT_LABEL
from tests.e2e.conftest import ARTIFACT, SELECTION, build_args
from tests.helpers import INVOKE, PROJECT_ROOT, invoke, sha256, slow_server

pytestmark = pytest.mark.e2e

# (selection, the stage killed, the line printed when it starts): builds tests/e2e/test_lines.py needs, whose
# stages are new in a fresh store. Killed in their configure phases: the killed build's container goes on
# until the next build removes it, and configure is the shorter phase to waste. Both in their first compile
# stage, so that no stage is built while nothing else runs before a kill: all their work is done when they
# finish at once, two builds beside each other (a kill in a later stage: the package test below).
KILLS = [
    (("3.11.2", 25, "debian"), "build-python", "▶ build-python: configure-build-python"),
    (("3.15.0rc2", 33, "debian"), "build-python", "▶ build-python: configure-build-python"),
]


class Running:
    """An `invoke` command running in the background, its standard error read line by line as it comes."""

    def __init__(self, *args):
        self.process = subprocess.Popen([str(INVOKE), *map(str, args)], cwd=PROJECT_ROOT, text=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 1800) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"never saw {text!r} (exit status {self.process.poll()}):\n{self.output[-4000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        """kill -9, as a user or a CI runner's timeout would: the process gets no chance to clean up."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def finish(self, timeout: float = 3600) -> tuple[int, str]:
        self.process.wait(timeout=timeout)
        self.reader.join(timeout=30)
        return self.process.returncode, self.output


def leftovers(workspace, dist: Path | None = None, locks: Path | None = None) -> dict:
    """Whatever a killed build may leave: half-built products, hidden temp files, its containers."""
    hidden = [path.name for directory in (dist or workspace["dist"], locks or workspace["locks"]) if directory.is_dir()
              for path in directory.iterdir() if path.name.startswith(".") and not path.name.endswith(".lock")]
    # The containers writing into this session's store (a build elsewhere on the machine is none of its business).
    containers = [container for container in docker.from_env().containers.list(all=True, filters={"label": OUTPUT_LABEL})
                  if container.labels[OUTPUT_LABEL].startswith(str(workspace["build"]))]
    return {"building": sorted(path.name for path in (workspace["build"] / "store").glob(".building-*")),
            "hidden": sorted(hidden), "containers": sorted(container.name for container in containers)}


NOTHING_LEFT = {"building": [], "hidden": [], "containers": []}


def containers_removed(*outputs: str) -> int:
    """How many leftover containers these builds say they removed: a killed build's container still running is
    removed under its product's lock, one that has since finished when the next build starts."""
    return sum(int(count) for output in outputs
               for count in re.findall(r"removed (\d+) (?:stopped )?container\(s\) left by an earlier build", output))


def artifact_of(selection) -> str:
    return Recipes().resolve(*selection).artifact_name


@pytest.fixture(scope="module")
def killed(built, workspace):
    """Each build of KILLS started and killed -9 a few seconds into its stage; what each left behind."""
    found = {}
    for selection, stage, marker in KILLS:
        # With a reused store (CPYTHON_WASM_TEST_BUILD_DIR), make sure the stage really runs again.
        for product in (workspace["build"] / "store").glob(f"*-{stage}-*{selection[0]}*"):
            if product.is_dir():
                shutil.rmtree(product)
        running = Running(*build_args(workspace, *selection))
        running.wait_for(marker)
        time.sleep(2 if stage == "package" else 5)  # inside the stage: its container is running
        running.kill()
        found[selection[0]] = {"selection": selection, "stage": stage, "left": leftovers(workspace),
                               "output": running.output}
    return found


def assert_only_the_stage_unfinished(left: dict, output: str, stage: str, release: str, dist: Path, locks: Path,
                                     name: str) -> None:
    # The killed stage's temporary directory, never renamed into the store: no product is half there.
    assert [path for path in left["building"] if f"-{stage}-" in path and release in path], (left, output[-3000:])
    assert left["hidden"] == [], "no temp file in dist/ or lockfiles/"
    assert not (dist / f"{name}.tar.gz").exists() and not (locks / f"{name}.json").exists()


@pytest.mark.parametrize("release", [selection[0] for selection, _, _ in KILLS])
def test_a_build_killed_in_a_stage_leaves_only_that_stage_unfinished(killed, workspace, release):
    entry = killed[release]
    assert_only_the_stage_unfinished(entry["left"], entry["output"], entry["stage"], release, workspace["dist"],
                                     workspace["locks"], artifact_of(entry["selection"]))
    assert not [path for path in (workspace["build"] / "store").iterdir()
                if path.is_dir() and not path.name.startswith(".") and not any(path.iterdir())]

def test_the_killed_builds_finish_at_once_sharing_the_cache_and_the_store(killed, workspace):
    runs = {release: Running(*build_args(workspace, *entry["selection"])) for release, entry in killed.items()}
    results = {release: run.finish() for release, run in runs.items()}
    for release, (status, output) in results.items():
        assert status == 0, f"{release}:\n{output[-4000:]}"
    # Each killed build's container, whether it was still running or had finished by then, removed once.
    left_by_kills = {name for entry in killed.values() for name in entry["left"]["containers"]}
    outputs = [entry["output"] for entry in killed.values()] + [output for _, output in results.values()]
    assert len(left_by_kills) == len(KILLS) and containers_removed(*outputs) == len(KILLS), outputs
    assert leftovers(workspace) == NOTHING_LEFT
    for entry in killed.values():
        name = artifact_of(entry["selection"])
        result = invoke("verify", workspace["dist"] / f"{name}.tar.gz", "--lock", workspace["locks"] / f"{name}.json")
        assert result.returncode == 0, result.stdout


def recipes_of_a_new_package(tmp_path: Path) -> Path:
    """A copy of recipes/ whose 3.13 line leaves out one more, made-up, module: a package stage new to any store
    (its inputs include the exclusions), seconds long, with the same artifact inside."""
    root = tmp_path / "recipes"
    shutil.copytree(RECIPES_DIR, root)
    line = root / "cpython" / "3.13.toml"
    recipe = tomllib.loads(line.read_text())
    recipe["package"]["exclude"].append(f"not_a_module_{uuid.uuid4().hex}.py")
    line.write_text(tomli_w.dumps(recipe))
    return root


def test_a_build_killed_while_packaging_leaves_nothing_and_the_next_finishes(built, workspace, tmp_path):
    dist, locks = tmp_path / "dist", tmp_path / "locks"
    args = build_args(workspace, *SELECTION, "--recipes", recipes_of_a_new_package(tmp_path), dist=dist, locks=locks)
    running = Running(*args)
    running.wait_for("▶ package")
    time.sleep(2)  # its container is running
    running.kill()
    assert_only_the_stage_unfinished(leftovers(workspace, dist, locks), running.output, "package", SELECTION[0], dist,
                                     locks, ARTIFACT)
    status, output = Running(*args).finish()
    assert status == 0, output[-4000:]
    assert containers_removed(output) == 1, output[-4000:]
    assert leftovers(workspace, dist, locks) == NOTHING_LEFT
    assert invoke("verify", dist / f"{ARTIFACT}.tar.gz", "--lock", locks / f"{ARTIFACT}.json").returncode == 0


def test_two_builds_of_the_same_selection_at_once_give_one_result(built, workspace, tmp_path):
    recipes = recipes_of_a_new_package(tmp_path)
    outputs = [tmp_path / "one", tmp_path / "two"]
    runs = [Running(*build_args(workspace, *SELECTION, "--recipes", recipes, dist=out / "dist", locks=out / "locks"))
            for out in outputs]
    results = [run.finish() for run in runs]
    for status, output in results:
        assert status == 0, output[-4000:]
    packaged = ["✓ package:" not in output and "package (" in output for _, output in results]
    assert sorted(packaged) == [False, True], "one made the package stage, the other waited and found it"
    for name in (f"{ARTIFACT}.tar.gz", f"{ARTIFACT}.debug.tar.gz", "SHA256SUMS"):
        assert (outputs[0] / "dist" / name).read_bytes() == (outputs[1] / "dist" / name).read_bytes(), name
    assert (outputs[0] / "locks" / f"{ARTIFACT}.json").read_bytes() == (outputs[1] / "locks" / f"{ARTIFACT}.json").read_bytes()
    assert leftovers(workspace)["building"] == []


def test_a_build_killed_while_downloading_leaves_no_partial_file(built, workspace, tmp_path):
    """The CPython tarball served slowly on loopback, into an empty cache; kill -9 mid-download; build again."""
    source = Recipes().resolve(*SELECTION).release.source
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(Workspace.from_options().cache_dir / "sha256" / source.sha256, served / source.file)
    cache, recipes = tmp_path / "cache", tmp_path / "recipes"
    shutil.copytree(RECIPES_DIR, recipes)
    with slow_server(served, bytes_per_second=4_000_000) as base_url:
        line = recipes / "cpython" / "3.13.toml"
        text = line.read_text()
        for url in source.urls:
            text = text.replace(f'"{url}"', f'"{base_url}/{source.file}"')
        line.write_text(text)
        args = build_args(workspace, *SELECTION, "--cache-dir", cache, "--recipes", recipes,
                          dist=tmp_path / "dist", locks=tmp_path / "locks")
        running = Running(*args)
        deadline = time.monotonic() + 120
        while sum(path.stat().st_size for path in (cache / "tmp").glob("*.part")) < 4 << 20:
            assert time.monotonic() < deadline and running.process.poll() is None, running.output
            time.sleep(0.1)
        running.kill()
        assert list((cache / "tmp").glob("*.part")) and not (cache / "sha256" / source.sha256).exists()
        status, output = Running(*args).finish()
    assert status == 0, output[-4000:]
    assert sha256(cache / "sha256" / source.sha256) == source.sha256
    assert list((cache / "tmp").iterdir()) == [], "the killed download's partial file is gone"
    assert "✓ host: reused" in output  # products are named by their inputs' hashes, not by the URLs they came from


def stop_engine() -> None:
    """Stop the Docker engine, and with it every container, as a crash or an upgrade would."""
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        subprocess.run(["systemctl", "stop", "docker.socket", "docker"], check=True)
        return
    subprocess.run(["pkill", "-TERM", "-x", "dockerd"], check=True)
    deadline = time.monotonic() + 60
    while subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "dockerd did not stop"
        time.sleep(0.5)


def test_the_engine_going_away_mid_stage_is_a_clear_error_and_a_rerun_works(built, workspace, tmp_path):
    recipes = recipes_of_a_new_package(tmp_path)
    args = build_args(workspace, *SELECTION, "--recipes", recipes, dist=tmp_path / "dist", locks=tmp_path / "locks")
    running = Running(*args)
    running.wait_for("▶ package")
    time.sleep(1)
    try:
        stop_engine()
        status, output = running.finish(timeout=300)
    finally:
        subprocess.run([PROJECT_ROOT / "scripts" / "ensure-docker"], check=True)
    assert status == 1, output[-4000:]
    assert "The Docker engine stopped answering during phase package" in output
    assert "Traceback" not in output
    assert not list(tmp_path.glob("dist/*.tar.gz")), "nothing was published"
    again = invoke(*args)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "✓ host: reused" in again.stderr
    lock = json.loads((tmp_path / "locks" / f"{ARTIFACT}.json").read_text())
    assert lock["outputs"][f"{ARTIFACT}.tar.gz"]["sha256"] == sha256(tmp_path / "dist" / f"{ARTIFACT}.tar.gz")
    assert leftovers(workspace, tmp_path / "dist", tmp_path / "locks") == NOTHING_LEFT


def test_a_full_disk_under_dist_stops_the_build_and_publishes_nothing(built, workspace, tmp_path):
    """The real `invoke build` (every stage found in the store), its dist/ on a 1 MiB tmpfs: the artifact cannot fit."""
    dist = tmp_path / "small-disk"
    dist.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(dist)], check=True)
    try:
        result = invoke(*build_args(workspace, *SELECTION, dist=dist, locks=tmp_path / "locks"))
        left = sorted(path.name for path in dist.iterdir())
    finally:
        subprocess.run(["umount", str(dist)], check=True)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "No space left on the disk of" in result.stderr and f"{ARTIFACT}.tar.gz" in result.stderr
    assert "Traceback" not in result.stderr
    assert [name for name in left if not name.endswith(".lock")] == [], "nothing half-written in dist/"
    assert not (tmp_path / "locks" / f"{ARTIFACT}.json").exists(), "no lockfile for an artifact that was not published"
