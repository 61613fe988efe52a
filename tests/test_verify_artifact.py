"""scripts/verify_artifact.py, the standard-library-only verifier, on synthetic artifacts: called in-process
(verifier.verify), run as a script by a bare interpreter, and through `invoke verify`."""

import ast
import gzip
import hashlib
import io
import json
import resource
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from cpython_wasm.records.verify import verifier
from tests.helpers import PROJECT_ROOT, invoke, sha256
from tests.synthetic import FILES, NAME, TAMPERED, WASM, pack

OK, DIFFERS, USAGE, UNSAFE = verifier.OK, verifier.DIFFERS, verifier.USAGE, verifier.UNSAFE
SCRIPT = PROJECT_ROOT / "scripts" / "verify_artifact.py"
WAYS = ["api", "script"]
EVERY_WAY = [*WAYS, "invoke"]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record(data: bytes) -> dict:
    return {"sha256": digest(data), "size": len(data)}


def write_lock(tmp: Path, lock: dict) -> Path:
    path = tmp / "lockfiles" / f"{NAME}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(lock, indent=1), encoding="utf-8")
    return path


def member(name: str, kind=tarfile.REGTYPE, linkname: str = "", data: bytes = WASM):
    """A tar member as write_tar_gz never writes one: (TarInfo, data)."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.devmajor, info.devminor = kind, linkname, 0o644, 1, 3
    info.size = len(data) if info.isfile() else 0
    return info, data


@dataclass
class Artifact:
    """The untouched artifact of FILES in tmp/dist/ and its lockfile; the methods replace the tarball."""

    tmp: Path
    lock: dict
    lockfile: Path
    manifest: dict  # the "files" of its manifest.json

    @property
    def tarball(self) -> Path:
        return self.tmp / "dist" / f"{NAME}.tar.gz"

    @property
    def sha256(self) -> str:
        return self.lock["outputs"][self.tarball.name]["sha256"]

    def repack(self, files: dict) -> None:
        """Rebuild the tarball from other files but the original manifest."""
        pack(self.tmp, files, self.manifest)

    def add_members(self, *extra) -> None:
        """Rewrite the tarball, with tarfile and gzip, as its own members followed by `extra` (TarInfo, data)."""
        with tarfile.open(self.tarball) as tar:
            members = [(info, tar.extractfile(info).read() if info.isfile() else b"") for info in tar]
        with tarfile.open(self.tarball, "w:gz", format=tarfile.PAX_FORMAT) as tar:
            for info, data in [*members, *extra]:
                tar.addfile(info, io.BytesIO(data) if info.isfile() else None)

    def differs(self) -> str:
        """The report's line on a tarball that is no longer the locked one."""
        return f"{NAME}.tar.gz: expected sha256 {self.sha256}, got {sha256(self.tarball)}"


@pytest.fixture
def artifact(tmp_path) -> Artifact:
    root = pack(tmp_path, FILES)
    tarball = tmp_path / "dist" / f"{NAME}.tar.gz"
    lock = {"lockfile_version": 1, "artifact": NAME, "outputs": {
        tarball.name: record(tarball.read_bytes()),
        "python.wasm": record(WASM),
        "manifest.json": record((root / "manifest.json").read_bytes()),
    }}
    return Artifact(tmp_path, lock, write_lock(tmp_path, lock), json.loads((root / "manifest.json").read_text())["files"])


# The address space the script may use: whatever its input, it reads it in pieces of at most a few MB.
MAX_SCRIPT_MEMORY = 512 << 20


def run_script(*args, cwd: Path, python: str = sys.executable, timeout: float = 120) -> subprocess.CompletedProcess:
    """The script as a distributor runs it: a bare interpreter (no site, no environment), elsewhere than the
    checkout; in MAX_SCRIPT_MEMORY, so that unbounded reading fails (MemoryError) instead of filling the machine."""
    command = [python, "-I", "-S", str(SCRIPT), *map(str, args)]

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (MAX_SCRIPT_MEMORY, MAX_SCRIPT_MEMORY))

    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, preexec_fn=limit_memory)


@dataclass
class Outcome:
    way: str
    status: int
    lines: list  # the report's problems, or the lines printed on stdout
    stderr: str = ""


@pytest.fixture(params=WAYS)
def way(request) -> str:
    return request.param


@pytest.fixture
def verify(way, tmp_path, monkeypatch):
    """verify(tarball, lockfile=None, sha256=None) -> Outcome, run `way` from an empty working directory."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    def run(tarball, lockfile=None, sha256=None) -> Outcome:
        if way == "api":
            report = verifier.verify(str(tarball), json.loads(Path(lockfile).read_text()) if lockfile else None, sha256)
            assert all(status in (DIFFERS, USAGE, UNSAFE) for status, _ in report.problems)
            return Outcome(way, report.status, [message for _, message in report.problems])
        args = [tarball, *(["--lock", lockfile] if lockfile else []), *(["--sha256", sha256] if sha256 else [])]
        result = run_script(*args, cwd=cwd) if way == "script" else invoke("verify", *map(str, args), timeout=300)
        return Outcome(way, result.returncode, result.stdout.splitlines(), result.stderr)

    return run


def expect(outcome: Outcome, status: int, *lines: str) -> None:
    """The exact status and the exact lines, in order (`invoke verify` may print more around them)."""
    assert outcome.status == status, outcome
    if outcome.way == "invoke":
        assert set(lines) <= set(outcome.lines), outcome
    else:
        assert outcome.lines == list(lines), outcome


def verified(way: str, tarball: Path, lock: bool = True) -> list:
    """What the CLI prints on success (the in-process report has no problems, and no lines)."""
    return [] if way == "api" else [f"verified: {tarball} (every file matches its manifest{' and the lockfile' if lock else ''})"]


def files_under(path: Path) -> list:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))


def test_the_exit_statuses_are_those_documented():
    assert (OK, DIFFERS, USAGE, UNSAFE) == (0, 1, 2, 3)


@pytest.mark.parametrize("way", EVERY_WAY)
def test_an_untouched_artifact_verifies(verify, artifact, way):
    outcome = verify(artifact.tarball, artifact.lockfile)
    assert outcome.status == OK, outcome
    if way == "invoke":
        assert any(line.startswith("verified:") for line in outcome.lines), outcome
    else:
        assert outcome.lines == verified(way, artifact.tarball)


@pytest.mark.parametrize("way", EVERY_WAY)
def test_one_changed_byte_in_python_wasm_is_named_with_both_hashes(verify, artifact):
    artifact.repack({**FILES, "python.wasm": TAMPERED})
    expect(verify(artifact.tarball, sha256=sha256(artifact.tarball)), DIFFERS,
           f"python.wasm: expected sha256 {digest(WASM)} ({len(WASM)} bytes), got {digest(TAMPERED)} ({len(TAMPERED)} bytes)")


@pytest.mark.parametrize("way", EVERY_WAY)
def test_a_tarball_that_is_not_the_locked_one_is_reported_before_it_is_decompressed(verify, artifact):
    """Its one line says so; what is inside is not read (another test proves nothing is decompressed)."""
    artifact.repack({**FILES, "python.wasm": TAMPERED})
    expect(verify(artifact.tarball, artifact.lockfile), DIFFERS, artifact.differs())


@pytest.mark.parametrize("files, line", [
    ({k: v for k, v in FILES.items() if k != "lib/python3.13/os.py"},
     "lib/python3.13/os.py: listed in the manifest, missing from the artifact"),
    ({**FILES, "lib/python3.13/sitecustomize.py": b"import os\n"},
     "lib/python3.13/sitecustomize.py: in the artifact, not in the manifest (extra file)"),
], ids=["missing", "extra"])
def test_a_missing_or_an_extra_file_is_named(verify, artifact, files, line):
    artifact.repack(files)
    expect(verify(artifact.tarball), DIFFERS, line)


def test_a_consistent_forgery_is_caught_by_the_lockfile(verify, artifact):
    """A new python.wasm with a manifest to match: only the lockfile's hashes tell, the tarball's first."""
    manifest = (pack(artifact.tmp, {**FILES, "python.wasm": TAMPERED}) / "manifest.json").read_bytes()
    assert verify(artifact.tarball).status == OK  # integrity, not origin
    expect(verify(artifact.tarball, artifact.lockfile), DIFFERS, artifact.differs())
    # A lockfile whose tarball hash was changed to the forgery's, and nothing else: the files' hashes still tell.
    forged = write_lock(artifact.tmp, {**artifact.lock, "outputs": {
        **artifact.lock["outputs"], artifact.tarball.name: record(artifact.tarball.read_bytes())}})
    expect(verify(artifact.tarball, forged), DIFFERS,
           f"manifest.json: the lockfile records sha256 {artifact.lock['outputs']['manifest.json']['sha256']}, "
           f"the artifact has {digest(manifest)}",
           f"python.wasm: the lockfile records sha256 {digest(WASM)}, the artifact has {digest(TAMPERED)}")


def assert_rejected(verify, artifact, name, line, kind=tarfile.REGTYPE, linkname=""):
    """Add the member `name` ({top}: the artifact's directory, {tmp}: tmp_path); it is reported as `line`
    ({name}: its repr) with status 3 (checked against the new tarball's own sha256: against the lockfile,
    it is only another tarball), and nothing is written anywhere."""
    name = name.format(top=NAME, tmp=artifact.tmp)
    artifact.add_members(member(name, kind, linkname))
    before = files_under(artifact.tmp)
    outcome = verify(artifact.tarball, sha256=sha256(artifact.tarball))
    expect(outcome, UNSAFE, line.format(name=repr(name), top=NAME))
    assert files_under(artifact.tmp) == before
    assert list(Path.cwd().iterdir()) == []
    assert not any((where / "evil").exists() for where in (artifact.tmp, PROJECT_ROOT, PROJECT_ROOT.parent))


REJECTED = "member {name} {reason} (rejected, not extracted)"


@pytest.mark.parametrize("way", EVERY_WAY)
@pytest.mark.parametrize("name", ["../evil", "{top}/../../evil"])
def test_a_member_escaping_with_dotdot_is_rejected_and_nothing_is_extracted(verify, artifact, name):
    assert_rejected(verify, artifact, name, REJECTED.format(name="{name}", reason="escapes the tree with '..'"))


@pytest.mark.parametrize("name, kind, linkname, reason", [
    ("{top}/lib/link", tarfile.SYMTYPE, "../../../../etc/passwd",
     "is a link (to '../../../../etc/passwd'); artifacts contain no links"),
    ("{top}/lib/hard", tarfile.LNKTYPE, "/etc/passwd", "is a link (to '/etc/passwd'); artifacts contain no links"),
    ("{top}/lib/null", tarfile.CHRTYPE, "", "is a device, FIFO or other special file"),
    ("{top}/lib/fifo", tarfile.FIFOTYPE, "", "is a device, FIFO or other special file"),
    ("{tmp}/evil", tarfile.REGTYPE, "", "has an absolute path"),
    ("{top}/../evil", tarfile.REGTYPE, "", "lies outside the top directory {top}/"),
    ("{top}/..\\..\\evil", tarfile.REGTYPE, "", "has a backslash, which some extractors read as a directory separator"),
], ids=["symlink", "hardlink", "device", "fifo", "absolute", "outside", "backslash"])
def test_an_unsafe_member_is_rejected_and_nothing_is_extracted(verify, artifact, name, kind, linkname, reason):
    assert_rejected(verify, artifact, name, REJECTED.format(name="{name}", reason=reason), kind, linkname)


def test_a_duplicate_member_is_rejected(verify, artifact):
    assert_rejected(verify, artifact, "{top}/python.wasm", REJECTED.format(name="{name}", reason="appears twice"))


def test_a_truncated_tarball_is_reported(verify, artifact):
    data = artifact.tarball.read_bytes()
    artifact.tarball.write_bytes(data[: len(data) // 2])
    outcome = verify(artifact.tarball, sha256=sha256(artifact.tarball))
    assert outcome.status == UNSAFE, outcome
    assert len(outcome.lines) == 1 and outcome.lines[0].startswith("the tarball is truncated or corrupt: "), outcome


def test_a_lockfile_with_another_hash_for_the_tarball(verify, artifact):
    other = digest(b"another tarball")
    lockfile = write_lock(artifact.tmp, {**artifact.lock, "outputs": {
        **artifact.lock["outputs"], artifact.tarball.name: {"sha256": other, "size": 1}}})
    expect(verify(artifact.tarball, lockfile), DIFFERS, f"{NAME}.tar.gz: expected sha256 {other}, got {artifact.sha256}")


def test_a_lockfile_for_another_artifact_is_a_usage_error(verify, artifact):
    lockfile = write_lock(artifact.tmp, {**artifact.lock, "artifact": "python-3.12.11-wasi_sdk-25-debian"})
    expect(verify(artifact.tarball, lockfile), USAGE, f"the lockfile is for 'python-3.12.11-wasi_sdk-25-debian', not '{NAME}'")


def test_a_missing_artifact_is_a_usage_error(verify, artifact):
    missing = artifact.tmp / "nowhere" / artifact.tarball.name
    outcome = verify(missing, artifact.lockfile)
    assert outcome.status == USAGE, outcome
    assert len(outcome.lines) == 1 and outcome.lines[0].startswith(f"cannot read {missing}: "), outcome


def test_invoke_verify_names_a_missing_artifact(artifact):
    missing = artifact.tmp / "nowhere" / artifact.tarball.name
    result = invoke("verify", str(missing), timeout=300)
    assert result.returncode == USAGE
    assert f"No artifact at {missing}" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("text", ['{"lockfile_version": 1, "artifact":', None], ids=["invalid-json", "missing"])
def test_an_unreadable_lockfile_is_a_usage_error(artifact, tmp_path, text):
    lockfile = tmp_path / "broken.json"
    if text is not None:
        lockfile.write_text(text)
    result = run_script(artifact.tarball, "--lock", lockfile, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (USAGE, ""), result
    assert result.stderr.startswith(f"error: the lockfile {lockfile} "), result.stderr
    assert "Traceback" not in result.stderr


def test_bad_arguments_are_a_usage_error(tmp_path):
    result = run_script("--sha256", cwd=tmp_path)
    assert result.returncode == USAGE and "usage:" in result.stderr, result


def test_an_expected_sha256_without_a_lockfile(verify, artifact, way):
    expect(verify(artifact.tarball, sha256=artifact.sha256), OK, *verified(way, artifact.tarball, lock=False))
    wrong = digest(b"another tarball")
    expect(verify(artifact.tarball, sha256=wrong), DIFFERS, f"{NAME}.tar.gz: expected sha256 {wrong}, got {artifact.sha256}")


def test_an_expected_sha256_is_a_sha256_in_either_case(artifact):
    assert verifier.verify(str(artifact.tarball), None, artifact.sha256.upper()).status == OK
    for wrong in ("xyz", artifact.sha256[:-1]):
        report = verifier.verify(str(artifact.tarball), None, wrong)
        assert report.status == USAGE and "is not a sha256" in report.problems[0][1], report.problems
    result = run_script(artifact.tarball, "--sha256", "", cwd=artifact.tmp)
    assert result.returncode == USAGE and "is not a sha256" in result.stdout


def test_a_lockfile_without_the_artifacts_hash_is_a_usage_error(verify, artifact):
    del artifact.lock["outputs"][f"{NAME}.tar.gz"]
    expect(verify(artifact.tarball, write_lock(artifact.tmp, artifact.lock)), USAGE,
           f"the lockfile records no sha256 for {NAME}.tar.gz")


def test_the_script_is_python_3_9_syntax():
    ast.parse(SCRIPT.read_text(encoding="utf-8"), filename=str(SCRIPT), feature_version=(3, 9))


def test_the_script_imports_only_the_standard_library():
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert all(isinstance(node, ast.Import) or node.level == 0 for node in imports)
    modules = {alias.name.split(".")[0] for node in imports if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module.split(".")[0] for node in imports if isinstance(node, ast.ImportFrom)}
    assert modules and modules <= sys.stdlib_module_names, modules - sys.stdlib_module_names


def python_3_9():
    for candidate in (Path.home() / ".pyenv/versions/3.9.18/bin/python3.9", shutil.which("python3.9")):
        if candidate and Path(candidate).is_file():
            probe = subprocess.run([str(candidate), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
            if probe.returncode == 0 and probe.stdout.strip() == "(3, 9)":
                return str(candidate)
    return None


def test_the_script_runs_on_python_3_9(artifact, tmp_path):
    python = python_3_9()
    if python is None:
        pytest.skip("no Python 3.9 interpreter (~/.pyenv/versions/3.9.18 or python3.9 on PATH)")
    good = run_script(artifact.tarball, "--lock", artifact.lockfile, cwd=tmp_path, python=python)
    assert (good.returncode, good.stdout.splitlines()) == (OK, verified("script", artifact.tarball)), good
    artifact.repack({**FILES, "python.wasm": TAMPERED})
    other = run_script(artifact.tarball, "--lock", artifact.lockfile, cwd=tmp_path, python=python)
    assert (other.returncode, other.stdout.splitlines()) == (DIFFERS, [artifact.differs()]), other
    bad = run_script(artifact.tarball, cwd=tmp_path, python=python)
    assert bad.returncode == DIFFERS, bad
    assert f"python.wasm: expected sha256 {digest(WASM)} ({len(WASM)} bytes), got {digest(TAMPERED)} ({len(TAMPERED)} bytes)" \
        in bad.stdout.splitlines(), bad


# Damaged tarballs and manifests (tests/test_verify_hostile.py has the hostile ones, by class).


def test_a_link_hidden_behind_a_corrupt_header_is_rejected(verify, artifact):
    """GNU tar skips a bad header block and goes on (and extracts the link); the verifier must see what tar sees."""
    tar = gzip.decompress(artifact.tarball.read_bytes()).rstrip(b"\0")
    tar += bytes(-len(tar) % 512) + b"not a tar header" * 32
    link = io.BytesIO()
    with tarfile.open(fileobj=link, mode="w", format=tarfile.PAX_FORMAT) as out:
        out.addfile(member(f"{NAME}/lib/link", tarfile.SYMTYPE, "../../../../etc/passwd")[0])
    artifact.tarball.write_bytes(gzip.compress(tar + link.getvalue()))
    outcome = verify(artifact.tarball)
    assert outcome.status == UNSAFE, outcome


def test_a_tarball_missing_its_last_bytes_is_reported(verify, artifact):
    artifact.tarball.write_bytes(artifact.tarball.read_bytes()[:-8])
    outcome = verify(artifact.tarball)
    assert outcome.status == UNSAFE, outcome


def test_a_manifest_that_is_not_json_is_reported(verify, artifact):
    pack(artifact.tmp, FILES, '{"artifact": "x", "files": {')
    outcome = verify(artifact.tarball)
    assert outcome.status in (DIFFERS, UNSAFE) and "Traceback" not in outcome.stderr, outcome


def test_a_lockfile_that_is_not_an_object_is_a_usage_error(verify, artifact):
    outcome = verify(artifact.tarball, write_lock(artifact.tmp, []))
    assert outcome.status == USAGE and "Traceback" not in outcome.stderr, outcome
